"""Tables from finished points (no TensorFlow): Goyal's Table 1, steps/epochs to target, and the
statistical-efficiency check: S(B) = S_min (1 + B_noise/B) fitted on the two smallest batches
only, predicting steps-to-target for every larger batch, and B_noise against measured B_simple."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from goyal_protocol import ARMS, REF_BATCH, equivalent_arms, plan
from scalesim.model.stateff import b_simple, steps_to_target
from scalesim.schema import read_json, write_json

BREAK_PP = 1.0   # "broke": mean test error more than 1 percentage point above the B=256 baseline


def load_points(out: Path) -> list:
    return [read_json(f) for f in sorted((out / "points").glob("*.json"))]


def target_spec(t):
    """(metric, value): a bare number means validation accuracy."""
    return ("val_acc", float(t)) if isinstance(t, (int, float)) else (t[0], float(t[1]))


def target_key(t) -> str:
    metric, v = target_spec(t)
    return f"acc{round(100 * v)}" if metric == "val_acc" else f"loss{v:.2f}"


def target_label(t) -> str:
    metric, v = target_spec(t)
    return f"{100 * v:.0f} % val accuracy" if metric == "val_acc" else f"train loss {v:g}"


def _series(curve: list, metric: str):
    """(updates done, value) pairs from step 0. Validation accuracy is measured after `step`
    updates; a window's mean training loss is taken at the middle of the updates it spans."""
    if metric == "val_acc":
        return [(0.0, 0.1)] + [(float(c["step"]), c["val_acc"]) for c in curve]
    out, prev = [(0.0, math.log(10.0))], 0
    for c in curve:
        out.append(((prev + c["step"] - 1) / 2.0, c["train_loss"]))
        prev = c["step"]
    return out


def crossing(curve: list, target):
    """(steps, epochs) at which the metric first reaches the target (accuracy >= or loss <=),
    linearly interpolated between measurements; None if never reached."""
    metric, v = target_spec(target)
    sign = 1.0 if metric == "val_acc" else -1.0
    pts = _series(curve, metric)
    spe = curve[0]["step"] / curve[0]["epoch"] if curve else 1.0
    for (s0, a0), (s1, a1) in zip(pts, pts[1:]):
        if math.isfinite(a1) and sign * (a1 - v) >= 0:
            f = (v - a0) / (a1 - a0) if a1 != a0 else 1.0
            s = s0 + min(max(f, 0.0), 1.0) * (s1 - s0)
            return s, s / spe
    return None


def window_b_simple(curve: list, upto_step=None) -> float:
    """B_simple as the ratio of the mean |G|^2 and tr(Sigma) estimates over steps <= upto_step."""
    rows = [r for r in curve if r.get("noise_n") and r["grad_sqr"] is not None
            and (upto_step is None or r["step"] <= max(upto_step, curve[0]["step"]))]
    n = sum(r["noise_n"] for r in rows)
    if not n:
        return math.nan
    sqr = sum(r["grad_sqr"] * r["noise_n"] for r in rows) / n
    var = sum(r["grad_var"] * r["noise_n"] for r in rows) / n
    return float(b_simple(grad_sqr=sqr, grad_var=var)) if sqr > 0 else math.nan


def point_rows(points: list, targets) -> list:
    rows = []
    for r in points:
        pt = r["point"]
        row = {"id": pt["id"], "global_batch": pt["global_batch"], "arm": pt["arm"], "seed": pt["seed"],
               "ranks": pt["ranks"], "peak_lr": r["peak_lr"], "warmup_epochs": r["warmup_epochs"],
               "total_steps": r["total_steps"], "diverged": r["diverged"], "test_err": r["test_err"],
               "final_val_acc": r["final_val_acc"], "b_simple_run": window_b_simple(r["curve"]),
               "wall_s": r["wall_s"], "images_per_s": r["images_per_s"]}
        for t in targets:
            c = crossing(r["curve"], t)
            key = target_key(t)
            row[f"steps_to_{key}"] = c[0] if c else math.nan
            row[f"epochs_to_{key}"] = c[1] if c else math.nan
            row[f"b_simple_to_{key}"] = window_b_simple(r["curve"], c[0] if c else None)
        rows.append(row)
    return rows


def _cell(vals) -> dict:
    v = np.asarray([x for x in vals if x is not None], float)
    fin = v[np.isfinite(v)]
    return {"mean": float(fin.mean()) if len(fin) else math.nan,
            "std": float(fin.std(ddof=1)) if len(fin) > 1 else math.nan,
            "n": int(len(v)), "n_finite": int(len(fin))}


