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
