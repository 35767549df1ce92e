"""Two emulated nodes (network namespaces, shaped bridge, one sshd and CPU share each): a tiny
measurement campaign with one rank per node over real ssh, then teardown. The `-np` regression:
with --hosts h1:1,h2:1 the 1-rank configuration must run exactly 1 rank, and every table's
num_replicas/num_nodes must match what was asked. Skips, saying why, where namespaces are not
permitted (not root, no netns, no sshd)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalesim.cluster import ClusterUnavailable, lifecycle, net, preflight
from scalesim.schema import RunDir

ROOT = Path(__file__).resolve().parent.parent
# A campaign on 2 emulated nodes, built and torn down by `scalesim measure` itself; 1 rank per node.
ARGS = ["--nodes", "2", "--devices-per-node", "1", "--link", "500mbit", "--cores-per-node", "0.5", "--local-batches", "4", "--steps", "2",
        "--warmup", "1", "--block", "1", "--width", "4", "--ar-sizes", "4096,65536", "--no-progress"]


def _skip_reason():
    gaps = preflight.missing()
    return f"emulated nodes not possible here: {'; '.join(gaps)}" if gaps else None


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("horovod.tensorflow")
    why = _skip_reason()
    if why:
        pytest.skip(why)
    try:
        c = lifecycle.up(2, "500mbit", 0.25)
    except ClusterUnavailable as e:
        pytest.skip(str(e))
    state = lifecycle.st.load(c.cluster_id)
    recorded = {"netns": [o["id"] for o in state.of_kind("netns")],
                "sshd": [int(o["id"]) for o in state.of_kind("sshd")],
                "cgroup": [o["id"] for o in state.of_kind("cgroup")],
                "etc": [o["id"] for o in state.of_kind("etc_netns")], "dir": c.state_dir}
    try:
        yield c, recorded
    finally:
        if c.cluster_id in lifecycle.st.list_ids():   # test_teardown_leaves_nothing took it down
            lifecycle.down(c.cluster_id)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    pytest.importorskip("horovod.tensorflow")
    why = _skip_reason()
    if why:
        pytest.skip(why)
    run = tmp_path_factory.mktemp("mn") / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run([sys.executable, "-m", "scalesim.cli", "measure", *ARGS, "--out", str(run)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    return run, p


@pytest.mark.slow
def test_nodes_have_own_address_hostname_and_cpu_share(cluster):
    c, rec = cluster
    assert len(rec["netns"]) == 3 and len(rec["sshd"]) == 2 and len(rec["cgroup"]) == 3
    out = c.exec("h2", ["sh", "-c", "hostname; ip -o -4 addr show dev eth0; ssh h1 hostname; "
                                    "tc qdisc show dev eth0"], capture_output=True, text=True, timeout=30)
    lines = out.stdout.split("\n")
    assert lines[0] == "h2" and "198.51.100.2/24" in lines[1] and lines[2] == "h1", out
    assert "tbf" in lines[3] and "500Mbit" in lines[3]
    quota = Path(rec["cgroup"][-1], "cpu.cfs_quota_us").read_text()
    assert int(quota) == round(c.plan.cores_per_node * 10_000)
    # The root namespace got nothing: no interface in the emulated range.
    assert preflight.addresses_in(c.plan.subnet) == []


@pytest.mark.slow
def test_each_table_has_the_ranks_and_nodes_asked_for(campaign):
    run, p = campaign
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rd = RunDir(run)
    m = rd.read_manifest()
    asked = {"n1-b4": (1, 1), "n2-b4": (2, 2)}
    assert {c["config_id"]: (c["num_replicas"], c["num_nodes"]) for c in m["configs"]} == asked
    assert all(c["status"] == "done" for c in m["configs"] + m["allreduce_benchmarks"])
    steps = rd.read_table("steps")
    for cid, (n, nodes) in asked.items():
        rows = steps[steps["config_id"] == cid]
        assert set(rows["num_replicas"]) == {n} and set(rows["num_nodes"]) == {nodes}
        assert sorted(rows["rank"].unique()) == list(range(n))     # exactly n ranks reported
    assert set(steps["cores_per_host"]) == {m["config"]["emulated"]["cores_per_node"]} == {m["cores_per_host"]}
    ar = rd.read_table("allreduce")
    assert sorted(map(tuple, ar[["num_replicas", "num_nodes"]].drop_duplicates().values.tolist())) == [(1, 1), (2, 2)]
    assert sorted(p.name for p in (run / "allreduce").glob("*.parquet")) == ["n1.parquet", "n2.parquet"]
    # Host identity from Horovod's placement: h1 then h2, whatever the OS host names are.
    assert [h["hostname"] for h in m["launch_hosts"]["2"]] == ["h1", "h2"]
    assert [h["hostname"] for h in m["launch_hosts"]["1"]] == ["h1"]


@pytest.mark.slow
def test_campaign_cluster_is_gone(campaign):
    """Built before the campaign, torn down after it: nothing of the recorded ids is left."""
    run, p = campaign
    (cl,) = RunDir(run).read_manifest()["clusters"]
    names = [f"ss{cl['cluster_id']}-{x}" for x in ("br", "h1", "h2")]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n in listed for n in names)
    assert cl["cluster_id"] not in lifecycle.st.list_ids()
    assert not Path(f"/sys/fs/cgroup/cpu/scalesim-ss{cl['cluster_id']}").exists()
    assert not any(Path("/etc/netns", n).exists() for n in names)


@pytest.mark.slow
def test_worker_refuses_more_ranks_than_asked(cluster, tmp_path):
    """The bug itself: horovodrun --gloo -np 1 -H h1:1,h2:1 starts 2 ranks. Told its launch is h1:1,
    every worker must refuse to measure (and the campaign then fails loudly, never records)."""
    c, _ = cluster
    cmd = [sys.executable, "-m", "scalesim.train.horovodrun", "-np", "1", "-H", "h1:1,h2:1", "--gloo",
           "--disable-cache", "--network-interfaces", "eth0", sys.executable, "-m", "scalesim.measure.worker",
           "--run-dir", str(tmp_path / "none"), "--configs", "n1-b4", "--placement", "h1:1"]
    p = c.exec("h1", cmd, capture_output=True, text=True, cwd=ROOT, timeout=300,
               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert p.returncode != 0
    assert "Horovod started 2 ranks, the launch asked for 1" in p.stdout + p.stderr


def test_cluster_command_up_exec_down():
    """`scalesim cluster up|exec|down` by hand: no TensorFlow, a few seconds."""
    import json

    why = _skip_reason()
    if why:
        pytest.skip(why)

    def cli(*argv):
        return subprocess.run([sys.executable, "-m", "scalesim.cli", "cluster", *argv], capture_output=True,
                              text=True, timeout=120, cwd=ROOT)

    up = cli("up", "--nodes", "2", "--link", "200mbit", "--cores-per-node", "0.25", "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    cid = info["cluster_id"]
    try:
        assert [n["reachable"] for n in info["node_status"]] == [True, True] and info["link"] == "200mbit"
        ex = cli("exec", "--id", cid, "h2", "--", "sh", "-c", "hostname; ssh h1 hostname")
        assert ex.returncode == 0 and ex.stdout.split() == ["h2", "h1"], ex.stderr
    finally:
        down = cli("down", "--id", cid)
    assert down.returncode == 0 and not any(net.exists(f"ss{cid}-{x}") for x in ("br", "h1", "h2"))
    gone = cli("down", "--id", cid)
    assert gone.returncode == 2 and len(gone.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_teardown_leaves_nothing(cluster):
    c, rec = cluster
    assert lifecycle.down(c.cluster_id) == []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(ns in listed for ns in rec["netns"])
    assert not any(net.exists(ns) for ns in rec["netns"])
    assert not any(Path(f"/proc/{pid}").exists() and lifecycle._alive(pid) for pid in rec["sshd"])
    assert not any(Path(p).exists() for p in rec["cgroup"] + rec["etc"])
    assert not Path(rec["dir"]).exists()
