"""Training curves -> statistical efficiency: steps to a target metric vs global batch, fitted from
curves at one or more batches together with the gradient noise measured along them
(scalesim.model.stateff: S(B) = S_min (1 + B_noise/B), McCandlish et al. 2018).

Inputs are two frames (as scalesim.fit.observations builds them):
  curves  source, global_batch, iteration, metric, higher_is_better [, metric_name, progress]
  noise   source, global_batch, step, grad_sqr, grad_var [, smoothed]
`smoothed` marks rows that are already averages over their logging interval (AdaptDL's logs);
raw per-step estimates (a run directory's noise table) are pooled in windows instead.

grad_var normalisation. McCandlish's tr(Sigma) is per example, so B_simple = grad_var / grad_sqr.
AdaptDL logs the variance of a gradient averaged over the job's INITIAL batch B0, so
tr(Sigma) = grad_var * B0 (`grad_var_batch`). It is taken from a flag, else detected where the
data show it: AdaptDL's `progress` column grows by its gain (1 + B_s/B0) / (1 + B_s/B) per step, which
only one normalisation reproduces; a lone run whose progress equals its iteration is the initial
batch itself.
"""
from __future__ import annotations

import math
from pathlib import Path
import re
from typing import NamedTuple

import numpy as np

from ..errors import DataError
from ..model import stateff as se

GAIN_TOLERANCE = 0.05     # median |log| mismatch of progress increments for a detected normalisation
_EXACT_NAME = re.compile(r"^(?:.+\.)?validation-(\d+)$")


class Target(NamedTuple):
    metric: str
    value: float
    higher_is_better: bool


class Run(NamedTuple):
    source: str
    global_batch: float
    iteration: np.ndarray
    metric: np.ndarray
    path: se.NoisePath | None      # B_simple in examples (normalisation applied)


class CurveSet(NamedTuple):
    runs: dict                      # source -> Run
    metric: str
    higher_is_better: bool
    grad_var_batch: float           # tr(Sigma) = grad_var * grad_var_batch
    normalisation: str              # how grad_var_batch was decided, in words
    warnings: tuple = ()


class Reached(NamedTuple):
    global_batch: float
    steps: float
    log_sd: float


def batch_from_name(path) -> int | None:
    """The batch size in an exact `validation-<B>.csv` or `<workload>.validation-<B>.csv` name, else
    None (`validation-256-run2.csv` is not batch 2, nor batch 256)."""
    m = _EXACT_NAME.match(Path(path).stem)
    return int(m.group(1)) if m else None


# --- normalisation ---------------------------------------------------------------------------------

def _gain_one(it, pr) -> bool:
    it, pr = np.asarray(it, float), np.asarray(pr, float)
    ok = (it > 0) & (pr > 0)
    return bool(ok.any() and np.median(np.abs(np.log(pr[ok] / it[ok]))) < 0.01)


def detect_grad_var_batch(curves, noise, explicit: float | None = None) -> tuple[float, str, list]:
    """(grad_var_batch, how it was decided, warnings)."""
    warnings: list[str] = []
    if "progress" not in curves or curves["progress"].isna().all() or noise.empty:
        if explicit is not None:
            return float(explicit), f"given: grad_var is the variance of a mean over {explicit:g} examples", warnings
        return 1.0, "assumed per example (tr(Sigma)); no progress column to check it against", warnings
    runs = {}
    for src, c in curves.groupby("source"):
        n = noise[noise["source"] == src]
        if n.empty or c["progress"].isna().all():
            continue
        d = c.merge(n[["step", "grad_sqr", "grad_var"]], left_on="iteration", right_on="step", how="inner")
        if not d.empty:
            runs[src] = (float(c["global_batch"].iloc[0]), d)
    if not runs:
        return (float(explicit), "given", warnings) if explicit is not None else (1.0, "assumed per example", warnings)
    initial = [b for b, d in runs.values() if _gain_one(d["iteration"], d["progress"])]
    b0 = min(initial) if initial else min(b for b, _ in runs.values())
    others = [(b, d) for b, d in runs.values() if b != b0]
    if not others:
        c0, how = (b0, f"AdaptDL convention: progress = iteration marks the job's initial batch {b0:g}, "
                       "over which grad_var is a variance of the mean (not checkable with this run alone)")
        if explicit is not None and explicit != c0:
            return float(explicit), f"given ({explicit:g}); {how}", warnings
        return c0, how, warnings

    def err(c):
        e = [se.gain_error(d["iteration"], d["progress"], b, b0, d["grad_var"] * c / d["grad_sqr"]) for b, d in others]
        e = [x for x in e if math.isfinite(x)]
        return float(np.median(e)) if e else math.nan

    cands = {1.0: err(1.0), float(b0): err(float(b0))}
    best = min(cands, key=lambda c: cands[c] if math.isfinite(cands[c]) else math.inf)
    other = [c for c in cands if c != best][0]
    clear = cands[best] < GAIN_TOLERANCE and not cands[other] < 2 * cands[best]
    if explicit is not None:
        if clear and explicit != best:
            warnings.append(f"--grad-var-batch {explicit:g} disagrees with the progress column, which AdaptDL's "
                            f"gain reproduces with {best:g} (mismatch {cands[best]:.3f} vs {err(float(explicit)):.3f})")
        return float(explicit), f"given: grad_var is the variance of a mean over {explicit:g} examples", warnings
    if clear:
        what = "per example" if best == 1.0 else f"variance of a mean over the initial batch {best:g}"
        return best, (f"detected from the progress column: {what} (AdaptDL gain matches progress to "
                      f"{100 * cands[best]:.1f} %, the other reading to {100 * cands[other]:.0f} %)"), warnings
    warnings.append("the progress column matches neither grad_var normalisation (per example / per initial batch); "
                    "assuming per example; set --grad-var-batch")
    return 1.0, "assumed per example (progress column inconclusive)", warnings


