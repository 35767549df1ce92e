"""The fitted-model file written by `scalesim fit` and read by predict / simulate / validate / report.

JSON layout (schema "scalesim.model/1"):
  perf:      {compute: {alpha_c, beta_c, kappa, colocation, cv}, comm: {alpha_intra, bw_intra,
              alpha_inter, bw_inter, grad_bytes, algorithm, overhead_intra, overhead_inter,
              pair_sharing, jitter}, gamma}   (scalesim.model.perf; fields after kappa / algorithm
              are optional and default to 0, so older files still load). When the gradient size
              was unknown (external traces) grad_bytes = 1 and bw_* are in gradients/s. A parameter
              the data could not identify (fit --partial) is NaN and listed in meta.unidentified.
  bootstrap: list of parameter sets like `perf` (and optional b_noise) from bootstrap refits;
             predictions take percentiles over them for intervals
  intervals: {param_name: [lo, hi]} 90 % bootstrap intervals
  ranges:    {num_replicas: [lo, hi], num_nodes: [lo, hi], local_batch: [lo, hi]} of the fitting
             data; predictions outside are extrapolations
  quality:   {quantity: {mape, n}} in-sample, for step_time, compute_time, allreduce_time, sync_time
  stateff:   {b_noise, s_min, method, target: {metric, value, higher_is_better}, steps_to_target,
              b_noise_measured, b_noise_drift: {first_window, last_window}} or null when no
              training curve / noise was available
  data:      {sources, rows, allreduce_rows, holdout, held_out_rows, fitted_configs: [config keys]}
  host:      {cores_per_host, threads_per_rank, replicas_per_node}; lr: {ref_lr, ref_batch, warmup_epochs}
  meta:      {fitted, fixed, notes (why parameters were pinned), unidentified, grad_bytes_known,
              comm_units, fit_seconds, bootstrap_resamples, cost}
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ..errors import DataError
from ..model.perf import CommParams, ComputeParams, PerfParams
from ..schema import read_json, write_json

SCHEMA = "scalesim.model/1"


class FittedModel(NamedTuple):
    perf: PerfParams
    stateff: dict | None = None
    bootstrap: list = []
    intervals: dict = {}
    ranges: dict = {}
    quality: dict = {}
    data: dict = {}
    host: dict = {}
    lr: dict = {}
    meta: dict = {}


def perf_to_dict(p: PerfParams) -> dict:
    return {"compute": p.compute._asdict(), "comm": p.comm._asdict(), "gamma": p.gamma}


def _nan_for_null(d: dict) -> dict:
    # write_json stores unknown (NaN) parameters as null; the model math wants NaN back
    return {k: (math.nan if v is None else v) for k, v in d.items()}


def perf_from_dict(d: dict) -> PerfParams:
    return PerfParams(ComputeParams(**_nan_for_null(d["compute"])), CommParams(**_nan_for_null(d["comm"])),
                      float(d.get("gamma") if d.get("gamma") is not None else 1.0))


def to_dict(m: FittedModel) -> dict[str, Any]:
    d = m._asdict()
    d["perf"] = perf_to_dict(m.perf)
    d["bootstrap"] = [b if isinstance(b, dict) else perf_to_dict(b) for b in m.bootstrap]
    return {"schema": SCHEMA, **d}


def unidentified(m: FittedModel) -> list:
    return list((m.meta or {}).get("unidentified") or [])


def check_predictable(m: FittedModel, num_nodes) -> None:
    """Refuse predictions that need a link class the fit could not identify (fit --partial)."""
    missing = unidentified(m)
    if not missing:
        return
    multi = bool(np.any(np.asarray(num_nodes) > 1))
    needed = [k for k in missing if k.endswith("_inter") == multi or not k.endswith(("_inter", "_intra"))]
    if needed:
        raise DataError(f"the model cannot predict {'multi' if multi else 'single'}-host configurations: "
                        f"{', '.join(needed)} were not identified by its data (refit with such measurements "
                        "or --fix them)")


def save(m: FittedModel, path) -> None:
    write_json(path, to_dict(m))


def load(path) -> FittedModel:
    d = read_json(path)
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        raise DataError(f"{path}: not a scalesim model file (schema "
                        f"{d.get('schema') if isinstance(d, dict) else None!r}, expected {SCHEMA})")
    try:
        fields = {k: d[k] for k in FittedModel._fields if k in d}
        fields["perf"] = perf_from_dict(d["perf"])
        return FittedModel(**fields)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: malformed model file ({e})")
