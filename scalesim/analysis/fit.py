"""`fit(data) -> FittedModel`: the Python API behind `scalesim fit`.

    from scalesim.analysis.fit import fit
    model = fit(["data/runs/measure-...", "trace.csv"], holdout="num_replicas>4", bootstrap=50)

data: run directories, throughput-trace CSVs, training-curve CSVs (see docs/formats.md), or an
Observations object. The performance model is scalesim.model.perf (fitted by perf_fit), statistical
efficiency by stateff_fit. Rows matching `holdout` are left out of the fit and recorded, so
`validate --only-unseen` can test on exactly them.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import DataError
from ..model.perf import PerfParams
from . import observations as ob
from .modelfile import FittedModel, perf_to_dict
from .perf_fit import fit_perf, from_perf
from .stateff_fit import fit_stateff

def _floats(p: PerfParams) -> PerfParams:
    def f(t):
        return type(t)(*(x if isinstance(x, str) else float(x) for x in t))

    return PerfParams(f(p.compute), f(p.comm), float(p.gamma))


def model_name(name: str) -> str:
    return name.replace("inv_bw", "bw")


def model_value(name: str, v: float) -> float:
    return 1.0 / v if name.startswith("inv_bw") else v


def intervals(boots: list, free: list, level: float = 90.0) -> dict:
    if not boots:
        return {}
    lo, hi = (100 - level) / 2, 100 - (100 - level) / 2
    out = {}
    for name in free:
        vals = np.array([model_value(name, from_perf(b)[name]) for b in boots], float)
        vals = vals[np.isfinite(vals)]
        if vals.size:
            out[model_name(name)] = [float(np.percentile(vals, lo)), float(np.percentile(vals, hi))]
    return out


def quality(perf: PerfParams, steps) -> dict:
    """In-sample MAPE per measured quantity (as `validate` computes it)."""
    from .validate import comparison, mape_by_quantity

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
        partial: bool = False, target: float | None = None, starts: int = 4, algorithm: str = "ring") -> FittedModel:
    t0 = time.perf_counter()
    obs = ob.load(data)
    steps = obs.steps
    if steps.empty and obs.allreduce.empty:
        if obs.curves.empty and obs.noise.empty:
            raise DataError("no measurements in " + ", ".join(map(str, obs.sources)))
        raise DataError("only training curves / noise were given: a model file also needs throughput "
                        "measurements (a run directory or a throughput trace)")
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
    perf_fit = fit_perf(fit_rows, bench if not bench.empty else None, obs.grad_bytes,
                        fixed=fixed, partial=partial, starts=starts, bootstrap=bootstrap, seed=seed,
                        algorithm=algorithm)
    stateff = fit_stateff(obs.curves, obs.noise, target)
    perf = _floats(perf_fit.perf)
    pl = perf_fit.plan
    return FittedModel(
        perf=perf,
        stateff=stateff,
        bootstrap=[perf_to_dict(_floats(b)) for b in perf_fit.bootstrap],
        intervals=intervals(perf_fit.bootstrap, pl.free),
        ranges=_ranges(fit_rows, bench),
        quality=quality(perf, fit_rows),
        data={"sources": [str(s) for s in obs.sources], "rows": int(len(fit_rows)),
              "allreduce_rows": int(len(bench)), "holdout": holdout, "held_out_rows": int(held.sum()),
              "fitted_configs": sorted(set(fit_rows["config"]))},
        host=_host(obs, fit_rows),
        lr={},
        meta={"fitted": [model_name(k) for k in pl.free],
              "fixed": {model_name(k): (model_value(k, v) if math.isfinite(v) else None) for k, v in pl.fixed.items()},
              "notes": pl.notes, "unidentified": pl.unidentified,
              "grad_bytes_known": obs.grad_bytes is not None,
              "comm_units": "bytes/s" if obs.grad_bytes else "gradients/s (gradient size unknown: grad_bytes = 1)",
              "fit_seconds": round(time.perf_counter() - t0, 3), "bootstrap_resamples": int(bootstrap),
              "cost": perf_fit.cost},
    )