# --- building the set --------------------------------------------------------------------------------

def _path(n, grad_var_batch: float) -> se.NoisePath | None:
    """One source's noise rows as a path. The normalisation applies to logged (smoothed) rows from
    curve files; scalesim's own per-step rows are per example by construction."""
    if n is None or n.empty:
        return None
    smoothed = bool(n["smoothed"].iloc[0]) if "smoothed" in n else False
    scale = grad_var_batch if smoothed else 1.0
    path = se.noise_path(n["step"], n["grad_sqr"], n["grad_var"] * scale, smoothed=smoothed)
    return path if path.end.size else None


def _noise_only(noise, grad_var_batch: float) -> dict:
    """Runs with noise and no curve, one per (source, global batch): a `measure` run holds several
    configurations."""
    runs = {}
    if noise.empty:
        return runs
    for (src, b), n in noise.groupby(["source", "global_batch"], sort=False):
        path = _path(n, grad_var_batch)
        if path is not None:
            key = f"{src} (global batch {b:g})"
            runs[key] = Run(key, float(b), np.array([]), np.array([]), path)
    return runs


def curve_set(curves, noise=None, grad_var_batch: float | None = None) -> CurveSet:
    """Runs with a curve (and their noise), plus runs with noise only (no metric)."""
    import pandas as pd

    if curves is None or curves.empty:
        raise DataError("no training curves")
    if curves["higher_is_better"].nunique() > 1:
        raise DataError("training curves disagree on whether the metric should rise or fall; fit one metric")
    noise = noise if noise is not None else pd.DataFrame(columns=["source", "global_batch", "step", "grad_sqr", "grad_var"])
    c0, how, warnings = detect_grad_var_batch(curves, noise, grad_var_batch)
    runs = {}
    for src, c in curves.groupby("source", sort=False):
        c = c.sort_values("iteration")
        path = _path(noise[noise["source"] == src] if not noise.empty else None, c0)
        runs[str(src)] = Run(str(src), float(c["global_batch"].iloc[0]), c["iteration"].to_numpy(float),
                             c["metric"].to_numpy(float), path)
    if not noise.empty:
        runs.update(_noise_only(noise[~noise["source"].astype(str).isin(runs)], c0))
    metric = str(curves["metric_name"].iloc[0]) if "metric_name" in curves else "metric"
    return CurveSet(runs, metric, bool(curves["higher_is_better"].iloc[0]), c0, how, tuple(warnings))


def measured_noise_set(noise, grad_var_batch: float = 1.0) -> CurveSet:
    """Noise without curves: runs with a path and no metric."""
    runs = _noise_only(noise, grad_var_batch)
    return CurveSet(runs, "metric", True, grad_var_batch, "given" if grad_var_batch != 1.0 else "per example")


def default_target(cs: CurveSet) -> Target:
    """The least good of the runs' best values, so that every run reaches it."""
    best = [(r.metric.max() if cs.higher_is_better else r.metric.min()) for r in cs.runs.values() if r.metric.size]
    if not best:
        raise DataError("no training curve has a metric value")
    return Target(cs.metric, float(min(best) if cs.higher_is_better else max(best)), cs.higher_is_better)


