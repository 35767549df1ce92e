"""Calibrate statistical efficiency S(B) = S_min (1 + B_noise / B) (McCandlish et al. 2018).

What it needs:
- training curves at two or more global batch sizes: S_min and B_noise are fitted to the steps each
  run took to reach the target (the measured noise scale is then reported as a check), or
- one training curve plus measured gradient noise: B_noise is the measured noise scale, S_min follows
  from that run's steps, or
- measured noise only: B_noise, with S_min unknown (predictions then need an explicit target).
Noise that changes during training: the noise scale grows as the loss falls, and progress adds up
phase by phase, so the B_noise that reproduces S(B) is the progress-weighted mean of the measured
B_simple(t) up to the target (scalesim.model.stateff.effective_b_noise). Per-step estimates are
pooled in windows (ratio of means) before weighting; the first and last windows are reported so the
drift is visible.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import DataError
from ..model.stateff import effective_b_noise, fit_steps_to_target, pooled_b_simple, steps_to_reach

WINDOWS = 10


def default_target(curves) -> tuple[float, bool]:
    """The least good of the runs' best values, so that every run reaches it."""
    higher = bool(curves["higher_is_better"].iloc[0])
    best = curves.groupby("source")["metric"].agg("max" if higher else "min")
    return float(best.min() if higher else best.max()), higher


def noise_trajectory(noise, until_step: float = math.inf):
    """Windows of one run's noise rows: (window end step, pooled B_simple, steps covered)."""
    d = noise[noise["step"] <= until_step].sort_values("step")
    if len(d) < 2:
        return []
    out, prev = [], float(d["step"].iloc[0])
    for chunk in np.array_split(np.arange(len(d)), min(WINDOWS, len(d))):
        part = d.iloc[chunk]
        end = float(part["step"].iloc[-1])
        out.append((end, pooled_b_simple(part["grad_sqr"], part["grad_var"]), max(end - prev, 1.0)))
        prev = end
    return out


def measured_b_noise(noise, reached: dict) -> tuple[float, dict]:
    """Progress-weighted B_noise over all runs, and its first/last-window values."""
    vals, weights, first, last = [], [], [], []
    for src, d in noise.groupby("source"):
        batch = float(d["global_batch"].iloc[0])
        traj = noise_trajectory(d, reached.get(src, math.inf))
        traj = [t for t in traj if math.isfinite(t[1]) and t[1] > 0]
        if not traj:
            continue
        b_eff = effective_b_noise([t[1] for t in traj], [t[2] for t in traj], batch)
        vals.append(b_eff)
        weights.append(sum(t[2] for t in traj))
        first.append(traj[0][1])
        last.append(traj[-1][1])
    if not vals:
        return math.nan, {}
    return float(np.average(vals, weights=weights)), {"first_window": float(np.median(first)),
                                                      "last_window": float(np.median(last))}


def fit_stateff(curves, noise, target: float | None = None) -> dict | None:
    have_curves = curves is not None and not curves.empty
    have_noise = noise is not None and not noise.empty
    if not have_curves and not have_noise:
        return None
    out: dict = {"method": None}
    reached: dict = {}
    if have_curves:
        if curves["higher_is_better"].nunique() > 1:
            raise DataError("training curves disagree on whether the metric should rise or fall; fit one metric")
        tgt, higher = default_target(curves) if target is None else (float(target), bool(curves["higher_is_better"].iloc[0]))
        for src, c in curves.groupby("source"):
            reached[src] = steps_to_reach(c["iteration"], c["metric"], tgt, higher)
        runs = curves.groupby("source")["global_batch"].first()
        ok = {s: reached[s] for s in runs.index if math.isfinite(reached[s]) and reached[s] > 0}
        if not ok:
            raise DataError(f"no training curve reaches the target {tgt:g}; choose a smaller target (--target)")
        out["target"] = {"metric": str(curves["metric_name"].iloc[0]) if "metric_name" in curves else "metric",
                         "value": tgt, "higher_is_better": higher}
        out["steps_to_target"] = {f"{runs[s]:g}": v for s, v in ok.items()}
    b_meas, drift = measured_b_noise(noise, reached) if have_noise else (math.nan, {})
    if math.isfinite(b_meas):
        out["b_noise_measured"] = b_meas
        out["b_noise_drift"] = drift
    if have_curves:
        B = np.array([runs[s] for s in ok])
        S = np.array([ok[s] for s in ok])
        if np.unique(B).size >= 2:
            s_min, b_noise = fit_steps_to_target(B, S)
            out.update(method="steps at several batch sizes", s_min=s_min, b_noise=b_noise)
        elif math.isfinite(b_meas):
            s_min, b_noise = fit_steps_to_target(B, S, b_noise=b_meas)
            out.update(method="one batch size + measured noise", s_min=s_min, b_noise=b_noise)
        else:
            raise DataError("statistical efficiency: one training batch size and no gradient-noise measurements "
                            "cannot identify B_noise; add a curve at another batch size or grad_sqr/grad_var")
    elif math.isfinite(b_meas):
        out.update(method="measured noise only (no training curve: S_min unknown)", s_min=None, b_noise=b_meas)
    else:
        return None
    return out
