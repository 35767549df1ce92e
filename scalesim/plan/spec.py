"""What a plan is asked for, as typed values (the CLI parses flags into these once; a notebook builds
them directly): the training target, the search space and the learning-rate reference, and the
functions that turn them, together with a fitted model's defaults, into search.Target / search.Space."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UsageError
from ..model.schedule import LRSchedule, validate
from . import search

DEFAULT_MAX_NODES = 64
MAX_NODES = 65536
# Goyal et al. 2017 matched small-batch ImageNet accuracy up to 8k; without a noise-scale fit we do
# not recommend batches beyond what has been shown to train well.
DEFAULT_MAX_BATCH_NO_NOISE = 8192
DEFAULT_MAX_BATCH_NOISE = 65536
MAX_BATCH = 2 ** 31            # sanity bounds: beyond them a plan is meaningless (and int64 math overflows)
MAX_SAMPLES = 1e15


def _finite_positive(name: str, v, upper: float = math.inf, allow_zero: bool = False) -> None:
    # NaN passes every `v <= 0` test; check with the comparison that NaN fails
    if v is not None and not ((0 <= v if allow_zero else 0 < v) and v <= upper and math.isfinite(v)):
        raise UsageError(f"{name} must be {'non-negative' if allow_zero else 'positive'} (a finite number"
                         + (f" up to {upper:g}" if upper < math.inf else "") + f"; got {v:g})")


def _finite(name: str, v) -> None:
    if v is not None and not math.isfinite(v):
        raise UsageError(f"{name} must be a finite number (got {v:g})")


def _batch_list(name: str, values) -> None:
    for v in values or ():
        if not 1 <= v <= MAX_BATCH:
            raise UsageError(f"{name}: batch {v:g} is out of range (1 to {MAX_BATCH})")


@dataclass(frozen=True)
class TargetSpec:
    """Train for `steps` optimizer steps at the reference batch, or `epochs` of `dataset_size` samples
    at every batch (a fixed budget), or until the curves' `metric` reaches the value the model was
    fitted for (steps from S(B)); none: the model's fitted statistical-efficiency target."""
    steps: float | None = None
    epochs: float | None = None
    dataset_size: float | None = None
    metric: float | None = None

    def __post_init__(self):
        _finite_positive("--target-steps", self.steps, MAX_SAMPLES)
        _finite_positive("--target-epochs", self.epochs, 1e9)
        _finite_positive("--dataset-size", self.dataset_size, MAX_SAMPLES)
        if self.metric is not None and not math.isfinite(self.metric):
            raise UsageError("--target-metric must be a finite number")


@dataclass(frozen=True)
class SpaceSpec:
    """Placements and batches to search; None = the default (or the model's)."""
    nodes: list[int] | None = None            # node (host) counts
    max_nodes: int | None = None              # or 1..max_nodes
    devices_per_node: list[int] | None = None
    global_batch: list[int] | None = None     # explicit global batches, or
    local_batch: list[int] | None = None      # fixed samples per device (weak scaling)
    min_global_batch: int = 16
    max_global_batch: int | None = None
    batch_sizes: int = 64                     # log-spaced global batches between min and max
    max_local_batch: int | None = None        # larger per-device batches use gradient accumulation

    def __post_init__(self):
        _batch_list("--global-batch", self.global_batch)
        _batch_list("--local-batch", self.local_batch)
        for name, v in (("--min-global-batch", self.min_global_batch), ("--max-global-batch", self.max_global_batch)):
            if v is not None and v > MAX_BATCH:   # below 1: search.geometric_batches says why
                raise UsageError(f"{name}: batch {v:g} is out of range (at most {MAX_BATCH})")
        _batch_list("--max-local-batch", [self.max_local_batch] if self.max_local_batch is not None else [])
        if self.max_global_batch is not None and self.max_global_batch < self.min_global_batch:
            raise UsageError(f"--max-global-batch {self.max_global_batch} is below --min-global-batch "
                             f"{self.min_global_batch}")
        for name, vals in (("--nodes", self.nodes), ("--devices-per-node", self.devices_per_node)):
            if vals is not None and (not vals or min(vals) < 1):
                raise UsageError(f"{name}: need counts >= 1")


@dataclass(frozen=True)
class LRSpec:
    """Goyal et al. 2017 reference learning rate; None = the model's (or 0.1 at 256, 5 warmup epochs)."""
    ref_lr: float | None = None
    ref_batch: int | None = None
    warmup_epochs: float | None = None

    def __post_init__(self):
        # NaN and inf here; the ranges are LRSchedule's (model.schedule.validate)
        _finite("--ref-lr", self.ref_lr)
        _finite("--warmup-epochs", self.warmup_epochs)
        _batch_list("--ref-batch", [self.ref_batch] if self.ref_batch is not None and self.ref_batch > 0 else [])