def reach(cs: CurveSet, target: Target) -> dict:
    """source -> Reached (steps nan where the run never gets there)."""
    out = {}
    for src, r in cs.runs.items():
        if not r.metric.size:
            continue
        s = se.steps_to_reach(r.iteration, r.metric, target.value, target.higher_is_better)
        sd = se.crossing_log_sd(r.iteration, r.metric, target.value, target.higher_is_better) if math.isfinite(s) else math.nan
        out[src] = Reached(r.global_batch, s, sd)
    return out


# --- the fit -------------------------------------------------------------------------------------------

class StateffResult(NamedTuple):
    fit: se.CurveFit | None           # None: measured noise only, S_min unknown
    target: Target | None
    reached: dict                     # source -> Reached (runs used in the fit)
    b_measured: float                 # progress-weighted measured B_simple up to the target (nan: none)
    b_measured_runs: dict             # source -> that run's value
    b_trajectory: dict                # {"first": B_simple of the first interval, "last": ..., medians}
    curves_only: se.CurveFit | None   # the fit without the measured noise (two or more batches)
    apart: dict | None                # {"ratio": curves/measured, "sd": difference in sd units}
    warnings: tuple
    normalisation: str
    prior_log_sd: float

    def summary_lines(self) -> list[str]:
        lines = []
        z = 1.96
        if math.isfinite(self.b_measured):
            f = math.exp(z * self.prior_log_sd)
            vals = list(self.b_measured_runs.values())
            spread = f" (runs {min(vals):.4g}-{max(vals):.4g})" if len(vals) > 1 else ""
            lines.append(f"B_noise measured (progress-weighted B_simple to the target): {self.b_measured:.4g}{spread}, "
                         f"as an estimate of B_noise x/÷ {f:.0f} (95 %); B_simple first interval "
                         f"{self.b_trajectory.get('first', math.nan):.4g} -> last {self.b_trajectory.get('last', math.nan):.4g}")
        if math.isfinite(self.b_measured):
            lines.append(f"grad_var normalisation: {self.normalisation}")
        if self.curves_only is not None:
            lo, hi = se.b_noise_interval(self.curves_only)
            lines.append(f"B_noise from the curves alone: {self.curves_only.b_noise:.4g} [{lo:.3g}, {hi:.3g}]")
        if self.fit is not None:
            lo, hi = se.b_noise_interval(self.fit)
            lines.append(f"B_noise fitted ({self.fit.method}): {self.fit.b_noise:.4g} [{lo:.3g}, {hi:.3g}] (95 %), "
                         f"S_min = {self.fit.s_min:.4g} steps")
        if self.apart:
            lines.append(f"curves vs measured noise: B_noise {self.apart['ratio']:.3g}x the measured value, "
                         f"{self.apart['sd']:.1f} sd apart ({'consistent' if self.apart['sd'] < 2 else 'they disagree'})")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines

    def as_dict(self) -> dict:
        d: dict = {"method": self.fit.method if self.fit else "measured noise only (no training curve: S_min unknown)",
                   "s_min": self.fit.s_min if self.fit else None,
                   "b_noise": self.fit.b_noise if self.fit else (self.b_measured if math.isfinite(self.b_measured) else None)}
        if self.fit is not None:
            lo, hi = se.b_noise_interval(self.fit)
            d["b_noise_interval"] = [lo, hi]
            d["cov_log"] = [[float(x) for x in row] for row in self.fit.cov]
            d["degenerate"] = self.fit.degenerate
        if self.target is not None:
            d["target"] = {"metric": self.target.metric, "value": self.target.value,
                           "higher_is_better": self.target.higher_is_better}
            d["steps_to_target"] = {f"{r.global_batch:g}": r.steps for r in self.reached.values()}
            d["steps_log_sd"] = {f"{r.global_batch:g}": r.log_sd for r in self.reached.values()}
        if math.isfinite(self.b_measured):
            d["b_noise_measured"] = self.b_measured
            d["b_noise_measured_interval"] = [self.b_measured * math.exp(-1.96 * self.prior_log_sd),
                                              self.b_measured * math.exp(1.96 * self.prior_log_sd)]
            d["b_noise_drift"] = {"first_window": self.b_trajectory.get("first"),
                                  "last_window": self.b_trajectory.get("last")}
        if self.curves_only is not None:
            d["b_noise_curves"] = self.curves_only.b_noise
            d["b_noise_curves_interval"] = list(se.b_noise_interval(self.curves_only))
        if self.apart:
            d["curves_vs_noise"] = self.apart
        d["grad_var_normalisation"] = self.normalisation
        d["warnings"] = list(self.warnings)
        return d


