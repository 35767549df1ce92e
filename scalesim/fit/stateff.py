"""Calibrate statistical efficiency S(B) = S_min (1 + B_noise / B) (McCandlish et al. 2018) for the
model file; the work is done by scalesim.fit.curves (curves + measured noise, together).

What it needs (any of):
- training curves at two or more global batches: S_min and B_noise from the steps each run took to
  reach the target, with the measured noise (if any) as a prior on B_noise;
- one training curve plus measured gradient noise: B_noise from the noise measured along the run
  up to the target (progress-weighted), S_min from that run's steps;
- measured noise only: B_noise, S_min unknown (predictions then need an explicit target).
The stored dict keeps the measured, curves-only and fitted B_noise side by side with intervals and
every warning (degenerate fits, normalisation), so `fit` can print them and `validate` can check
the curves that were not used.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import DataError
from ..model import stateff as se
from . import curves as fc


def fit_stateff(curves, noise, target: float | None = None, grad_var_batch: float | None = None,
                batches=None) -> dict | None:
    """dict for the model file's `stateff`, or None without curves and noise."""
    have_curves = curves is not None and not curves.empty
    have_noise = noise is not None and not noise.empty
    if not have_curves and not have_noise:
        return None
    if have_curves:
        cs = fc.curve_set(curves, noise if have_noise else None, grad_var_batch)
        tgt = None
        if target is not None:
            if not math.isfinite(target):
                raise DataError("the target metric must be a finite number")
            tgt = fc.Target(cs.metric, float(target), cs.higher_is_better)
        res = fc.fit_curve_set(cs, tgt, batches=batches)
    else:
        cs = fc.measured_noise_set(noise, grad_var_batch or 1.0)
        if not cs.runs:
            return None
        res = fc.fit_curve_set(cs)
    out = res.as_dict()
    out["sources"] = sorted(res.reached) if res.reached else sorted(cs.runs)
    out["lines"] = res.summary_lines()
    return out


def stateff_lines(s: dict) -> list[str]:
    """What `fit` prints about statistical efficiency (from the model file's dict)."""
    if not s:
        return []
    head = f"statistical efficiency ({s.get('method')}):"
    if s.get("target"):
        t = s["target"]
        head += f" target {t.get('metric')} {'>=' if t.get('higher_is_better', True) else '<='} {t.get('value'):.4g};"
    lines = [head]
    if s.get("steps_to_target"):
        sd = s.get("steps_log_sd") or {}
        lines.append("  steps to target: " + ", ".join(
            f"B={b}: {v:,.0f}" + (f" (±{100 * sd[b]:.0f} %)" if sd.get(b) is not None and math.isfinite(sd[b]) else "")
            for b, v in s["steps_to_target"].items()))
    lines += ["  " + x for x in (s.get("lines") or [])]
    if not s.get("lines"):  # older model files
        lines.append(f"  B_noise = {s.get('b_noise')}, S_min = {s.get('s_min')}")
    return lines


def predicted_steps(s: dict, global_batch) -> tuple:
    """(steps, low, high) at global_batch from a stored fit (95 %)."""
    cov = s.get("cov_log")
    fit = se.CurveFit(float(s["s_min"]), float(s["b_noise"]),
                      np.asarray(cov if cov else [[0.0, 0.0], [0.0, 0.0]], float),
                      s.get("degenerate"), s.get("method") or "")
    return se.steps_interval(fit, global_batch)


def validation_rows(s: dict | None, curves):
    """Rows (config, quantity='steps_to_target', measured, predicted, error_pct, seen, source) for
    every training curve that reaches the model's target; seen = the curve was used in the fit."""
    import pandas as pd

    cols = ["config", "quantity", "measured", "predicted", "error_pct", "seen", "source"]
    if curves is None or curves.empty:
        return pd.DataFrame(columns=cols)
    if not s or not s.get("s_min") or not s.get("b_noise") or not s.get("target"):
        raise DataError("the model has no steps-to-target fit (stateff with s_min, b_noise and a target) to "
                        "check training curves against")
    t = s["target"]
    used = set(s.get("sources") or [])
    rows = []
    for src, c in curves.groupby("source", sort=False):
        B = float(c["global_batch"].iloc[0])
        y = se.steps_to_reach(c["iteration"], c["metric"], float(t["value"]), bool(t.get("higher_is_better", True)))
        if not math.isfinite(y) or y <= 0:
            continue
        p = float(se.steps_to_target(B, float(s["s_min"]), float(s["b_noise"])))
        rows.append({"config": f"global_batch={B:g}", "quantity": "steps_to_target", "measured": y, "predicted": p,
                     "error_pct": 100.0 * (p - y) / y, "seen": str(src) in used, "source": str(src)})
    return pd.DataFrame(rows, columns=cols)
