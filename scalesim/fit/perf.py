"""Fit scalesim.model.perf to observations: robust least squares in log space, several starts, bounds,
stratified bootstrap. Which parameters are fitted, pinned or refused is decided by scalesim.fit.identify; names, bounds,
defaults and start points come from the parameter table scalesim.model.perf.PARAMS.

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

from ..model.perf import (PARAMS, CommParams, ComputeParams, PerfParams, Placement, allreduce_time, compute_time,
                          measured_allreduce_time, step_time)
from .identify import DEFAULTS, INTER, INTRA, SPACE, Plan, plan

F_SCALE = 0.05
TR_SOLVER = "lsmr"  # the exact solver SVDs the Jacobian each iteration; threaded BLAS makes that slow on busy hosts
TRACE_COMPUTE_WEIGHT = 0.3
REFIT_NFEV = 50     # evaluations per free parameter of one solve in a refit
REFIT_ROUNDS = 10   # restarts of a refit at most
REFIT_XTOL = 1e-3   # a refit has converged when no fitted coordinate moved more than this (log: 0.1 %)
SNAP = 1e-6         # in fitted coordinates: absolute for 'lin', relative for log parameters
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
def _model_value(p, v: float) -> float:
    return 1.0 / v if p.scale == "inv" else v


def to_perf(v: dict, grad_bytes: float, algorithm: str = "ring") -> PerfParams:
    """Fitted coordinates (inv_bw_* for bandwidths) -> PerfParams."""
    groups = {"compute": {}, "comm": {}, "overlap": {}}
    for p in PARAMS:
        groups[p.group][p.name] = _model_value(p, v[p.fit_name])
    return PerfParams(ComputeParams(**groups["compute"]),
                      CommParams(grad_bytes=grad_bytes, algorithm=algorithm, **groups["comm"]), groups["overlap"]["gamma"])


def from_perf(perf: PerfParams) -> dict:
    """PerfParams -> fitted coordinates, the inverse of to_perf."""
    parts = {"compute": perf.compute._asdict(), "comm": perf.comm._asdict(), "overlap": {"gamma": perf.gamma}}
    return {p.fit_name: _model_value(p, parts[p.group][p.name]) for p in PARAMS}


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


def _snap(pl: Plan, x):
    """Values within solver tolerance of a bound are put on it: the trust-region solver only approaches
    a bound (it starts strictly inside), so 'at the bound' would otherwise read 1e-18 in one fit and
    1e-14 in another."""
    lo, hi = _bounds(pl.free)
    return np.where(x - lo < SNAP, lo, np.where(hi - x < SNAP, hi, x))


def _refit(pl: Plan, a: Arrays, grad_bytes, x0, algorithm: str):
    """The statistic that both the point estimate and every bootstrap replicate are: refits from x0
    until the parameters stop moving. One solve stops when the cost stops falling (ftol), but along a
    direction the data barely constrain (an overhead next to a bandwidth, a latency next to a fixed
    cost) the cost is nearly flat, so a restart moves on - by 85x for deepspeech2's overhead_intra.
    The estimate used to stop at the first such point while the bootstrap refits, started there,
    moved on, which put estimates outside their own intervals (alpha_c 1.173e-07 [1.006e-09,
    3.676e-08]). The point estimate is this on the full data from the best start; replicates are it
    on resamples from the point estimate."""
    x, cost = np.asarray(x0, float), math.inf
    for _ in range(REFIT_ROUNDS):
        r = _solve(pl, a, grad_bytes, [x], algorithm, max_nfev=REFIT_NFEV * (len(x) + 1))
        moved = float(np.max(np.abs(r.x - x))) if x.size else 0.0
        x, cost = _snap(pl, r.x), float(r.cost)
        if moved < REFIT_XTOL:
            break
    return x, cost


def _starts(pl: Plan, a: Arrays, grad_bytes: float, k: int, rng) -> list:
    """Data-driven centre (compute from the fastest 1-replica rows, sync from what is left) plus
    log-normal scatter around it."""
    st = a.step_time[np.isfinite(a.step_time)]
    scale = float(np.median(st)) if st.size else float(np.nanmedian(a.compute_obs))
    if not math.isfinite(scale):
        scale = float(np.median(a.bench[2])) if a.bench is not None else 1e-2
    b = float(np.nanmedian(a.local_batch))
    per = {"": 1.0, "b": b, "M": grad_bytes}
    centre = {p.fit_name: (scale if p.start[0] == "s" else p.start[0]) / p.start[1] / per[p.start[2]]
              for p in PARAMS}
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
        x, cost = _refit(pl, a, gb, best.x, algorithm)
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
            xb, _ = _refit(pl, subset(a, idx, bidx), gb, x, algorithm)
            boots.append(to_perf({**v, **{k: _decode(k, xi) for k, xi in zip(pl.free, xb)}}, gb, algorithm))
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