def lr_settings(spec: LRSpec, model_lr: dict | None) -> dict:
    lr = model_lr or {}
    out = {"ref_lr": spec.ref_lr if spec.ref_lr is not None else float(lr.get("ref_lr", 0.1)),
           "ref_batch": spec.ref_batch if spec.ref_batch is not None else int(lr.get("ref_batch", 256)),
           "warmup_epochs": spec.warmup_epochs if spec.warmup_epochs is not None
           else float(lr.get("warmup_epochs", 5.0))}
    validate(LRSchedule(global_batch=out["ref_batch"], ref_lr=out["ref_lr"], ref_batch=out["ref_batch"],
                        warmup_epochs=out["warmup_epochs"]))
    return out


def _metric_target(spec: TargetSpec, stateff: dict | None, ref_batch: int) -> search.Target:
    if not (stateff and stateff.get("s_min") and stateff.get("b_noise") and stateff.get("target")):
        raise UsageError("--target-metric needs a model fitted on training curves (stateff with s_min, b_noise "
                         "and a target): run `scalesim fit` with the curves")
    t = stateff["target"]
    if not isinstance(t, dict) or t.get("value") is None:
        raise UsageError("--target-metric: the model's statistical-efficiency fit records no target value; refit "
                         "with `scalesim fit` on the curves")
    value = float(t["value"])
    if not math.isclose(spec.metric, value, rel_tol=1e-6, abs_tol=1e-9):
        raise UsageError(f"--target-metric {spec.metric:g}: the model's S(B) was fitted for {t.get('metric')} "
                         f"{value:.6g}; refit with `scalesim fit ... --target {spec.metric:g}`")
    return search.Target("stateff", float(stateff["s_min"]), ref_batch,
                         f"{t.get('metric')} {'>=' if t.get('higher_is_better', True) else '<='} {value:.4g} "
                         f"(fitted curves: S_min = {float(stateff['s_min']):,.0f} steps)")


def build_target(spec: TargetSpec, stateff: dict | None, ref_batch: int,
                 dataset_size: float | None = None) -> search.Target:
    given = [n for n, v in (("--target-steps", spec.steps), ("--target-epochs", spec.epochs),
                            ("--target-metric", spec.metric)) if v is not None]
    if len(given) > 1:
        raise UsageError(f"give one of --target-steps, --target-epochs, --target-metric, not both "
                         f"({' and '.join(given)})")
    # the values themselves were checked when the TargetSpec was built (__post_init__)
    if spec.metric is not None:
        return _metric_target(spec, stateff, ref_batch)
    if spec.steps is not None:
        return search.Target("samples", spec.steps * ref_batch, ref_batch,
                             f"{spec.steps:g} steps at global batch {ref_batch}")
    if spec.epochs is not None:
        n = spec.dataset_size or dataset_size
        if not n:
            raise UsageError("--target-epochs needs --dataset-size (samples per epoch)")
        return search.Target("epochs", spec.epochs * n, ref_batch,
                             f"{spec.epochs:g} epochs of {n:,.0f} samples at every batch")
    if stateff and stateff.get("s_min") and stateff.get("b_noise"):
        what = stateff.get("target") or {}
        desc = ", ".join(f"{k} {v}" for k, v in what.items()) if isinstance(what, dict) else str(what)
        return search.Target("stateff", float(stateff["s_min"]), ref_batch,
                             f"the fitted target{' (' + desc + ')' if desc else ''}: "
                             f"S_min = {float(stateff['s_min']):,.0f} steps")
    raise UsageError("no training target: give --target-steps, --target-epochs or --target-metric (the model has no "
                     "statistical-efficiency fit with s_min and b_noise)")


def _batches(spec: SpaceSpec, b_noise: float | None):
    if spec.global_batch and spec.local_batch:
        raise UsageError("give --global-batch or --local-batch, not both")
    if spec.local_batch:
        return (), list(spec.local_batch)
    if spec.global_batch:
        return list(spec.global_batch), ()
    noisy = b_noise is not None and math.isfinite(b_noise)
    hi = spec.max_global_batch or (DEFAULT_MAX_BATCH_NOISE if noisy else DEFAULT_MAX_BATCH_NO_NOISE)
    if not 2 <= spec.batch_sizes <= 4096:
        raise UsageError("--batch-sizes must be between 2 and 4096")
    return search.geometric_batches(spec.min_global_batch, hi, spec.batch_sizes), ()


def build_space(spec: SpaceSpec, *, default_devices: list[int], b_noise: float | None,
                cores_per_host: float = math.inf, threads_per_rank: float = 1.0) -> search.Space:
    if spec.nodes and spec.max_nodes:
        raise UsageError("give --nodes or --max-nodes, not both")
    if spec.max_nodes is not None and not 1 <= spec.max_nodes <= MAX_NODES:
        raise UsageError(f"--max-nodes must be between 1 and {MAX_NODES}")
    nodes = sorted(spec.nodes) if spec.nodes else list(range(1, (spec.max_nodes or DEFAULT_MAX_NODES) + 1))
    if nodes[-1] > MAX_NODES:
        raise UsageError(f"--nodes: at most {MAX_NODES} nodes")
    global_b, local_b = _batches(spec, b_noise)
    devices = list(spec.devices_per_node) if spec.devices_per_node else default_devices
    return search.Space(nodes, devices, global_b, local_b, spec.max_local_batch, cores_per_host, threads_per_rank)
