"""Statistical efficiency from the gradient noise scale (McCandlish et al. 2018, "An Empirical
Model of Large-Batch Training").

- simple noise scale  B_simple = tr(Sigma) / |G|^2                          (Eq. 2.9)
- steps to a target   S(B) = S_min (1 + B_noise / B)                        (Eq. 2.11)
- examples to target  E(B) = E_min (1 + B / B_noise), E_min = S_min B_noise (Eq. 2.11)
- unbiased estimates from two batch sizes B_small < B_big with measured |G_B|^2 (App. A.1):
      |G|^2    = (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
      tr(Sigma) = (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)
  In data-parallel SGD the local gradient (batch b) and the allreduced one (batch n*b) are
  exactly such a pair, so the estimate costs no extra compute.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class NoiseEstimate(NamedTuple):
    grad_sqr: float | np.ndarray   # |G|^2
    grad_var: float | np.ndarray   # tr(Sigma)


def estimate_noise(sqnorm_small, sqnorm_big, b_small, b_big) -> NoiseEstimate:
    s, g = np.asarray(sqnorm_small, float), np.asarray(sqnorm_big, float)
    if not b_big > b_small > 0:
        raise ValueError("need 0 < b_small < b_big")
    grad_sqr = (b_big * g - b_small * s) / (b_big - b_small)
    grad_var = (s - g) / (1.0 / b_small - 1.0 / b_big)
    return NoiseEstimate(grad_sqr, grad_var)


def b_simple(grad_sqr, grad_var):
    return np.asarray(grad_var, float) / np.asarray(grad_sqr, float)


def steps_to_target(global_batch, s_min: float, b_noise: float):
    return s_min * (1.0 + b_noise / np.asarray(global_batch, float))


def examples_to_target(global_batch, s_min: float, b_noise: float):
    return steps_to_target(global_batch, s_min, b_noise) * np.asarray(global_batch, float)


def statistical_efficiency(global_batch, b_noise: float, ref_batch: float):
    """Progress per example at B relative to ref_batch: E(ref)/E(B) = (B_n + ref)/(B_n + B)."""
    return (b_noise + ref_batch) / (b_noise + np.asarray(global_batch, float))


def pooled_b_simple(grad_sqr, grad_var):
    """B_simple from many noisy per-step estimates: ratio of the means, not mean of the ratios.
    Single-step |G|^2 estimates are unbiased but can be near zero or negative, so their ratio is
    heavy-tailed; McCandlish et al. (App. A.1) average numerator and denominator separately."""
    s, v = np.asarray(grad_sqr, float), np.asarray(grad_var, float)
    ok = np.isfinite(s) & np.isfinite(v)
    if not ok.any() or np.mean(s[ok]) <= 0:
        return float("nan")
    return float(np.mean(v[ok]) / np.mean(s[ok]))


def effective_b_noise(b_noise_t, steps_t, batch: float) -> float:
    """The constant B_noise that reproduces S(B) when the noise scale changes during training.

    Progress is additive: a phase of dS steps at batch `batch` with noise scale B_t is worth
    dS_min = dS / (1 + B_t / batch) steps at infinite batch, and costs dS_min (1 + B_t / B') at any
    other batch B'. Summing, S(B') = S_min (1 + B_eff / B') with B_eff = sum(dS_min B_t) / sum(dS_min):
    the progress-weighted mean of the measured noise scale (which typically grows as the loss falls,
    McCandlish et al. Sec. 3)."""
    b = np.asarray(b_noise_t, float)
    ds = np.asarray(steps_t, float)
    ok = np.isfinite(b) & (b > 0) & np.isfinite(ds) & (ds > 0)
    if not ok.any():
        return float("nan")
    ds_min = ds[ok] / (1.0 + b[ok] / batch)
    return float(np.sum(ds_min * b[ok]) / np.sum(ds_min))


def steps_to_reach(iterations, metric, target: float, higher_is_better: bool) -> float:
    """First iteration at which the metric reaches `target` (linear interpolation between the logged
    points), or nan if it never does."""
    it, m = np.asarray(iterations, float), np.asarray(metric, float)
    order = np.argsort(it, kind="stable")
    it, m = it[order], m[order]
    good = m >= target if higher_is_better else m <= target
    if not good.any():
        return float("nan")
    k = int(np.argmax(good))
    if k == 0 or m[k] == m[k - 1]:
        return float(it[k])
    frac = (target - m[k - 1]) / (m[k] - m[k - 1])
    return float(it[k - 1] + frac * (it[k] - it[k - 1]))


def fit_steps_to_target(global_batch, steps, b_noise: float | None = None):
    """(S_min, B_noise) from steps-to-target at several global batches, S(B) = S_min (1 + B_noise/B).

    Least squares in log space. With one batch size B_noise must be given (e.g. the measured noise
    scale) and S_min follows; with two or more both are fitted."""
    from scipy.optimize import least_squares

    B, S = np.asarray(global_batch, float), np.asarray(steps, float)
    if b_noise is not None:
        return float(np.exp(np.mean(np.log(S / (1.0 + b_noise / B))))), float(b_noise)
    if np.unique(B).size < 2:
        raise ValueError("fitting both S_min and B_noise needs steps-to-target at two or more batch sizes")

    def res(x):
        return x[0] + np.log1p(np.exp(x[1]) / B) - np.log(S)

    best = None
    for start in np.log(np.geomspace(B.min() / 10, B.max() * 10, 5)):
        r = least_squares(res, [np.log(S.min()), start], bounds=([-np.inf, -30], [np.inf, 40]))
        if best is None or r.cost < best.cost:
            best = r
    return float(np.exp(best.x[0])), float(np.exp(best.x[1]))


# --- noise along a run, and fits that combine curves with measured noise ------------------------
#
# The noise scale grows during training (McCandlish et al. Sec. 3), so one number from the first
# steps is the wrong one. Progress adds up phase by phase: a phase of dS steps at batch B with noise
# scale B_t is worth dS_min = dS / (1 + B_t/B) steps at infinite batch and costs dS_min (1 + B_t/B')
# at any other batch B'. So along a measured path S(B') = S_min (1 + B_eff/B') with B_eff the
# S_min-weighted mean of B_t up to the target (`path_progress`), and the Pollux/AdaScale "gain"
# integral (`path_steps`) is the same arithmetic.

# B_simple is an estimate of the critical batch, not the critical batch itself: McCandlish et al.
# (Sec. 3, Fig. 4) find the two within about an order of magnitude. As a prior on
# log(B_noise / B_simple): 95 % within a factor 10. Chosen from the paper, before the evaluation in
# experiments/pollux/curves.py (which reports how the result moves with it).
B_SIMPLE_LOG_SD = math.log(10.0) / 2.0
DEFAULT_STEPS_LOG_SD = 0.05
DEGENERATE_FACTOR = 100.0   # B_noise beyond 100x the largest (1/100 the smallest) fitted batch


class NoisePath(NamedTuple):
    """Measured noise scale along one run: interval i covers steps (end[i-1], end[i]], the first
    from step 0, and b_simple[i] is B_simple over it."""
    end: np.ndarray
    b_simple: np.ndarray
    skipped: int = 0       # rows without a resolved noise scale (|G|^2 <= 0 or not finite)


def noise_path(step, grad_sqr, grad_var, smoothed: bool, windows: int = 10) -> NoisePath:
    """Per-row or windowed B_simple with each interval's true span.

    smoothed=True: every row is already an average over its logging interval (AdaptDL's logs, EMA
    columns): B_simple is the row's own ratio; pooling again would let the early rows, where |G|^2
    is orders of magnitude larger, dominate every window. smoothed=False: raw per-step unbiased
    estimates (single steps can be negative): ratio of the means within each of `windows` runs of
    consecutive steps (McCandlish et al. App. A.1). Either way an interval starts where the last one
    ended (the first at step 0), so steps before the first row are not lost and a short window
    weighs what it spans, not one step."""
    s, g, v = (np.asarray(a, float) for a in (step, grad_sqr, grad_var))
    order = np.argsort(s, kind="stable")
    s, g, v = s[order], g[order], v[order]
    ok = np.isfinite(s) & np.isfinite(g) & np.isfinite(v)
    s, g, v = s[ok], g[ok], v[ok]
    skipped = int((~ok).sum())
    if s.size == 0:
        return NoisePath(np.array([]), np.array([]), skipped)
    if smoothed:
        end, b = s, np.where(g > 0, v / np.where(g > 0, g, 1.0), np.nan)
    else:
        parts = np.array_split(np.arange(s.size), min(windows, s.size))
        end = np.array([s[p[-1]] for p in parts])
        b = np.array([np.mean(v[p]) / np.mean(g[p]) if np.mean(g[p]) > 0 else np.nan for p in parts])
    good = np.isfinite(b) & (b > 0)
    # An unresolved interval joins the next resolved one (its steps are not dropped).
    return NoisePath(end[good], b[good], skipped + int((~good).sum()))


def _spans(path: NoisePath, until_step: float) -> np.ndarray:
    start = np.r_[0.0, path.end[:-1]]
    return np.clip(np.minimum(path.end, until_step) - start, 0.0, None)


def path_progress(path: NoisePath, batch: float, until_step: float = math.inf, scale: float = 1.0):
    """(S_min progress, S_min-weighted mean noise scale) of a run at `batch` up to `until_step`.
    scale multiplies the measured B_simple (the ratio B_noise / B_simple, 1 = taken at face value).
    Steps past the last interval are counted at the last interval's noise scale."""
    if path.end.size == 0:
        return math.nan, math.nan
    end = path.end.copy()
    if math.isfinite(until_step) and until_step > end[-1]:
        end[-1] = until_step
    b = scale * path.b_simple
    ds_min = _spans(NoisePath(end, b), until_step) / (1.0 + b / batch)
    total = float(ds_min.sum())
    return total, float(np.sum(ds_min * b) / total) / scale if total > 0 else math.nan


def path_steps(path: NoisePath, batch_run: float, steps_run: float, batch) -> np.ndarray:
    """Steps at `batch` to make the progress the run at batch_run made in steps_run steps: the sum
    over the run's steps of (1 + B_t/batch) / (1 + B_t/batch_run), i.e. Pollux's gain formula with
    the measured noise taken at face value."""
    s_min, b_eff = path_progress(path, batch_run, steps_run)
    return steps_to_target(batch, s_min, b_eff)


class CurveFit(NamedTuple):
    """S(B) = s_min (1 + b_noise / B) with the covariance of (log s_min, log b_noise)."""
    s_min: float
    b_noise: float
    cov: np.ndarray
    degenerate: str | None   # None, "b_noise->0" or "b_noise->inf": at a limit over the fitted batches
    method: str


def b_noise_interval(fit: CurveFit, z: float = 1.96) -> tuple[float, float]:
    sd = math.sqrt(max(float(fit.cov[1, 1]), 0.0))
    return fit.b_noise * math.exp(-z * sd), fit.b_noise * math.exp(min(z * sd, 700.0))


def steps_interval(fit: CurveFit, global_batch, z: float = 1.96):
    """(predicted steps, low, high) at global_batch: delta method in log space."""
    B = np.asarray(global_batch, float)
    S = steps_to_target(B, fit.s_min, fit.b_noise)
    w = (fit.b_noise / B) / (1.0 + fit.b_noise / B)
    var = fit.cov[0, 0] + 2 * w * fit.cov[0, 1] + w * w * fit.cov[1, 1]
    sd = np.sqrt(np.maximum(var, 0.0))
    return S, S * np.exp(-z * sd), S * np.exp(np.minimum(z * sd, 700.0))


def fit_curves(global_batch, steps, steps_log_sd=None, b_measured: float | None = None,
               b_measured_log_sd: float = B_SIMPLE_LOG_SD) -> CurveFit:
    """(S_min, B_noise) from steps-to-target at one or more batches and, optionally, a measured noise
    scale: weighted least squares in log space, the measured value entering as a prior on
    log B_noise (sd b_measured_log_sd). steps_log_sd: each run's uncertainty of log steps (see
    `crossing_log_sd`). With one batch the measured noise is required; with two batches below the
    noise scale the curves alone barely tell B_noise (S B nearly constant) and the prior decides."""
    from scipy.optimize import least_squares

    B, S = np.asarray(global_batch, float).ravel(), np.asarray(steps, float).ravel()
    sd = np.full(B.size, DEFAULT_STEPS_LOG_SD) if steps_log_sd is None else np.asarray(steps_log_sd, float).ravel()
    if B.size != S.size or B.size != sd.size or B.size == 0:
        raise ValueError("global_batch, steps and steps_log_sd must be non-empty and the same length")
    if not (np.all(B > 0) and np.all(S > 0) and np.all(sd > 0)):
        raise ValueError("batches, steps and their uncertainties must be positive")
    have_prior = b_measured is not None and math.isfinite(b_measured) and b_measured > 0
    if np.unique(B).size < 2 and not have_prior:
        raise ValueError("fitting both S_min and B_noise needs steps-to-target at two or more batch sizes "
                         "or a measured noise scale")
    lo, hi = math.log(B.min()) - 14.0, math.log(B.max()) + 14.0
    if have_prior:
        lo, hi = min(lo, math.log(b_measured) - 14.0), max(hi, math.log(b_measured) + 14.0)

    def res(x):
        r = (x[0] + np.log1p(np.exp(x[1]) / B) - np.log(S)) / sd
        return np.r_[r, (x[1] - math.log(b_measured)) / b_measured_log_sd] if have_prior else r

    starts = np.log(np.geomspace(B.min() / 10, B.max() * 10, 5))
    if have_prior:
        starts = np.r_[math.log(b_measured), starts]
    best = None
    for st in starts:
        r = least_squares(res, [math.log(S.min()), st], bounds=([-np.inf, lo], [np.inf, hi]), x_scale=[1.0, 1.0])
        if best is None or r.cost < best.cost - 1e-12:
            best = r
    J = best.jac
    cov = np.linalg.pinv(J.T @ J)
    s_min, b_noise = float(math.exp(best.x[0])), float(math.exp(best.x[1]))
    degenerate = None
    if b_noise > DEGENERATE_FACTOR * B.max():
        degenerate = "b_noise->inf"
    elif b_noise < B.min() / DEGENERATE_FACTOR:
        degenerate = "b_noise->0"
    if have_prior and np.unique(B).size >= 2:
        method = "curves at several batches + measured noise"
    elif have_prior:
        method = "one batch + measured noise"
    else:
        method = "curves at several batches"
    return CurveFit(s_min, b_noise, cov, degenerate, method)


def degenerate_reason(fit: CurveFit, batches) -> str | None:
    """One line naming why a fit sits at a limit, or None."""
    B = np.asarray(batches, float)
    if fit.degenerate == "b_noise->inf":
        return (f"B_noise -> infinity ({fit.b_noise:.3g}, > {DEGENERATE_FACTOR:g}x the largest batch "
                f"{B.max():g}): steps fall as 1/B across the fitted batches (perfect scaling), so the "
                "curves give only a lower bound; measured noise or a curve at a larger batch is needed")
    if fit.degenerate == "b_noise->0":
        return (f"B_noise -> 0 ({fit.b_noise:.3g}, < 1/{DEGENERATE_FACTOR:g} of the smallest batch "
                f"{B.min():g}): steps do not fall with the batch across the fitted batches (no gain from "
                "larger batches, or the target is reached at a plateau where the step counts are noise)")
    return None


def crossing_log_sd(iterations, metric, target: float, higher_is_better: bool) -> float:
    """Uncertainty of log(steps to target) read off one curve: where between two logged rows the
    crossing is (uniform, sd = width/sqrt 12) and the metric's own noise divided by its slope
    against log steps there (a plateau makes the crossing step uncertain). Capped at 1 (a factor e)."""
    it, m = np.asarray(iterations, float), np.asarray(metric, float)
    order = np.argsort(it, kind="stable")
    it, m = it[order], m[order]
    if not higher_is_better:
        m, target = -m, -target
    keep = it > 0
    it, m = it[keep], m[keep]
    good = m >= target
    if not good.any() or it.size < 2:
        return 1.0
    k = int(np.argmax(good))
    width = math.log(it[k] / it[k - 1]) if k > 0 else math.log(it[1] / it[0])
    if m.size >= 4:
        d2 = np.diff(m, 2)
        noise = float(np.median(np.abs(d2 - np.median(d2))) / 0.6745 / math.sqrt(6.0))
    else:
        noise = 0.0
    j = slice(max(k - 2, 0), min(k + 2, m.size))
    slope = float(np.polyfit(np.log(it[j]), m[j], 1)[0]) if it[j].size >= 2 else 0.0
    sd = math.sqrt(width ** 2 / 12.0 + (noise / slope) ** 2) if slope > 0 else 1.0
    return float(min(sd, 1.0))


def gain_error(iteration, progress, batch: float, initial_batch: float, b_simple_per_unit) -> float:
    """Median |log| mismatch between a curve's progress increments and AdaptDL's gain
    (1 + c r/B0) / (1 + c r/B) for a guessed normalisation already folded into b_simple_per_unit
    (= c r, the noise scale in examples)."""
    it = np.r_[0.0, np.asarray(iteration, float)]
    pr = np.r_[0.0, np.asarray(progress, float)]
    d_it, d_pr = np.diff(it), np.diff(pr)
    b = np.asarray(b_simple_per_unit, float)
    ok = (d_it > 0) & (d_pr > 0) & np.isfinite(b) & (b > 0)
    if not ok.any():
        return math.nan
    gain = (1.0 + b[ok] / initial_batch) / (1.0 + b[ok] / batch)
    return float(np.median(np.abs(np.log(gain / (d_pr[ok] / d_it[ok])))))
