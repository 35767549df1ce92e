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