def _measured(cs: CurveSet, until: dict, only=None) -> tuple[float, dict, dict]:
    vals, first, last = {}, [], []
    for src, r in cs.runs.items():
        if r.path is None or (only is not None and src not in only):
            continue
        _, b = se.path_progress(r.path, r.global_batch, until.get(src, math.inf))
        if math.isfinite(b) and b > 0:
            vals[src] = b
            first.append(r.path.b_simple[0])
            last.append(r.path.b_simple[min(np.searchsorted(r.path.end, until.get(src, math.inf)), r.path.end.size - 1)])
    if not vals:
        return math.nan, {}, {}
    # each run estimates the same quantity: pool in log space
    return (float(np.exp(np.mean(np.log(list(vals.values()))))), vals,
            {"first": float(np.median(first)), "last": float(np.median(last))})


def fit_curve_set(cs: CurveSet, target: Target | None = None, batches=None, use_noise: bool = True,
                  b_measured_log_sd: float = se.B_SIMPLE_LOG_SD) -> StateffResult:
    """Fit S(B) to the runs (only those at `batches` when given) that have a metric curve."""
    warnings = list(cs.warnings)
    runs = {s: r for s, r in cs.runs.items() if batches is None or r.global_batch in set(float(b) for b in batches)}
    if not runs:
        raise DataError("no training run at the requested batch sizes")
    sub = cs._replace(runs=runs)
    with_curve = {s: r for s, r in runs.items() if r.metric.size}
    if not with_curve:
        b, vals, traj = _measured(sub, {})
        if not math.isfinite(b):
            raise DataError("statistical efficiency: neither training curves nor a resolved noise scale")
        return StateffResult(None, None, {}, b, vals, traj, None, None, tuple(warnings), cs.normalisation, b_measured_log_sd)
    target = target or default_target(sub._replace(runs=with_curve))
    reached = reach(sub._replace(runs=with_curve), target)
    ok = {s: r for s, r in reached.items() if math.isfinite(r.steps) and r.steps > 0}
    missed = sorted(set(reached) - set(ok))
    if missed:
        warnings.append(f"{len(missed)} run(s) never reach {target.metric} {target.value:g} and are left out: "
                        + ", ".join(missed[:3]))
    if not ok:
        raise DataError(f"no training curve reaches the target {target.value:g}; choose a smaller target (--target)")
    until = {s: r.steps for s, r in ok.items()}
    b_meas, b_runs, traj = _measured(sub, until, only=set(ok)) if use_noise else (math.nan, {}, {})
    if use_noise and not math.isfinite(b_meas):
        # noise only from runs without a curve (e.g. `measure`: a few steps from initialisation)
        b_meas, b_runs, traj = _measured(sub, {}, only={s for s, r in runs.items() if not r.metric.size})
        if math.isfinite(b_meas):
            warnings.append("the measured noise comes from runs without a training curve (e.g. `measure`, which "
                            "starts from the initial weights), so it describes early training only; the noise "
                            "scale usually grows as training proceeds")
    B = np.array([r.global_batch for r in ok.values()])
    S = np.array([r.steps for r in ok.values()])
    sd = np.array([r.log_sd for r in ok.values()])
    curves_only = None
    if np.unique(B).size >= 2:
        curves_only = se.fit_curves(B, S, sd)
        reason = se.degenerate_reason(curves_only, B)
        if reason and not math.isfinite(b_meas):
            warnings.append(reason)
    if math.isfinite(b_meas):
        fit = se.fit_curves(B, S, sd, b_measured=b_meas, b_measured_log_sd=b_measured_log_sd)
        if fit.degenerate:
            side = "far above" if fit.degenerate == "b_noise->inf" else "far below"
            warnings.append(f"B_noise {fit.b_noise:.3g} is {side} the fitted batches ({B.min():g}-{B.max():g}): the curves "
                            f"cannot place it there ({'perfect scaling' if side == 'far above' else 'no gain from batch'} "
                            "is all they show), its value comes from the measured noise")
    elif curves_only is not None:
        fit = curves_only
    else:
        raise DataError("statistical efficiency: one training batch size and no gradient-noise measurements "
                        "cannot identify B_noise; add a curve at another batch size or grad_sqr/grad_var")
    apart = None
    if curves_only is not None and math.isfinite(b_meas):
        var_c = float(curves_only.cov[1, 1])
        d = math.log(curves_only.b_noise / b_meas)
        apart = {"ratio": float(math.exp(d)), "sd": float(abs(d) / math.sqrt(var_c + b_measured_log_sd ** 2))}
    return StateffResult(fit, target, ok, b_meas, b_runs, traj, curves_only, apart, tuple(warnings),
                         cs.normalisation, b_measured_log_sd)