def by_batch_arm(rows: list, field: str) -> dict:
    """{(B, arm): cell} over single-process points, duplicating coinciding arms."""
    out = {}
    for B in sorted({r["global_batch"] for r in rows}):
        for arm in ARMS:
            vals = [r[field] for r in rows if r["global_batch"] == B and r["ranks"] == 1
                    and arm in equivalent_arms(B, r["arm"])]
            if vals:
                out[(B, arm)] = _cell(vals)
    return out


def _fmt(c, digits=2, pm=True) -> str:
    if c is None or c["n"] == 0:
        return "–"
    if not math.isfinite(c["mean"]):
        return "not reached"
    s = f"{c['mean']:.{digits}f}"
    if pm and c["n_finite"] > 1:
        s += f" ± {c['std']:.{digits}f}"
    if c["n"] > 1:
        s += f" (n={c['n']}" + (f", {c['n'] - c['n_finite']} not reached" if c["n_finite"] < c["n"] else "") + ")"
    return s


def fit_two_point(b1: float, s1: float, b2: float, s2: float):
    """S_min, B_noise from S(B) = S_min (1 + B_noise/B) through two points (exact solve):
    E = S B is linear in B with slope S_min and intercept S_min B_noise."""
    s_min = (s2 * b2 - s1 * b1) / (b2 - b1)
    if not s_min > 0:
        return math.nan, math.inf   # examples-to-target not growing with B: no noise scale resolved
    return float(s_min), float(s1 * b1 / s_min - b1)


def stateff_check(rows: list, batches, target) -> dict:
    key = target_key(target)
    steps = by_batch_arm(rows, f"steps_to_{key}")
    bsim = by_batch_arm(rows, f"b_simple_to_{key}")
    bsim_run = by_batch_arm(rows, "b_simple_run")
    small = [B for B in batches if (B, "c") in steps][:2]
    res = {"target": target_label(target), "target_key": key, "arm": "c", "fit_batches": small, "per_batch": []}
    if len(small) < 2 or not all(math.isfinite(steps[(B, "c")]["mean"]) for B in small):
        res["error"] = "the two smallest batches did not both reach the target"
        return res
    s_min, b_noise = fit_two_point(small[0], steps[(small[0], "c")]["mean"], small[1], steps[(small[1], "c")]["mean"])
    res.update(s_min=s_min, b_noise=b_noise)
    for B in batches:
        if (B, "c") not in steps:
            continue
        pred = float(steps_to_target(B, s_min, b_noise)) if math.isfinite(s_min) else math.nan
        meas = steps[(B, "c")]
        total = max(r["total_steps"] for r in rows if r["global_batch"] == B)
        err = 100.0 * (pred - meas["mean"]) / meas["mean"] if math.isfinite(meas["mean"]) else math.nan
        res["per_batch"].append({
            "global_batch": B, "used_in_fit": B in small, "measured_steps": meas["mean"],
            "measured_std": meas["std"], "n": meas["n"], "reached": meas["n_finite"],
            "budget_steps": total, "predicted_steps": pred, "error_pct": err,
            "predicted_within_budget": bool(pred <= total) if math.isfinite(pred) else None,
            "b_simple_to_target": bsim[(B, "c")]["mean"], "b_simple_run": bsim_run[(B, "c")]["mean"]})
    return res


def break_point(cells: dict, batches, arm: str):
    base = cells.get((REF_BATCH, arm))
    if not base:
        return None
    for B in batches:
        if B > REF_BATCH and (B, arm) in cells and cells[(B, arm)]["mean"] > base["mean"] + BREAK_PP:
            return B
    return None


def table1_md(rows: list, batches, targets) -> str:
    err = by_batch_arm(rows, "test_err")
    tt = next((t for t in targets if target_spec(t)[0] == "val_acc"), targets[0])
    key = target_key(tt)
    st, ep = by_batch_arm(rows, f"steps_to_{key}"), by_batch_arm(rows, f"epochs_to_{key}")
    lines = ["| global batch | η peak (linear) | steps in budget | (a) no scaling: test err % | (b) linear, no warmup | "
             f"(c) linear + warmup | (c) steps to {target_label(tt)} | (c) epochs to it |",
             "|---:|---:|---:|---|---|---|---|---|"]
    for B in batches:
        total = next((r["total_steps"] for r in rows if r["global_batch"] == B), None)
        lines.append(f"| {B} | {0.1 * B / REF_BATCH:.3g} | {total} | {_fmt(err.get((B, 'a')))} | "
                     f"{_fmt(err.get((B, 'b')))} | {_fmt(err.get((B, 'c')))} | "
                     f"{_fmt(st.get((B, 'c')), 0)} | {_fmt(ep.get((B, 'c')), 2)} |")
    return "\n".join(lines)


