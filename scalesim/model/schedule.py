"""Learning-rate rules for large-batch SGD.

Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour":
- linear scaling rule (Sec. 2.1): eta = eta_ref * B / B_ref, with eta_ref = 0.1 at B_ref = 256;
- gradual warmup (Sec. 2.2): start at eta_ref and increase linearly to eta over k epochs (k = 5),
  per iteration, then follow the usual step schedule (x0.1 at given epochs).
The square-root rule (eta_ref * sqrt(B / B_ref)) and no scaling are here for comparison.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

from ..errors import UsageError

RULES = ("linear", "sqrt", "none")


class LRSchedule(NamedTuple):
    global_batch: int
    ref_lr: float = 0.1
    ref_batch: int = 256
    rule: str = "linear"
    warmup_epochs: float = 5.0
    decay_epochs: Sequence[float] = ()
    decay_factor: float = 0.1


def validate(s: LRSchedule) -> LRSchedule:
    if s.rule not in RULES:
        raise UsageError(f"unknown LR rule {s.rule!r}; choose one of {', '.join(RULES)}")
    if s.global_batch <= 0 or s.ref_batch <= 0:
        raise UsageError("global_batch and ref_batch must be positive")
    if s.ref_lr <= 0 or s.warmup_epochs < 0 or not 0 < s.decay_factor <= 1:
        raise UsageError("need ref_lr > 0, warmup_epochs >= 0 and 0 < decay_factor <= 1")
    return s


def peak_lr(s: LRSchedule) -> float:
    """Target learning rate after warmup for the chosen scaling rule."""
    ratio = s.global_batch / s.ref_batch
    return s.ref_lr * {"linear": ratio, "sqrt": math.sqrt(ratio), "none": 1.0}[s.rule]


def lr_at(s: LRSchedule, epoch: float) -> float:
    """Learning rate at a (fractional) epoch; call it per iteration with epoch = step / steps_per_epoch."""
    peak = peak_lr(s)
    if epoch < s.warmup_epochs and peak > s.ref_lr:
        # Goyal's gradual warmup starts at eta_ref (not 0) and reaches the peak after k epochs; it only
        # exists to ramp *up* to a large-batch rate, so batches below B_ref start at their rate directly.
        return s.ref_lr + (peak - s.ref_lr) * epoch / s.warmup_epochs
    n_decays = sum(1 for d in s.decay_epochs if epoch >= d)
    return peak * s.decay_factor ** n_decays


def describe(s: LRSchedule) -> str:
    peak = peak_lr(s)
    parts = [f"eta = {s.ref_lr:g} x {s.global_batch}/{s.ref_batch} = {peak:.4g}" if s.rule == "linear"
             else f"eta = {peak:.4g} ({s.rule} rule)"]
    if s.warmup_epochs > 0 and peak > s.ref_lr:
        parts.append(f"linear warmup {s.ref_lr:g} -> {peak:.4g} over {s.warmup_epochs:g} epochs")
    if s.decay_epochs:
        parts.append(f"x{s.decay_factor:g} at epochs {', '.join(f'{d:g}' for d in s.decay_epochs)}")
    return "; ".join(parts)