# --- reading curve files -----------------------------------------------------------------------------

def read_curve(path, batch_size: float | None = None, higher_is_better: bool = True):
    """(curves, noise) frames from one curve CSV: iteration, metric [, progress, grad_sqr, grad_var,
    grad_var_batch, batch_size]. The batch comes from `batch_size` (argument, else column), else the
    exact file-name rule (`batch_from_name`); anything else is refused rather than guessed."""
    import pandas as pd

    from .traces import _numeric, _read_csv

    path = Path(path)
    df = _read_csv(path)
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in ("iteration", "metric") if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; a training curve needs "
                        "iteration,metric[,grad_sqr,grad_var]")
    if df.empty:
        raise DataError(f"{path}: no rows")
    if batch_size is None and "batch_size" in df:
        b = _numeric(df, "batch_size", path)
        if b.nunique() > 1:
            raise DataError(f"{path}: batch_size changes within the file; one file per batch size")
        batch_size = float(b.iloc[0])
    if batch_size is None:
        batch_size = batch_from_name(path)
        if batch_size is None:
            raise DataError(f"{path}: cannot tell the batch size: add a batch_size column, pass --batch-size, or "
                            "name the file validation-<batch>.csv")
    if not batch_size > 0:
        raise DataError(f"{path}: batch size must be positive")
    src = str(path)
    it = _numeric(df, "iteration", path, positive=False)
    if (it < 0).any():
        raise DataError(f"{path}: iteration must be >= 0")
    curves = pd.DataFrame({"source": src, "global_batch": float(batch_size), "iteration": it,
                           "metric": _numeric(df, "metric", path, positive=False),
                           "higher_is_better": bool(higher_is_better)})
    curves["progress"] = _numeric(df, "progress", path, positive=False, allow_nan=True) if "progress" in df else np.nan
    if {"grad_sqr", "grad_var"} <= set(df.columns):
        var = _numeric(df, "grad_var", path, positive=False, allow_nan=True)
        if "grad_var_batch" in df:  # variance of a mean over that many examples -> per example
            var = var * _numeric(df, "grad_var_batch", path)
        noise = pd.DataFrame({"source": src, "global_batch": float(batch_size), "step": it,
                              "grad_sqr": _numeric(df, "grad_sqr", path, positive=False, allow_nan=True),
                              "grad_var": var, "smoothed": True}).dropna(subset=["grad_sqr", "grad_var"])
    else:
        noise = pd.DataFrame(columns=["source", "global_batch", "step", "grad_sqr", "grad_var", "smoothed"])
    return curves.reset_index(drop=True), noise.reset_index(drop=True)


def read_curve_set(paths, batch_size: float | None = None, grad_var_batch: float | None = None,
                   higher_is_better: bool = True) -> CurveSet:
    import pandas as pd

    parts = [read_curve(p, batch_size, higher_is_better) for p in paths]
    if not parts:
        raise DataError("no training-curve files")
    curves = pd.concat([c for c, _ in parts], ignore_index=True)
    noises = [n for _, n in parts if not n.empty]
    noise = pd.concat(noises, ignore_index=True) if noises else None
    return curve_set(curves, noise, grad_var_batch)


def read_training_curve(path, batch_size: int | None = None) -> "pd.DataFrame":
    """Columns global_batch, iteration, metric, grad_sqr, grad_var (NaN when absent) (batch from a
    column, the argument, or the exact name rule)."""
    curves, noise = read_curve(path, batch_size)
    out = curves[["global_batch", "iteration", "metric"]].reset_index(drop=True)
    if noise.empty:
        out["grad_sqr"] = out["grad_var"] = np.nan
        return out
    cols = noise[["step", "grad_sqr", "grad_var"]].drop_duplicates("step").rename(columns={"step": "iteration"})
    return out.merge(cols, on="iteration", how="left")