def stateff_md(chk: dict) -> str:
    if "error" in chk:
        return f"S(B) fit impossible: {chk['error']}."
    lines = [f"Fit on B = {chk['fit_batches'][0]} and {chk['fit_batches'][1]} (arm c, target "
             f"{chk['target']}): S_min = {chk['s_min']:.1f} steps, "
             f"B_noise = {chk['b_noise']:.0f}.", "",
             "| B | measured steps | predicted | error % | budget steps | B_simple (to target) | B_simple (whole run) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in chk["per_batch"]:
        meas = (f"{r['measured_steps']:.1f}" if math.isfinite(r["measured_steps"]) else "not reached") + \
               (f" ({r['reached']}/{r['n']} reached)" if r["n"] > 1 else "")
        e = f"{r['error_pct']:+.0f}" if math.isfinite(r["error_pct"]) else "–"
        lines.append(f"| {r['global_batch']}{' (fit)' if r['used_in_fit'] else ''} | {meas} | "
                     f"{r['predicted_steps']:.1f} | {e} | {r['budget_steps']} | "
                     f"{r['b_simple_to_target']:.0f} | {r['b_simple_run']:.0f} |")
    return "\n".join(lines)


def hvd_compare(points: list) -> list:
    out = []
    for r in points:
        pt = r["point"]
        if pt["ranks"] > 1:
            twin = next((q for q in points if q["point"]["ranks"] == 1 and all(
                q["point"][k] == pt[k] for k in ("global_batch", "arm", "seed"))), None)
            if twin:
                va = np.array([c["val_acc"] for c in r["curve"]])
                vb = np.array([c["val_acc"] for c in twin["curve"]])
                m = min(len(va), len(vb))
                la = np.array([c["train_loss"] for c in r["curve"]])[:m]
                lb = np.array([c["train_loss"] for c in twin["curve"]])[:m]
                out.append({"hvd": pt["id"], "emulated": twin["point"]["id"],
                            "max_rel_train_loss_diff": float(np.max(np.abs(la - lb) / np.abs(lb))),
                            "first_window_train_loss": [float(la[0]), float(lb[0])],
                            "test_err_hvd": r["test_err"], "test_err_emulated": twin["test_err"],
                            "max_abs_val_acc_diff_pp": float(100 * np.max(np.abs(va[:m] - vb[:m]))),
                            "first_eval_val_acc": [float(va[0]), float(vb[0])],
                            "b_simple_hvd": window_b_simple(r["curve"]),
                            "b_simple_emulated": window_b_simple(twin["curve"]),
                            "wall_s": [r["wall_s"], twin["wall_s"]]})
    return out


def analyse(out: Path, proto) -> dict:
    import pandas as pd

    points = load_points(out)
    rows = point_rows(points, proto.targets)
    files = []
    if rows:
        pd.DataFrame(rows).sort_values(["global_batch", "arm", "seed", "ranks"]).to_csv(out / "results.csv", index=False)
        files.append("results.csv")
    batches = [B for B in proto.batches if any(r["global_batch"] == B for r in rows)]
    checks = [stateff_check(rows, batches, t) for t in proto.targets] if rows else []
    err = by_batch_arm(rows, "test_err")
    summary = {"n_points": len(points), "planned": len(plan(proto)),
               "break_batch": {a: break_point(err, batches, a) for a in ARMS}, "break_pp": BREAK_PP,
               "stateff": checks, "hvd_vs_emulated": hvd_compare(points),
               "test_err": {f"{B}-{a}": c for (B, a), c in err.items()}}
    write_json(out / "summary.json", summary)
    md = ["## Table 1 form", "", table1_md(rows, batches, proto.targets) if rows else "(no points)", ""]
    for chk in checks:
        md += [f"## Statistical-efficiency check, target {chk['target']}", "", stateff_md(chk), ""]
    (out / "tables.md").write_text("\n".join(md) + "\n")
    files += ["summary.json", "tables.md"]
    if points:
        import shutil

        from goyal_export import export_rundir, validation_rows

        shutil.rmtree(out / "run", ignore_errors=True)   # derived data: rebuilt from the points
        export_rundir(points, out / "run", proto)
        pd.DataFrame(validation_rows(checks), columns=["quantity", "config", "measured", "predicted",
                                                       "error_pct"]).to_csv(out / "stateff_validation.csv", index=False)
        files += ["run/", "stateff_validation.csv"]
    return {"files": files, **summary}
