"""busbw of the emulated link vs its configured rate: 2 emulated nodes (1 rank each), scalesim's
allreduce microbenchmark (nccl-tests busbw = S/t * 2(n-1)/n), one horovodrun launch per run.
    .venv/bin/python experiments/multinode/linkbench.py --rates 200mbit,500mbit --runs 3 --out experiments/multinode/busbw.csv
"""
import argparse
import csv
import json
import sys
import time
from pathlib import Path

import scalesim.cluster as cl
from scalesim.cluster.plan import parse_rate

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="200mbit,500mbit")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--sizes", default=f"{16 << 20},{64 << 20}", help="bytes")
    ap.add_argument("--out", default=str(HERE / "busbw.csv"))
    a = ap.parse_args()
    out_rows = []
    for rate in a.rates.split(","):
        with cl.session(a.nodes, rate) as c:
            hosts = ",".join(f"{h}:1" for h in c.hosts)
            for run in range(1, a.runs + 1):
                t0 = time.time()
                p = c.exec("h1", [sys.executable, "-m", "scalesim.train.horovodrun", "-np", str(a.nodes), "-H", hosts,
                                  "--gloo", "--disable-cache", "--network-interfaces", "eth0",
                                  sys.executable, str(HERE / "bench_rank.py"), a.sizes],
                           capture_output=True, text=True, cwd=str(HERE.parent.parent))
                line = next((ln for ln in p.stdout.splitlines() if "ROWS " in ln), None)
                if p.returncode or not line:
                    print(p.stdout[-2000:], p.stderr[-2000:], file=sys.stderr)
                    return 1
                got = json.loads(line.split("ROWS ", 1)[1])
                assert got["size"] == a.nodes and got["cross_size"] == a.nodes
                for r in got["rows"]:
                    frac = r["busbw"] * 8 / parse_rate(rate)
                    out_rows.append({"link": rate, "nodes": a.nodes, "run": run, "size_bytes": r["size_bytes"],
                                     "iters": r["iters"], "time_s": round(r["time"], 5),
                                     "busbw_MBps": round(r["busbw"] / 1e6, 2), "fraction_of_link": round(frac, 3),
                                     "cores_per_node": c.plan.cores_per_node})
                    print(out_rows[-1], f"({time.time() - t0:.0f} s)", flush=True)
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out_rows[0]))
        w.writeheader()
        w.writerows(out_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
