"""Per-batch table of the Fashion-MNIST statistical-efficiency runs (experiments/stateff/README.md):
steps to the target (first crossing of test_acc, linear interpolation: what `fit` reads) and
B_simple = tr(Sigma)/|G|^2 from the recorded EMA columns (ratio of their means over a window) at the
start of training and just before the target.

    .venv/bin/python experiments/stateff/summarise.py --target 0.8 data/runs/stateff/b{64,128,256,512}
"""
import argparse
import sys

import numpy as np
import pandas as pd

from scalesim.model.stateff import steps_to_reach
from scalesim.schema import RunDir


def b_simple(noise, lo, hi) -> float:
    w = noise[(noise["step"] >= lo) & (noise["step"] < hi)]
    return float(w["ema_grad_var"].mean() / w["ema_grad_sqr"].mean()) if len(w) else float("nan")


def row(path, target: float) -> dict:
    rd = RunDir(path)
    m = rd.read_manifest()
    ep = rd.read_table("epochs").sort_values("epoch")
    it = ep["steps"].cumsum().to_numpy(float)
    s = steps_to_reach(it, ep["test_acc"], target, True)
    noise = rd.read_table("noise").sort_values("step")
    n = max(10, int(0.05 * s)) if np.isfinite(s) else 10
    return {"global_batch": int(m["config"]["batch"]), "lr": ep["lr"].iloc[0], "steps_to_target": round(s, 1),
            "samples_to_target": round(s * m["config"]["batch"]), "evals": len(ep), "steps_run": int(it[-1]),
            "best_test_acc": round(float(ep["test_acc"].max()), 4),
            "b_simple_start": round(b_simple(noise, 0, n), 1),
            "b_simple_near_target": round(b_simple(noise, 0.9 * s, s), 1) if np.isfinite(s) else float("nan"),
            "b_simple_whole_run": round(float(noise["ema_grad_var"].mean() / noise["ema_grad_sqr"].mean()), 1),
            "noise_rows": len(noise), "noise_nonfinite_skipped": m.get("noise_nonfinite_skipped")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--target", type=float, required=True)
    p.add_argument("--csv", default=None)
    p.add_argument("runs", nargs="+")
    a = p.parse_args(argv)
    df = pd.DataFrame([row(r, a.target) for r in a.runs]).sort_values("global_batch")
    print(df.to_string(index=False))
    if a.csv:
        df.to_csv(a.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
