"""Fit scalesim.model.perf to observations: robust least squares in log space, several starts, bounds,
stratified bootstrap. Which parameters are fitted, pinned or refused is decided by perf_plan.

Residuals are log(predicted / measured), so every configuration counts by its relative error:
  step_time      production step time (traces: step_time)                      weight 1
  compute_time   instrumented data+compute+update (run dirs)                   weight 1
                 or step_time - sync_time (traces: AdaptDL's split attributes
                 some waiting to compute, so it is a weaker signal)            weight 0.3
  allreduce_time instrumented allreduce of the gradients (includes waiting for
                 the slowest rank: perf.measured_allreduce_time)                weight 1
  microbench     allreduce table: time per size and replica count             weight 1
soft_l1 loss with f_scale 0.05: residuals beyond ~5 % count linearly, so stragglers in the
measurements do not drag the fit.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..model.perf import (CommParams, ComputeParams, PerfParams, Placement, allreduce_time, compute_time,
                          measured_allreduce_time, step_time)
from .perf_plan import DEFAULTS, INTER, INTRA, SPACE, Plan, plan

F_SCALE = 0.05
TR_SOLVER = "lsmr"  # the exact solver SVDs the Jacobian each iteration; threaded BLAS makes that slow on busy hosts
TRACE_COMPUTE_WEIGHT = 0.3
class PerfFit(NamedTuple):
    perf: PerfParams
    plan: Plan
    cost: float
    bootstrap: list       # PerfParams


# --- data as arrays ------------------------------------------------------------------------------
class Arrays(NamedTuple):
    placement: Placement
    local_batch: np.ndarray
    step_time: np.ndarray
    compute_obs: np.ndarray
    compute_w: np.ndarray
    allreduce_time: np.ndarray
    bench: tuple | None     # (placement, size_bytes, time)


def _placement(df) -> Placement:
    cores = df["cores_per_host"].to_numpy(float) if "cores_per_host" in df else math.inf
    threads = df["threads_per_rank"].to_numpy(float) if "threads_per_rank" in df else 1.0
    return Placement(df["num_nodes"].to_numpy(float), df["replicas_per_node"].to_numpy(float),
                     np.nan_to_num(cores, nan=math.inf), np.nan_to_num(threads, nan=1.0),
                     df["num_replicas"].to_numpy(float))


def arrays(steps, bench) -> Arrays:
    st = steps["step_time"].to_numpy(float)
    direct = steps["compute_time"].to_numpy(float)
    derived = st - steps["sync_time"].to_numpy(float)
    use_direct = np.isfinite(direct)
    comp = np.where(use_direct, direct, derived)
    w = np.where(use_direct, 1.0, TRACE_COMPUTE_WEIGHT)
    comp = np.where(comp > 0, comp, np.nan)
    b = None
    if bench is not None and len(bench):
        b = (_placement(bench.assign(cores_per_host=math.inf, threads_per_rank=1.0)),
             bench["size_bytes"].to_numpy(float), bench["time"].to_numpy(float))
    return Arrays(_placement(steps), steps["local_batch"].to_numpy(float), st, comp, w,
                  steps["allreduce_time"].to_numpy(float), b)


# --- parameters <-> PerfParams ---------------------------------------------------------------------
def to_perf(v: dict, grad_bytes: float, algorithm: str = "ring") -> PerfParams:
    comp = ComputeParams(v["alpha_c"], v["beta_c"], v["kappa"], v["colocation"], v["cv"])
    comm = CommParams(v["alpha_intra"], 1.0 / v["inv_bw_intra"], v["alpha_inter"], 1.0 / v["inv_bw_inter"],
                      grad_bytes, algorithm, v["overhead_intra"], v["overhead_inter"], v["pair_sharing"], v["jitter"])
    return PerfParams(comp, comm, v["gamma"])


def from_perf(p: PerfParams) -> dict:
    c, m = p.compute, p.comm
    return {"alpha_c": c.alpha_c, "beta_c": c.beta_c, "kappa": c.kappa, "colocation": c.colocation, "cv": c.cv,
            "overhead_intra": m.overhead_intra, "alpha_intra": m.alpha_intra, "inv_bw_intra": 1.0 / m.bw_intra,
            "overhead_inter": m.overhead_inter, "alpha_inter": m.alpha_inter, "inv_bw_inter": 1.0 / m.bw_inter,
            "pair_sharing": m.pair_sharing, "jitter": m.jitter, "gamma": p.gamma}


def _encode(name, value):
    kind, lo, hi = SPACE[name]
    value = min(max(value, lo), hi)
    return math.log(value) if kind == "log" else value


def _decode(name, x):
    return math.exp(x) if SPACE[name][0] == "log" else x


def _bounds(names):
    lo = [math.log(SPACE[n][1]) if SPACE[n][0] == "log" else SPACE[n][1] for n in names]
    hi = [math.log(SPACE[n][2]) if SPACE[n][0] == "log" else SPACE[n][2] for n in names]
    return np.array(lo), np.array(hi)


# --- residuals and the solver -----------------------------------------------------------------------
def _values(pl: Plan, x) -> dict:
    v = {**DEFAULTS, **pl.fixed}
    v.update({k: _decode(k, xi) for k, xi in zip(pl.free, x)})
    for cls in (INTRA, INTER):  # unknown classes evaluate as NaN only where they are used
        if any(isinstance(v[k], float) and math.isnan(v[k]) for k in cls):
            v.update({k: 1.0 for k in cls})
    return v


def subset(a: Arrays, idx, bidx=None) -> Arrays:
    """Rows idx of the step data and bidx of the microbenchmark (a bootstrap resample)."""
    def take(f, i):
        return f[i] if isinstance(f, np.ndarray) else f

    bench = a.bench
    if bench is not None and bidx is not None:
        bench = (Placement(*(take(f, bidx) for f in bench[0])), bench[1][bidx], bench[2][bidx])
    return Arrays(Placement(*(take(f, idx) for f in a.placement)), *(f[idx] for f in a[1:6]), bench)


def _residuals(perf: PerfParams, a: Arrays):
    pl, b, out = a.placement, a.local_batch, []
    ok = np.isfinite(a.step_time)
    if ok.any():
        out.append(np.log(step_time(perf, pl, b)[ok] / a.step_time[ok]))
    ok = np.isfinite(a.compute_obs)
    if ok.any():
        out.append(a.compute_w[ok] * np.log(compute_time(perf.compute, b, pl)[ok] / a.compute_obs[ok]))
    ok = np.isfinite(a.allreduce_time) & (a.allreduce_time > 0)
    if ok.any():
        out.append(np.log(measured_allreduce_time(perf, pl, b)[ok] / a.allreduce_time[ok]))
    if a.bench is not None:
        bp, size, t = a.bench
        out.append(np.log(allreduce_time(perf.comm, size, bp.num_nodes, bp.replicas_per_node, bp.num_replicas) / t))
    r = np.concatenate(out) if out else np.zeros(0)
    return np.where(np.isfinite(r), r, 10.0)


def _solve(pl: Plan, a: Arrays, grad_bytes, x0s, algorithm: str = "ring", max_nfev=None):
    from scipy.optimize import least_squares

    lo, hi = _bounds(pl.free)

    def res(x):
        return _residuals(to_perf(_values(pl, x), grad_bytes, algorithm), a)

    best = None
    for x0 in x0s:
        x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
        r = least_squares(res, x0, bounds=(lo, hi), loss="soft_l1", f_scale=F_SCALE, x_scale="jac", tr_solver=TR_SOLVER,
                          max_nfev=max_nfev)
        if best is None or r.cost < best.cost:
            best = r
    return best


def _starts(pl: Plan, a: Arrays, grad_bytes: float, k: int, rng) -> list:
    """Data-driven centre (compute from the fastest 1-replica rows, sync from what is left) plus
    log-normal scatter around it."""
    st = a.step_time[np.isfinite(a.step_time)]
    scale = float(np.median(st)) if st.size else float(np.nanmedian(a.compute_obs))
    if not math.isfinite(scale):
        scale = float(np.median(a.bench[2])) if a.bench is not None else 1e-2
    b = float(np.nanmedian(a.local_batch))
    centre = {"alpha_c": scale / 2, "beta_c": scale / 2 / b, "kappa": 1.0, "colocation": 0.05, "cv": 0.05,
              "overhead_intra": scale / 10, "alpha_intra": scale / 1000, "inv_bw_intra": scale / 5 / grad_bytes,
              "overhead_inter": scale / 10, "alpha_inter": scale / 1000, "inv_bw_inter": scale / 2 / grad_bytes,
              "pair_sharing": 0.3, "jitter": 0.1, "gamma": 2.0}
    x = np.array([_encode(n, centre[n]) for n in pl.free])
    spread = np.array([1.5 if SPACE[n][0] == "log" else 0.25 * (SPACE[n][2] - SPACE[n][1]) for n in pl.free])
    return [x] + [x + spread * rng.normal(size=x.size) for _ in range(k - 1)]


def _strata(steps):
    keys = steps[["num_nodes", "num_replicas", "replicas_per_node"]].astype(float).astype(str).agg("/".join, axis=1)
    return [np.flatnonzero((keys == k).to_numpy()) for k in keys.unique()]


def fit_perf(steps, bench=None, grad_bytes: float | None = None, *, fixed=None, partial=False, starts: int = 4,
             bootstrap: int = 0, seed: int = 0, algorithm: str = "ring") -> PerfFit:
    gb = float(grad_bytes) if grad_bytes else 1.0
    pl = plan(steps, bench, fixed, partial)
    a = arrays(steps, bench)
    rng = np.random.default_rng(seed)
    if pl.free:
        best = _solve(pl, a, gb, _starts(pl, a, gb, starts, rng), algorithm)
        x, cost = best.x, float(best.cost)
    else:
        x, cost = np.zeros(0), float("nan")
    v = {**DEFAULTS, **pl.fixed, **{k: _decode(k, xi) for k, xi in zip(pl.free, x)}}
    perf = to_perf(v, gb, algorithm)
    boots = []
    if bootstrap and pl.free:
        strata = _strata(steps)
        nb = len(bench) if bench is not None else 0
        for _ in range(bootstrap):
            idx = np.concatenate([rng.choice(s, size=s.size) for s in strata])
            bidx = rng.integers(0, nb, nb) if nb else None
            r = _solve(pl, subset(a, idx, bidx), gb, [x], algorithm, max_nfev=50 * (len(x) + 1))
            boots.append(to_perf({**v, **{k: _decode(k, xi) for k, xi in zip(pl.free, r.x)}}, gb, algorithm))
    return PerfFit(perf, pl, cost, boots)


# --- predictions of every measured quantity ------------------------------------------------------------
def predict_quantities(perf: PerfParams, steps):
    """Predicted step_time, compute_time, allreduce_time and sync_time (AdaptDL's visible sync:
    step - compute) for each row of a steps frame."""
    import pandas as pd

    pl, b = _placement(steps), steps["local_batch"].to_numpy(float)
    st = step_time(perf, pl, b)
    tc = compute_time(perf.compute, b, pl)
    return pd.DataFrame({"step_time": st, "compute_time": tc, "allreduce_time": measured_allreduce_time(perf, pl, b),
                         "sync_time": st - tc}, index=steps.index)
