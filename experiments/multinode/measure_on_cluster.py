"""Measure ONE node count on its own emulated cluster, by hand: a cluster of N nodes (scalesim.cluster),
then `scalesim measure --hosts h1:1,...,hN:1 --nodes N` run on h1 (horovodrun reaches the others over
ssh). This is how the figures in README.md were taken (one campaign per node count, so each run is
one launch); `scalesim measure --nodes N` does the same for 1, 2, 4 .. N in one campaign.
    .venv/bin/python experiments/multinode/measure_on_cluster.py NODES LINK CORES_PER_NODE RUN_DIR [measure options]
    .venv/bin/python experiments/multinode/measure_on_cluster.py --resume NODES LINK CORES_PER_NODE RUN_DIR
SCALESIM_CORES_PER_NODE tells the ranks their node's CPU share (a cgroup quota they cannot see)."""
import os, subprocess, sys, time
import scalesim.cluster as cl
from scalesim.cluster.plan import parse_rate
resume = sys.argv[1:2] == ["--resume"]
args = sys.argv[2:] if resume else sys.argv[1:]
nodes, link, cores, out = int(args[0]), args[1], float(args[2]), args[3]
extra = args[4:]
t0 = time.time()
from scalesim.cluster.plan import parse_rate
with cl.session(nodes, parse_rate(link), cores) as c:
    hosts = ",".join(f"{h}:1" for h in c.hosts)
    env = {**os.environ, "SCALESIM_CORES_PER_NODE": repr(cores), "TF_CPP_MIN_LOG_LEVEL": "2"}
    argv = ["--resume", out] if resume else ["--hosts", hosts, "--nodes", str(nodes), "--devices-per-node", "1",
                                             "--out", out, *extra]
    p = c.exec("h1", [sys.executable, "-m", "scalesim.cli", "measure", *argv, "--no-progress"], env=env,
               cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    print("rc", p.returncode, "elapsed", round(time.time() - t0), "cluster", c.cluster_id, flush=True)
