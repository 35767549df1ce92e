"""Per-step gradient-noise bookkeeping (McCandlish et al. 2018, App. A.1): the one implementation
that `measure`, `train` and the bring-your-own-model recorders (scalesim.keras) share. Pure: numpy
only, no I/O, no TensorFlow.

Each step gives squared norms of mean gradients at two batch sizes, at no extra compute:
  small: every rank's local mean gradient (batch b), or with one rank each half-batch (b/2)
  big:   the allreduced mean gradient (batch n*b), or with one rank the whole batch (b)
The per-step |G|^2 and tr(Sigma) estimates (scalesim.model.stateff.estimate_noise) are single
samples and very noisy (|G|^2 can come out negative), so, as McCandlish et al. recommend, each is
smoothed with an exponential moving average before B_simple = tr(Sigma)/|G|^2 is taken. Non-finite
steps (a diverged loss, an fp16 overflow) are skipped and counted rather than poisoning the averages.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .stateff import b_simple, estimate_noise

DEFAULT_BETA = 0.9


def local_mean_scale(num_replicas: int, loss_scale: str) -> float:
    """Factor turning a rank's raw gradient into the mean gradient over its own batch.

    With the loss normalised by the GLOBAL batch (sum over local samples / (n*b)), the raw local
    gradient is 1/n of the local mean gradient, so it is multiplied by n; squared norms by n^2.
    With the loss normalised by the local batch (Keras' default, then hvd.Average) it is 1.
    """
    if loss_scale == "global":
        return float(num_replicas)
    if loss_scale == "local":
        return 1.0
    raise ValueError(f"unknown loss normalisation {loss_scale!r}")


def noise_batches(num_replicas: int, local_batch: int) -> tuple[int, int]:
    """(b_small, b_big) of the estimator: (b, n*b) with n ranks; (b/2, b) with one (half batches)."""
    b = int(local_batch)
    return (b // 2, 2 * (b // 2)) if num_replicas == 1 else (b, num_replicas * b)


class NoiseEma(NamedTuple):
    """State of the two bias-corrected EMAs (|G|^2 and tr(Sigma))."""
    sqr: float = 0.0
    var: float = 0.0
    n: int = 0          # finite steps folded in
    skipped: int = 0    # non-finite steps left out


def update(ema: NoiseEma, small_sqnorms, big_sqnorm: float, b_small: float, b_big: float,
           beta: float = DEFAULT_BETA) -> tuple[NoiseEma, dict | None]:
    """Fold one step in. small_sqnorms: |g_small|^2 of every rank (or both halves); big_sqnorm:
    |g_big|^2. Returns the new state and the step's row (None when the step was not finite)."""
    small = float(np.mean(np.asarray(small_sqnorms, float)))
    big = float(big_sqnorm)
    est = estimate_noise(small, big, b_small, b_big)
    sqr, var = float(est.grad_sqr), float(est.grad_var)
    if not all(math.isfinite(v) for v in (small, big, sqr, var)):
        return ema._replace(skipped=ema.skipped + 1), None
    n = ema.n + 1
    s, v = beta * ema.sqr + (1 - beta) * sqr, beta * ema.var + (1 - beta) * var
    # Adam-style bias correction: without it the first steps are pulled toward zero.
    corr = 1.0 - beta ** n
    ema_sqr, ema_var = s / corr, v / corr
    row = {"local_sqnorm": small, "global_sqnorm": big, "grad_sqr": sqr, "grad_var": var,
           "ema_grad_sqr": ema_sqr, "ema_grad_var": ema_var, "b_simple": _ratio(ema_sqr, ema_var),
           "b_small": float(b_small), "b_big": float(b_big)}
    return NoiseEma(s, v, n, ema.skipped), row


class NoiseTracker:
    """Accumulates per-step squared norms (via `update`) into rows of the `noise` table."""

    def __init__(self, b_small: float, b_big: float, beta: float = DEFAULT_BETA):
        if not b_big > b_small > 0:
            raise ValueError("need 0 < b_small < b_big")
        if not 0.0 <= beta < 1.0:
            raise ValueError("EMA beta must be in [0, 1)")
        self.b_small, self.b_big, self.beta = float(b_small), float(b_big), beta
        self.state = NoiseEma()
        self.rows: list[dict] = []

    @property
    def skipped(self) -> int:
        return self.state.skipped

    def add(self, step: int, small_sqnorms, big_sqnorm: float, **extra) -> dict | None:
        """extra: columns carried along with the row (epoch, lr, loss for training runs)."""
        self.state, row = update(self.state, small_sqnorms, big_sqnorm, self.b_small, self.b_big, self.beta)
        if row is None:
            return None
        row = {"step": int(step), **row, **extra}
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
