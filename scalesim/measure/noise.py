"""Per-step gradient-noise bookkeeping for a measurement configuration (McCandlish et al. 2018,
App. A.1), using the pure estimators of scalesim.model.stateff.

Each step gives squared norms of mean gradients at two batch sizes:
  small: every rank's local mean gradient (batch b), or with one rank each half-batch (b/2)
  big:   the allreduced mean gradient (batch n*b), or with one rank the whole batch (b)
The per-step |G|^2 and tr(Sigma) estimates are very noisy (single samples; |G|^2 can even come
out negative), so, as McCandlish et al. recommend, each is smoothed with an exponential moving
average before the ratio B_simple = tr(Sigma)/|G|^2 is taken. Non-finite steps (e.g. a diverged
loss) are skipped and counted rather than poisoning the averages.
"""
from __future__ import annotations

import math

import numpy as np

from ..model.stateff import b_simple, estimate_noise

DEFAULT_BETA = 0.9


def local_mean_scale(num_replicas: int, loss_scale: str) -> float:
    """Factor turning a rank's raw gradient into the mean gradient over its own batch.

    With the loss normalised by the GLOBAL batch (sum over local samples / (n*b)), the raw local
    gradient is 1/n of the local mean gradient, so it is multiplied by n; squared norms by n^2.
    """
    if loss_scale == "global":
        return float(num_replicas)
    if loss_scale == "local":
        return 1.0
    raise ValueError(f"unknown loss normalisation {loss_scale!r}")


class NoiseTracker:
    """Accumulates per-step squared norms and produces rows of the `noise` table."""

    def __init__(self, b_small: float, b_big: float, beta: float = DEFAULT_BETA):
        if not b_big > b_small > 0:
            raise ValueError("need 0 < b_small < b_big")
        if not 0.0 <= beta < 1.0:
            raise ValueError("EMA beta must be in [0, 1)")
        self.b_small, self.b_big, self.beta = float(b_small), float(b_big), beta
        self._ema_sqr = self._ema_var = 0.0
        self._n = 0
        self.skipped = 0
        self.rows: list[dict] = []

    def add(self, step: int, small_sqnorms, big_sqnorm: float) -> dict | None:
        """small_sqnorms: |g_small|^2 of every rank (or half); big_sqnorm: |g_big|^2."""
        small = float(np.mean(np.asarray(small_sqnorms, float)))
        big = float(big_sqnorm)
        est = estimate_noise(small, big, self.b_small, self.b_big)
        sqr, var = float(est.grad_sqr), float(est.grad_var)
        if not all(math.isfinite(v) for v in (small, big, sqr, var)):
            self.skipped += 1
            return None
        self._n += 1
        self._ema_sqr = self.beta * self._ema_sqr + (1 - self.beta) * sqr
        self._ema_var = self.beta * self._ema_var + (1 - self.beta) * var
        # Adam-style bias correction: without it the first steps are pulled toward zero.
        corr = 1.0 - self.beta ** self._n
        ema_sqr, ema_var = self._ema_sqr / corr, self._ema_var / corr
        row = {"step": int(step), "local_sqnorm": small, "global_sqnorm": big, "grad_sqr": sqr,
               "grad_var": var, "ema_grad_sqr": ema_sqr, "ema_grad_var": ema_var,
               "b_simple": _ratio(ema_sqr, ema_var), "b_small": self.b_small, "b_big": self.b_big}
        self.rows.append(row)
        return row

    def summary(self) -> dict:
        """Configuration-level B_simple: ratio of the means of all finite steps (the least noisy
        estimate when every step has the same batch sizes), plus the last smoothed value."""
        if not self.rows:
            return {"b_simple": math.nan, "b_simple_ema": math.nan, "steps": 0, "skipped": self.skipped}
        sqr = float(np.mean([r["grad_sqr"] for r in self.rows]))
        var = float(np.mean([r["grad_var"] for r in self.rows]))
        return {"b_simple": _ratio(sqr, var), "b_simple_ema": self.rows[-1]["b_simple"],
                "grad_sqr": sqr, "grad_var": var, "steps": len(self.rows), "skipped": self.skipped}


def _ratio(grad_sqr: float, grad_var: float) -> float:
    # |G|^2 <= 0 means the signal is not resolved yet: no meaningful noise scale.
    return float(b_simple(grad_var=grad_var, grad_sqr=grad_sqr)) if grad_sqr > 0 else math.nan
