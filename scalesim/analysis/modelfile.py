"""The fitted-model file written by `scalesim fit` and read by predict / simulate / validate / report.

JSON layout (schema "scalesim.model/1"):
  perf:      {compute: {alpha_c, beta_c, kappa}, comm: {alpha_intra, bw_intra, alpha_inter,
              bw_inter, grad_bytes, algorithm}, gamma}
  stateff:   {b_noise, s_min, target: {...}} or null when no training curve/noise was available
  bootstrap: list of parameter sets like `perf` (and optional b_noise) from bootstrap refits;
             predictions take percentiles over them for intervals
  intervals: {param_name: [lo, hi]} 90 % bootstrap intervals
  ranges:    {num_replicas: [lo, hi], num_nodes: [lo, hi], local_batch: [lo, hi]} of the fitting
             data; predictions outside are extrapolations
  quality:   {quantity: {mape, n}}; data: {sources: [...], rows}; host: {cores_per_host,
             threads_per_rank}; lr: {ref_lr, ref_batch, warmup_epochs}; meta: free-form
"""
from __future__ import annotations

from typing import Any, NamedTuple

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


def perf_from_dict(d: dict) -> PerfParams:
    return PerfParams(ComputeParams(**d["compute"]), CommParams(**d["comm"]), float(d.get("gamma", 1.0)))


def to_dict(m: FittedModel) -> dict[str, Any]:
    d = m._asdict()
    d["perf"] = perf_to_dict(m.perf)
    d["bootstrap"] = [b if isinstance(b, dict) else perf_to_dict(b) for b in m.bootstrap]
    return {"schema": SCHEMA, **d}


def save(m: FittedModel, path) -> None:
    write_json(path, to_dict(m))


def load(path) -> FittedModel:
    d = read_json(path)
    if d.get("schema") != SCHEMA:
        raise DataError(f"{path}: not a scalesim model file (schema {d.get('schema')!r}, expected {SCHEMA})")
    try:
        fields = {k: d[k] for k in FittedModel._fields if k in d}
        fields["perf"] = perf_from_dict(d["perf"])
        return FittedModel(**fields)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: malformed model file ({e})")
