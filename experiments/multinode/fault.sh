#!/usr/bin/env bash
# A rank on node 2 killed mid-configuration on 2 emulated nodes; the campaign keeps what finished,
# --resume completes it, and nothing the clusters created is left (checked from their recorded ids).
set -u
cd "$(dirname "$0")/../.."
run=${1:-data/runs/mn-fault}
A="--nodes 2 --link 500mbit --cores-per-node 0.25 --local-batches 32,64 --steps 8 --warmup 1 --block 2 --ar-max 1MiB"
echo "== campaign, rank 1 (on h2) dies at step 3 of n2-b32"
SCALESIM_MEASURE_FAULT=n2-b32:1:3 .venv/bin/scalesim measure $A --out "$run" --no-progress; echo "exit code $?"
.venv/bin/python - "$run" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
for c in m["configs"]:
    print(f"  {c['config_id']}: {c['status']}" + (f"  ({c['error']})" if c["error"] else ""))
PY
echo "== --resume"
.venv/bin/scalesim measure --resume "$run" --no-progress; echo "exit code $?"
echo "== left behind? (ids recorded in the run's manifest, per cluster session)"
.venv/bin/python - "$run" <<'PY'
import json, os, subprocess, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
print("  configs:", {c["config_id"]: c["status"] for c in m["configs"]})
listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
for cl in m["clusters"]:
    ns = [o["id"] for o in cl["created"] if o["kind"] == "netns"]
    pids = [o["id"] for o in cl["created"] if o["kind"] == "sshd"]
    paths = [o["id"] for o in cl["created"] if o["kind"] in ("cgroup", "etc_netns", "dir")]
    print(f"  cluster {cl['cluster_id']}: netns {ns} listed: {[n for n in ns if n in listed]}; sshd pids {pids} "
          f"alive: {[p for p in pids if os.path.exists(f'/proc/{p}')]}; paths left: {[p for p in paths if os.path.exists(p)]}")
print("  ip netns list:", listed or "(empty)")
PY
