"""`fit(data) -> FittedModel`: the Python API behind `scalesim fit`.

    import scalesim
    model = scalesim.fit(["data/runs/measure-...", "trace.csv"], holdout="num_replicas>4", bootstrap=50)

data: run directories, throughput-trace CSVs, training-curve CSVs (see docs/formats.md), or an
Observations object. The performance model is scalesim.model.perf (fitted by scalesim.fit.perf), statistical
efficiency by scalesim.fit.stateff. Rows matching `holdout` are left out of the fit and recorded, so
`validate --only-unseen` can test on exactly them.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import DataError
from ..model.perf import PARAMS, PerfParams
from ..modelfile import FittedModel, perf_to_dict
from . import observations as ob
from .perf import _model_value, fit_perf, from_perf
from .stateff import fit_stateff
from .validate import comparison, mape_by_quantity, row_keys

_BY_FIT_NAME = {p.fit_name: p for p in PARAMS}

def _floats(p: PerfParams) -> PerfParams:
    def f(t):
        return type(t)(*(x if isinstance(x, str) else float(x) for x in t))

    return PerfParams(f(p.compute), f(p.comm), float(p.gamma))


def model_name(name: str) -> str:
    """Fitted coordinate -> model-file name (inv_bw_intra -> bw_intra)."""
    return _BY_FIT_NAME[name].name


def model_value(name: str, v: float) -> float:
    """Fitted coordinate value -> model-file value (inv_bw_intra 1e-9 -> bw_intra 1e9)."""
    return _model_value(_BY_FIT_NAME[name], v)


def intervals(boots: list, free: list, level: float = 90.0, estimate: PerfParams | None = None) -> tuple[dict, list]:
    """Percentile intervals of the bootstrap replicates, per model-file parameter, and the names whose
    interval had to be re-centred.

    Estimate and replicates are the same statistic (scalesim.fit.perf._refit), so the interval
    normally contains the estimate. Where it does not, the parameter sits on a direction the data
    barely constrain and the replicates' median is biased away from the estimate; the interval is
    then the replicates' spread around the estimate (percentiles of replicate - median + estimate,
    in log space for positive parameters), and the name is returned so the summary can say so."""
    if not boots:
        return {}, []
    lo, hi = (100 - level) / 2, 100 - (100 - level) / 2
    point = from_perf(estimate) if estimate is not None else {}
    coords = [from_perf(b) for b in boots]
    out, recentred = {}, []
    for name in free:
        vals = np.array([model_value(name, c[name]) for c in coords], float)
        vals = vals[np.isfinite(vals)]
        if not vals.size:
            continue
        iv = [float(np.percentile(vals, lo)), float(np.percentile(vals, hi))]
        est = model_value(name, point[name]) if name in point else None
        if est is not None and math.isfinite(est) and not iv[0] <= est <= iv[1]:
            logs = _BY_FIT_NAME[name].scale != "lin" and est > 0 and vals.min() > 0
            f, g = (np.log, np.exp) if logs else (lambda v: v, lambda v: v)
            shifted = f(vals) - np.median(f(vals)) + f(est)
            iv = [float(g(np.percentile(shifted, lo))), float(g(np.percentile(shifted, hi)))]
            recentred.append(model_name(name))
        out[model_name(name)] = iv
    return out, recentred


def quality(perf: PerfParams, steps) -> dict:
    """In-sample MAPE per measured quantity (as `validate` computes it)."""
    return mape_by_quantity(comparison(perf, steps)) if len(steps) else {}


def _ranges(steps, bench) -> dict:
    out = {}
    for col in ("num_replicas", "num_nodes", "local_batch", "replicas_per_node"):
        vals = [steps[col]] + ([bench[col]] if col in getattr(bench, "columns", ()) else [])
        v = np.concatenate([np.asarray(x, float) for x in vals])
        v = v[np.isfinite(v)]
        if v.size:
            out[col] = [float(v.min()), float(v.max())]
    return out


def _host(obs, steps) -> dict:
    cores = obs.host.get("cores_per_host")
    return {"cores_per_host": float(cores) if cores and math.isfinite(cores) else None,
            "threads_per_rank": obs.host.get("threads_per_rank"),
            "replicas_per_node": int(steps["replicas_per_node"].max()) if len(steps) else None}


def fit(data, *, holdout: str | None = None, bootstrap: int = 50, seed: int = 0, fixed: dict | None = None,
        partial: bool = False, target: float | None = None, starts: int = 4, algorithm: str = "ring",
        grad_var_batch: float | None = None, batch_size: float | None = None) -> FittedModel:
    """grad_var_batch: curve files' grad_var is the variance of a mean over that many examples
    (AdaptDL: the job's initial batch; detected from a progress column when not given). batch_size:
    the global batch of curve files with neither a batch_size column nor an exact validation-<B>.csv name."""
    t0 = time.perf_counter()
    obs = ob.load(data, batch_size=batch_size)
    steps = obs.steps
    if steps.empty and obs.allreduce.empty:
        if obs.curves.empty and obs.noise.empty:
            raise DataError("no measurements in " + ", ".join(map(str, obs.sources)))
        if obs.curves.empty:
            raise DataError("only gradient noise was given: a model file needs throughput measurements (a run "
                            "directory or a throughput trace) or training curves")
        return _curves_only(obs, target, grad_var_batch, time.perf_counter() - t0)
    if steps.empty:
        steps = steps.reindex(columns=list(ob.STEP_COLUMNS))
    held = ob.holdout_mask(steps, holdout)
    if held.all() and len(steps):
        raise DataError(f"holdout {holdout!r} leaves no configuration to fit")
    fit_rows = steps[~held].reset_index(drop=True)
    bench = obs.allreduce
    if not bench.empty and holdout:  # the microbenchmark at held-out scales is held out too
        bench = bench[~ob.holdout_mask(bench.reindex(columns=sorted(set(bench.columns) | set(ob.HOLDOUT_COLUMNS))),
                                       holdout)].reset_index(drop=True)
    perf_fit, why = _perf_or_why(obs, fit_rows, bench, fixed=fixed, partial=partial, starts=starts,
                                 bootstrap=bootstrap, seed=seed, algorithm=algorithm)
    if perf_fit is None:
        return _curves_only(obs, target, grad_var_batch, time.perf_counter() - t0, notes=[why])
    stateff = fit_stateff(obs.curves, obs.noise, target, grad_var_batch=grad_var_batch)
    perf = _floats(perf_fit.perf)
    pl = perf_fit.plan
    ivs, recentred = intervals(perf_fit.bootstrap, pl.free, estimate=perf)
    return FittedModel(
        perf=perf,
        stateff=stateff,
        bootstrap=[perf_to_dict(_floats(b)) for b in perf_fit.bootstrap],
        intervals=ivs,
        ranges=_ranges(fit_rows, bench),
        quality=quality(perf, fit_rows),
        data={"sources": [str(s) for s in obs.sources], "rows": int(len(fit_rows)),
              "allreduce_rows": int(len(bench)), "holdout": holdout, "held_out_rows": int(held.sum()),
              "fitted_configs": sorted(set(fit_rows["config"])),
              "fitted_rows": sorted(set(row_keys(fit_rows))) if len(fit_rows) else []},
        host=_host(obs, fit_rows),
        lr={},
        meta={"fitted": [model_name(k) for k in pl.free],
              "fixed": {model_name(k): (model_value(k, v) if math.isfinite(v) else None) for k, v in pl.fixed.items()},
              "notes": pl.notes, "unidentified": pl.unidentified, "intervals_recentred": recentred,
              "grad_bytes_known": obs.grad_bytes is not None,
              "comm_units": "bytes/s" if obs.grad_bytes else "gradients/s (gradient size unknown: grad_bytes = 1)",
              "fit_seconds": round(time.perf_counter() - t0, 3), "bootstrap_resamples": int(bootstrap),
              "cost": perf_fit.cost},
    )


def _perf_or_why(obs, fit_rows, bench, *, partial: bool, **kw):
    """(fit_perf's result, None), or (None, why) when the throughput rows cannot identify a model but
    training curves exist: e.g. `scalesim train` on one rank, whose curves and noise still fit
    statistical efficiency. Under --strict (partial False) the refusal stands."""
    try:
        return fit_perf(fit_rows, bench if not bench.empty else None, obs.grad_bytes, partial=partial, **kw), None
    except DataError as e:
        if obs.curves.empty or not partial:
            raise
        return None, f"no throughput model: {e}"


def _curves_only(obs, target, grad_var_batch, seconds, notes=()) -> FittedModel:
    """Statistical efficiency from training curves (and their noise) without a throughput model."""
    t0 = time.perf_counter()
    stateff = fit_stateff(obs.curves, obs.noise, target, grad_var_batch=grad_var_batch)
    return FittedModel(perf=None, stateff=stateff,
                       data={"sources": [str(s) for s in obs.sources], "rows": 0, "allreduce_rows": 0,
                             "holdout": None, "held_out_rows": 0, "fitted_configs": []},
                       meta={"curves_only": True, "fitted": [], "fixed": {}, "notes": list(notes), "unidentified": [],
                             "fit_seconds": round(seconds + time.perf_counter() - t0, 3)})
