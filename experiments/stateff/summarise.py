"""Per-batch table of the Fashion-MNIST statistical-efficiency runs (experiments/stateff/README.md):
steps to the target (first crossing of test_acc, linear interpolation: what `fit` reads) and
B_simple = tr(Sigma)/|G|^2 from the recorded EMA columns (ema_grad_var / ema_grad_sqr, ratio of their
means over a window) in windows of samples, the same for every batch: start = the first 4096 samples
(one evaluation interval), min = the lowest 4096-sample window before the target, near target = the
8192 samples before the target is reached.

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
    B = int(m["config"]["batch"])
    w = 4096 / B
    before = noise[noise["step"] < s]
    g = before.groupby((before["step"] // w).astype(int))
    b_min = float((g["ema_grad_var"].mean() / g["ema_grad_sqr"].mean()).min())
    return {"global_batch": B, "lr": ep["lr"].iloc[0], "steps_to_target": round(s, 1),
            "samples_to_target": round(s * m["config"]["batch"]), "evals": len(ep), "steps_run": int(it[-1]),
            "best_test_acc": round(float(ep["test_acc"].max()), 4),
            "b_simple_start": round(b_simple(noise, 0, w), 1), "b_simple_min": round(b_min, 1),
            "b_simple_near_target": round(b_simple(noise, s - 2 * w, s), 1) if np.isfinite(s) else float("nan"),
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
