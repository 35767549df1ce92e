"""Pollux traces: fit on small placements, predict large ones, with scalesim's model and with a
re-implementation of the Pollux model form (scalesim.model.pollux), side by side.

    .venv/bin/python experiments/pollux/evaluate.py [--split 'num_replicas>4'] [--ablations] [--splits]

Reads <repo>/../shared/external/pollux/*.placements.csv in place (override: SCALESIM_POLLUX_DIR); the
traces are never copied into the repository. Step-time MAPE per workload: out-of-sample (rows matching
the split, not used for fitting), in-sample (the fitted rows) and with the model fitted on all rows.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scalesim.fit import observations as ob  # noqa: E402
from scalesim.fit.perf import fit_perf, predict_quantities  # noqa: E402
from scalesim.model import pollux  # noqa: E402

WORKLOADS = ("bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3")
ABLATIONS = {  # what each added term buys: pin it to "off"
    "no pair_sharing": {"pair_sharing": 0.0},
    "no stragglers": {"cv": 0.0, "jitter": 0.0},
    "no colocation": {"colocation": 0.0},
}


def pollux_dir() -> Path:
    return Path(os.environ.get("SCALESIM_POLLUX_DIR") or REPO.parent / "shared" / "external" / "pollux")


def mape(pred, y) -> float:
    pred, y = np.asarray(pred, float), np.asarray(y, float)
    return float(100 * np.mean(np.abs(pred - y) / y))


def ours(train, fixed=None):
    f = fit_perf(train.reset_index(drop=True), fixed=fixed)
    return lambda d: predict_quantities(f.perf, d)["step_time"].to_numpy()


def theirs(train):
    p = pollux.fit(train.num_nodes, train.num_replicas, train.local_batch, train.step_time,
                   train.step_time - train.sync_time)
    return lambda d: pollux.step_time(p, d.num_nodes.to_numpy(), d.num_replicas.to_numpy(), d.local_batch.to_numpy())


def evaluate(path, split: str = "num_replicas>4", fixed=None) -> dict:
    """{model: {out, in, all}} step-time MAPE for one trace file."""
    steps = ob.load(path).steps
    test = ob.holdout_mask(steps, split)
    train = steps[~test]
    out = {}
    for name, fitter in (("scalesim", lambda t: ours(t, fixed)), ("pollux", theirs)):
        pred = fitter(train)
        full = fitter(steps)
        out[name] = {"out": mape(pred(steps[test]), steps[test].step_time),
                     "in": mape(pred(train), train.step_time),
                     "all": mape(full(steps), steps.step_time)}
    out["rows"] = {"train": int((~test).sum()), "test": int(test.sum())}
    return out


def table(split: str, fixed=None) -> list[str]:
    lines = [f"split: fit on NOT ({split}), predict ({split}); step-time MAPE %",
             f"{'workload':<12} {'rows fit/test':>13} | {'scalesim out':>12} {'in':>6} {'all':>6} | "
             f"{'pollux out':>10} {'in':>6} {'all':>6}"]
    for w in WORKLOADS:
        p = pollux_dir() / f"{w}.placements.csv"
        r = evaluate(p, split, fixed)
        s, q = r["scalesim"], r["pollux"]
        lines.append(f"{w:<12} {str(r['rows']['train']) + '/' + str(r['rows']['test']):>13} | {s['out']:>12.1f} "
                     f"{s['in']:>6.1f} {s['all']:>6.1f} | {q['out']:>10.1f} {q['in']:>6.1f} {q['all']:>6.1f}")
    return lines


def params_table(split: str) -> list[str]:
    """The terms that carry the extrapolation, fitted on the training split, and sync-time MAPE."""
    lines = [f"fitted on NOT ({split}): scalesim terms; sync_time MAPE (multi-replica rows) in/out",
             f"{'workload':<12} {'gamma':>6} {'colocation':>10} {'cv':>6} {'jitter':>6} {'pair_sharing':>12} "
             f"{'M/bw_x s':>9} {'o_x s':>7} {'sync in':>8} {'out':>6}"]
    for w in WORKLOADS:
        steps = ob.load(pollux_dir() / f"{w}.placements.csv").steps
        test = ob.holdout_mask(steps, split)
        f = fit_perf(steps[~test].reset_index(drop=True))
        c, m = f.perf.compute, f.perf.comm
        pred = predict_quantities(f.perf, steps)

        def sync_mape(sel):
            sel = sel & (steps.num_replicas > 1)
            return mape(pred.sync_time[sel], steps.sync_time[sel])

        lines.append(f"{w:<12} {f.perf.gamma:>6.2f} {c.colocation:>10.3f} {c.cv:>6.3f} {m.jitter:>6.3f} "
                     f"{m.pair_sharing:>12.2f} {1 / m.bw_inter:>9.3f} {m.overhead_inter:>7.3f} "
                     f"{sync_mape(~test):>8.1f} {sync_mape(test):>6.1f}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="num_replicas>4")
    ap.add_argument("--splits", action="store_true", help="also other splits (robustness)")
    ap.add_argument("--ablations", action="store_true", help="also scalesim with single terms switched off")
    ap.add_argument("--params", action="store_true", help="also the fitted terms and sync-time errors")
    args = ap.parse_args(argv)
    if not pollux_dir().is_dir():
        print(f"no Pollux traces at {pollux_dir()} (set SCALESIM_POLLUX_DIR)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    print("\n".join(table(args.split)))
    if args.params:
        print()
        print("\n".join(params_table(args.split)))
    if args.splits:
        for split in ("num_replicas>6", "num_replicas>3", "num_nodes>2", "local_batch>=64 or num_replicas>8"):
            print()
            print("\n".join(table(split)))
    if args.ablations:
        for name, fixed in ABLATIONS.items():
            print(f"\nscalesim with {name}:")
            print("\n".join(table(args.split, fixed)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
