"""Pollux training curves: predict steps-to-target at large batches from the smallest ones.

    .venv/bin/python experiments/pollux/curves.py [--sensitivity]

Reads <repo>/../shared/external/pollux/curves/<workload>.validation-<batch>.csv in place (override:
SCALESIM_POLLUX_DIR); nothing is copied into the repository. Protocol (issue 14): target = the
least good of the curves' best metrics (every run reaches it); measured steps = first crossing,
interpolated between logged rows; fit on the two smallest batches (curves + their noise columns),
and separately on the smallest alone (its noise columns), predict every larger batch; MAPE and
worst signed error per workload. Reference: Pollux's gain formula from the smallest batch (the
measured noise path taken at face value, scalesim.model.stateff.path_steps).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scalesim.model import stateff as se  # noqa: E402

WORKLOADS = ("cifar10", "ncf")


def pollux_dir() -> Path:
    return Path(os.environ.get("SCALESIM_POLLUX_DIR") or REPO.parent / "shared" / "external" / "pollux")


def load(workload: str):
    """The workload's curves via the package's reader (batch from the exact file-name rule)."""
    from scalesim.fit import curves as fc

    found = sorted((pollux_dir() / "curves").glob(f"{workload}.validation-*.csv"))
    return fc.read_curve_set(found)


def errors(pred: dict, truth: dict) -> tuple[float, float, dict]:
    e = {B: 100.0 * (pred[B] - truth[B]) / truth[B] for B in pred}
    worst = max(e.values(), key=abs)
    return float(np.mean([abs(v) for v in e.values()])), float(worst), e


def evaluate(workload: str, prior_sd: float = se.B_SIMPLE_LOG_SD, verbose: bool = True) -> dict:
    from scalesim.fit import curves as fc

    cs = load(workload)
    target = fc.default_target(cs)
    reached = {r.global_batch: r for r in fc.reach(cs, target).values()}
    runs = {r.global_batch: r for r in cs.runs.values()}
    if len(runs) != len(cs.runs):
        raise SystemExit(f"{workload}: more than one curve per batch size")
    Bs = sorted(runs)
    out = {"target": target.value, "grad_var_batch": cs.grad_var_batch, "normalisation": cs.normalisation,
           "steps": {B: reached[B].steps for B in Bs}}
    lines = [f"== {workload}: target {target.metric} >= {target.value:.4f} (least good curve's best); "
             f"grad_var normalisation: {cs.normalisation}"]
    lines.append("   measured steps to target: " + ", ".join(f"B={B:g}: {reached[B].steps:.0f} (±{100 * reached[B].log_sd:.0f}%)"
                                                         for B in Bs))
    truth = {B: reached[B].steps for B in Bs}
    for name, fit_on in (("two smallest", Bs[:2]), ("smallest alone", Bs[:1])):
        res = fc.fit_curve_set(cs, target, batches=fit_on, b_measured_log_sd=prior_sd)
        test = [B for B in Bs if B > max(fit_on)]
        pred = {B: float(se.steps_to_target(B, res.fit.s_min, res.fit.b_noise)) for B in test}
        m, w, e = errors(pred, truth)
        out[name] = {"mape": m, "worst": w, "errors": e, "b_noise": res.fit.b_noise,
                     "b_measured": res.b_measured, "s_min": res.fit.s_min}
        lines.append(f"   fit on {name} ({', '.join(f'{b:g}' for b in fit_on)}): {res.fit.method}")
        lines.extend("     " + s for s in res.summary_lines())
        lines.append("     predicted vs measured steps: " + ", ".join(f"B={B:g}: {pred[B]:.0f}/{truth[B]:.0f} ({e[B]:+.1f}%)"
                                                               for B in test))
        lines.append(f"     MAPE {m:.1f} %, worst {w:+.1f} %")
        if len(fit_on) >= 2:
            cur = fc.fit_curve_set(cs, target, batches=fit_on, use_noise=False)
            pc = {B: float(se.steps_to_target(B, cur.fit.s_min, cur.fit.b_noise)) for B in test}
            mc, wc, _ = errors(pc, truth)
            out[name]["curves_only"] = {"mape": mc, "worst": wc, "b_noise": cur.fit.b_noise}
            lines.append(f"     curves alone (no noise): B_noise {cur.fit.b_noise:.4g}, MAPE {mc:.1f} %, worst {wc:+.1f} %"
                         + "".join(f"\n       warning: {x}" for x in cur.warnings))
    # Pollux's own gain formula from the smallest batch's noise path
    B0 = Bs[0]
    path = runs[B0].path
    test = Bs[1:]
    pred = {B: float(se.path_steps(path, B0, truth[B0], B)) for B in test}
    m, w, e = errors(pred, truth)
    out["pollux gain"] = {"mape": m, "worst": w, "errors": e}
    lines.append(f"   reference, Pollux gain formula from B={B0:g}: " + ", ".join(f"B={B:g}: {e[B]:+.1f}%" for B in test)
                 + f"  MAPE {m:.1f} %, worst {w:+.1f} %")
    if verbose:
        print("\n".join(lines))
    return out


def splits(workload: str, ks=(2, 3, 4)) -> list[str]:
    """Other held-out splits: fit on the k smallest batches (curves + noise), predict the rest."""
    from scalesim.fit import curves as fc

    cs = load(workload)
    target = fc.default_target(cs)
    truth = {r.global_batch: r.steps for r in fc.reach(cs, target).values()}
    Bs = sorted(truth)
    out = []
    for k in ks:
        if k >= len(Bs):
            continue
        res = fc.fit_curve_set(cs, target, batches=Bs[:k])
        pred = {B: float(se.steps_to_target(B, res.fit.s_min, res.fit.b_noise)) for B in Bs[k:]}
        m, w, _ = errors(pred, truth)
        out.append(f"  {workload}: fit on {k} smallest ({Bs[k - 1]:g} and below), predict {len(pred)}: "
                   f"MAPE {m:.1f} %, worst {w:+.0f} % (B_noise {res.fit.b_noise:.3g})")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensitivity", action="store_true",
                    help="also with the B_simple prior twice as tight / twice as wide")
    ap.add_argument("--splits", action="store_true", help="also fit on the 3 and 4 smallest batches")
    args = ap.parse_args(argv)
    if not (pollux_dir() / "curves").is_dir():
        print(f"no Pollux curves at {pollux_dir() / 'curves'} (set SCALESIM_POLLUX_DIR)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    res = {w: evaluate(w) for w in WORKLOADS}
    print("\nsummary (MAPE % / worst %):")
    print(f"{'workload':<9} {'two smallest':>16} {'smallest alone':>16} {'curves alone':>16} {'Pollux gain':>16}")
    for w, r in res.items():
        def cell(d):
            return f"{d['mape']:.1f} / {d['worst']:+.0f}"
        print(f"{w:<9} {cell(r['two smallest']):>16} {cell(r['smallest alone']):>16} "
              f"{cell(r['two smallest']['curves_only']):>16} {cell(r['pollux gain']):>16}")
    if args.sensitivity:
        print("\nsensitivity to the prior width on log(B_noise / B_simple) (two smallest):")
        for f in (0.5, 1.0, 2.0):
            sd = f * se.B_SIMPLE_LOG_SD
            cells = []
            for w in WORKLOADS:
                r = evaluate(w, prior_sd=sd, verbose=False)["two smallest"]
                cells.append(f"{w} {r['mape']:.1f} / {r['worst']:+.0f} (B_noise {r['b_noise']:.3g})")
            print(f"  sd = {sd:.2f} (95 % within x{math.exp(1.96 * sd):.0f}): " + "; ".join(cells))
    if args.splits:
        print("\nother splits (curves + noise of the k smallest batches):")
        for w in WORKLOADS:
            print("\n".join(splits(w)))
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
