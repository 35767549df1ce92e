"""The fitted-model file written by `scalesim fit` and read by predict / simulate / validate / report:
one writer (`save`, atomic), one loader (`load`) with one error policy - anything wrong with the file
(missing, not JSON, not a model, a field of the wrong type) is a DataError naming the file - and one
JSON Schema (`JSON_SCHEMA`, checked with jsonschema on load).

JSON layout (schema "scalesim.model/1"):
  perf:      null for a model fitted on training curves alone, else {compute: {alpha_c, beta_c, kappa, colocation, cv}, comm: {alpha_intra, bw_intra,
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
              steps_log_sd, b_noise_interval, cov_log (of log s_min, log b_noise), degenerate,
              b_noise_measured (+ _interval), b_noise_drift: {first_window, last_window},
              b_noise_curves (+ _interval), curves_vs_noise {ratio, sd}, grad_var_normalisation,
              warnings, sources (curves used), lines (what fit printed)} or null when no
              training curve / noise was available (scalesim.fit.stateff)
  data:      {sources, rows, allreduce_rows, holdout, held_out_rows, fitted_configs: [config keys],
              fitted_rows: ["<resolved source path>::<config key>"] (what validate calls "fitted")}
  host:      {cores_per_host, threads_per_rank, replicas_per_node}; lr: {ref_lr, ref_batch, warmup_epochs}
  meta:      {fitted, fixed, notes (why parameters were pinned), unidentified, grad_bytes_known,
              comm_units, fit_seconds, bootstrap_resamples, cost}
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .errors import DataError
from .model.perf import ALGORITHMS, PARAMS, CommParams, ComputeParams, PerfParams
from .schema import read_json, write_json

SCHEMA = "scalesim.model/1"

_NUM = {"type": ["number", "null"]}       # null: a parameter the data could not identify (NaN)


def _bounded(p) -> dict:
    # Times and factors are >= 0 (0: the term pinned away, or --fix NAME=0); a bandwidth and the
    # overlap exponent must be > 0 (the model divides by them).
    positive = p.scale == "inv" or p.name == "gamma"
    return {"type": ["number", "null"], ("exclusiveMinimum" if positive else "minimum"): 0}


_PERF = {
    "type": "object", "required": ["compute", "comm"],
    "properties": {
        "compute": {"type": "object", "required": ["alpha_c", "beta_c"],
                    "properties": {p.name: _bounded(p) for p in PARAMS if p.group == "compute"},
                    "additionalProperties": False},
        "comm": {"type": "object", "required": ["alpha_intra", "bw_intra", "alpha_inter", "bw_inter", "grad_bytes"],
                 "properties": {**{p.name: _bounded(p) for p in PARAMS if p.group == "comm"},
                                "grad_bytes": {"type": ["number", "null"], "exclusiveMinimum": 0},
                                "algorithm": {"enum": list(ALGORITHMS)}},
                 "additionalProperties": False},
        "gamma": _bounded(next(p for p in PARAMS if p.name == "gamma")),
    },
}
_OBJ_OR_NULL = {"type": ["object", "null"]}
_POS_OR_NULL = {"type": ["number", "null"], "exclusiveMinimum": 0}
_HOST = {"type": ["object", "null"], "properties": {
    "cores_per_host": {"type": ["number", "null"], "exclusiveMinimum": 0},   # a share: emulated nodes, quotas
    "threads_per_rank": {"type": ["integer", "null"], "minimum": 1},
    "replicas_per_node": {"type": ["integer", "null"], "minimum": 1}}}
_LR = {"type": ["object", "null"], "properties": {
    "ref_lr": _POS_OR_NULL, "ref_batch": {"type": ["integer", "null"], "minimum": 1},
    "warmup_epochs": {"type": ["number", "null"], "minimum": 0}}}
_STATEFF = {"type": ["object", "null"], "properties": {"b_noise": _POS_OR_NULL, "s_min": _POS_OR_NULL}}
JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "scalesim fitted model", "type": "object", "required": ["schema", "perf"],
    "properties": {
        "schema": {"const": SCHEMA},
        "perf": {"anyOf": [{"type": "null"}, _PERF]},   # null: statistical efficiency only (curves)
        "stateff": _STATEFF,
        "bootstrap": {"type": "array", "items": _PERF},
        "intervals": {"type": "object", "additionalProperties": {"type": "array", "items": _NUM,
                                                                  "minItems": 2, "maxItems": 2}},
        "ranges": {"type": "object", "additionalProperties": {"type": "array", "items": _NUM}},
        "quality": _OBJ_OR_NULL, "data": _OBJ_OR_NULL, "host": _HOST, "lr": _LR,
        "meta": _OBJ_OR_NULL,
    },
}


class FittedModel(NamedTuple):
    perf: PerfParams | None   # None: fitted on training curves alone
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
    d["perf"] = perf_to_dict(m.perf) if m.perf is not None else None
    d["bootstrap"] = [b if isinstance(b, dict) else perf_to_dict(b) for b in m.bootstrap]
    return {"schema": SCHEMA, **d}


def unidentified(m: FittedModel) -> list:
    return list((m.meta or {}).get("unidentified") or [])


def check_predictable(m: FittedModel, num_nodes, num_replicas=None) -> None:
    """Refuse predictions that need a link class the fit could not identify (fit --partial), or any
    step time from a model fitted on training curves alone. With num_replicas, a configuration of one
    rank needs no link at all (it allreduces nothing), one host with several ranks the intra-host link."""
    if m.perf is None:
        raise DataError("the model was fitted on training curves alone (statistical efficiency only): it "
                        "predicts steps to the target, not step times; refit with throughput measurements "
                        "(a run directory or a throughput trace) as well")
    missing = unidentified(m)
    if not missing:
        return
    nn = np.atleast_1d(np.asarray(num_nodes, float))
    multi = bool(np.any(nn > 1))
    if num_replicas is None:
        intra = bool(np.any(nn == 1))
    else:
        nr = np.broadcast_to(np.atleast_1d(np.asarray(num_replicas, float)), nn.shape)
        intra = bool(np.any((nn == 1) & (nr > 1)))
        if m.perf.comm.algorithm == "hierarchical":
            intra |= bool(np.any((nn > 1) & (nr > nn)))
    needed = [k for k in missing if (k.endswith("_inter") and multi) or (k.endswith("_intra") and intra)
              or not k.endswith(("_inter", "_intra"))]
    if needed:
        raise DataError(f"the model cannot predict {'multi' if multi else 'single'}-host configurations: "
                        f"{', '.join(needed)} were not identified by its data (refit with such measurements "
                        "or --fix them)")


def save(m: FittedModel, path) -> None:
    """Write the model file atomically (readers see the old file or the new one, never half)."""
    write_json(path, to_dict(m))


def check(d, path) -> None:
    """Raise DataError unless `d` (parsed JSON) is a model file by JSON_SCHEMA."""
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        raise DataError(f"{path}: not a scalesim model file (schema "
                        f"{d.get('schema') if isinstance(d, dict) else None!r}, expected {SCHEMA})")
    import jsonschema  # lazy: only loading a model needs it

    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(JSON_SCHEMA).iter_errors(d))
    if err is not None:
        where = "/".join(map(str, err.absolute_path)) or "top level"
        raise DataError(f"{path}: malformed model file ({where}: {err.message})")
    # null is how a parameter the data could not identify is stored; anywhere else it would turn
    # every prediction into NaN.
    unknown = set(((d.get("meta") or {}).get("unidentified")) or [])
    for group in ("compute", "comm"):
        for k, v in ((d.get("perf") or {}).get(group) or {}).items():
            if v is None and k not in unknown and not (k == "grad_bytes"):
                raise DataError(f"{path}: malformed model file (perf/{group}/{k} is null but not listed in "
                                "meta.unidentified)")


def load(path) -> FittedModel:
    """The one loader: every problem with the file is a DataError naming it."""
    d = read_json(path)
    check(d, path)
    try:
        fields = {k: d[k] for k in FittedModel._fields if k in d}
        fields["perf"] = perf_from_dict(d["perf"]) if d["perf"] is not None else None
        return FittedModel(**fields)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: malformed model file ({e})")


def as_model(model) -> "FittedModel":
    """A FittedModel, or the path of a model file (read by the one loader)."""
    return model if isinstance(model, FittedModel) else load(model)
