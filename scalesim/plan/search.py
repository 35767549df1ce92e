"""Configuration search shared by `predict` and `simulate`.

Grid: num_nodes x devices_per_node x global batch. Each rank processes rank_batch = B / n samples
per optimizer step, split into accum_steps micro-batches of local_batch <= max_local_batch
(gradient accumulation when the batch does not fit in memory). For each configuration:

    step_time   perf.step_time (compute + allreduce with overlap)
    steps       steps to the target at global batch B (McCandlish et al. 2018, S = S_min (1 + B_noise/B);
                without a noise scale the number of samples is conserved: Goyal et al.'s regime)
    time        steps x step_time;   device_hours = num_replicas x time / 3600
    scaling_eff throughput per device relative to `base` (1 device by default) at the same local batch
    stat_eff    samples needed at ref_batch / samples needed at B

The step-time model in scalesim.model.perf is called once per devices-per-node value with arrays of
node counts and batches (no second implementation to drift from it), so 1024 nodes x 64 batches takes
a fraction of a second (benchmarks/bench_predict.py).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence, Union

import numpy as np

from ..errors import DataError, UsageError
from ..model.perf import PerfParams, Placement, step_time
from ..model.stateff import statistical_efficiency, steps_to_target

PerfSource = Union[PerfParams, Callable[[int], PerfParams]]  # callable: devices_per_node -> params


class Target(NamedTuple):
    """What training must achieve. kind 'stateff': amount = S_min steps of the model's fitted S(B) (a
    metric target); 'epochs': amount = samples processed at EVERY batch (epochs x dataset: a fixed
    budget, Goyal et al. 2017); 'samples': amount = samples processed at ref_batch (steps x
    ref_batch), other batches converted by the noise model when there is one."""
    kind: str
    amount: float
    ref_batch: float
    label: str


class Space(NamedTuple):
    num_nodes: Sequence[int]
    devices_per_node: Sequence[int]
    global_batches: Sequence[int] = ()      # candidate B; rank_batch = round(B / n)
    local_batches: Sequence[int] = ()       # or: fixed samples per rank per step (weak scaling)
    max_local_batch: int | None = None      # memory limit per micro-batch
    cores_per_host: float = math.inf
    threads_per_rank: float = 1.0


class ParamSet(NamedTuple):
    perf: PerfSource
    b_noise: float | None = None             # None or inf: samples conserved (perfect statistical scaling)


COLUMNS = ("num_nodes", "devices_per_node", "num_replicas", "global_batch", "rank_batch", "local_batch",
           "accum_steps", "step_time", "throughput", "steps", "time", "device_hours", "scaling_eff",
           "stat_eff")


def perf_for(source: PerfSource, devices_per_node: int) -> PerfParams:
    return source(devices_per_node) if callable(source) else source


def steps_needed(t: Target, global_batch, b_noise):
    B = np.asarray(global_batch, float)
    noisy = b_noise is not None and math.isfinite(b_noise)
    if t.kind == "stateff":
        if not noisy:
            raise UsageError("a statistical-efficiency target needs the model's b_noise")
        return steps_to_target(B, t.amount, b_noise)
    if t.kind == "epochs":
        return t.amount / B          # the budget is fixed; the noise model only warns (at_risk)
    if t.kind != "samples":
        raise ValueError(f"unknown target kind {t.kind!r}")
    if not noisy:
        return t.amount / B
    # the target is reached at ref_batch after amount/ref_batch steps; solve that for S_min
    s_min = (t.amount / t.ref_batch) / (1.0 + b_noise / t.ref_batch)
    return steps_to_target(B, s_min, b_noise)


def regime(t: Target, b_noise) -> str:
    """Which rule turned the target into steps, in words (the plan says it)."""
    noisy = b_noise is not None and math.isfinite(b_noise)
    if t.kind == "stateff":
        return (f"metric target: steps from the fitted S(B) = S_min (1 + B_noise/B), B_noise = {b_noise:,.0f} "
                "(McCandlish et al. 2018)")
    if t.kind == "epochs":
        return ("fixed epoch budget: the same epochs at every batch, steps = samples / B (Goyal et al. 2017)"
                + (f"; batches above B_noise = {b_noise:,.0f} are marked: at a fixed budget they risk a worse "
                   "result (they need more samples to reach the same loss)" if noisy else ""))
    if noisy:
        return (f"steps at the reference batch, converted to other batches by S(B) = S_min (1 + B_noise/B), "
                f"B_noise = {b_noise:,.0f} (McCandlish et al. 2018)")
    return "no noise-scale fit: samples to target assumed independent of the batch (linear scaling rule regime, Goyal et al. 2017)"


def at_risk(t: Target, global_batch, b_noise):
    """Configurations whose batch exceeds the noise scale under a fixed epoch budget."""
    B = np.asarray(global_batch, float)
    if t.kind != "epochs" or b_noise is None or not math.isfinite(b_noise):
        return np.zeros(B.shape, bool)
    return B > b_noise


def stat_eff(t: Target, global_batch, b_noise):
    B = np.asarray(global_batch, float)
    if b_noise is None or not math.isfinite(b_noise):
        return np.ones_like(B)
    return statistical_efficiency(B, b_noise, t.ref_batch)


def _split_batches(space: Space, n: int):
    """rank_batch, local_batch (micro-batch), accum_steps for n ranks; integers, duplicates removed."""
    cap = None  # largest global batch allowed; rounding must not exceed it
    if len(space.local_batches):
        rank = np.asarray(space.local_batches, dtype=np.int64)
    else:
        B = np.asarray(space.global_batches, dtype=float)
        cap = int(B.max())
        rank = np.minimum(np.rint(B[B >= n] / n).astype(np.int64), cap // n)  # every rank needs >= 1 sample
    rank = rank[rank >= 1]
    if space.max_local_batch:
        accum = -(-rank // int(space.max_local_batch))
        local = -(-rank // accum)
        rank = local * accum  # equal micro-batches: round the rank batch up to a multiple of accum
    else:
        accum, local = np.ones_like(rank), rank
    if cap is not None:
        rank = np.where(rank * n > cap, 0, rank)  # accumulation rounded it past the cap
    rank, first = np.unique(rank, return_index=True)
    rank, first = rank[rank >= 1], first[rank >= 1]
    return rank, local[first], accum[first]


def _placement(space: Space, nodes, per_node) -> Placement:
    """One placement, or many at once when `nodes` is an array (scalesim.model.perf accepts both)."""
    return Placement(nodes, per_node, space.cores_per_host, space.threads_per_rank)


def evaluate(params: ParamSet, space: Space, target: Target, base: tuple[int, int] = (1, 1)) -> dict:
    """Every configuration of `space` as columns (numpy arrays, one entry per configuration)."""
    if not len(space.global_batches) and not len(space.local_batches):
        raise UsageError("no batch sizes to search")
    parts = []
    for g in space.devices_per_node:
        cols = {k: [] for k in ("num_nodes", "rank_batch", "local_batch", "accum_steps")}
        for nodes in space.num_nodes:
            rank, local, accum = _split_batches(space, nodes * g)
            cols["num_nodes"].append(np.full(rank.size, nodes, dtype=np.int64))
            for k, v in (("rank_batch", rank), ("local_batch", local), ("accum_steps", accum)):
                cols[k].append(v)
        part = {k: np.concatenate(v) for k, v in cols.items()}
        if not part["num_nodes"].size:
            continue
        part["devices_per_node"] = np.full(part["num_nodes"].size, g, dtype=np.int64)
        # one call of the step-time model for every node count and batch of this devices-per-node value
        part["step_time"] = np.broadcast_to(step_time(perf_for(params.perf, g), _placement(space, part["num_nodes"], g),
                                                      part["local_batch"], part["accum_steps"]),
                                            part["num_nodes"].shape).astype(float)
        parts.append(part)
    if not parts:
        raise UsageError("the search space is empty: every global batch is smaller than the device count")
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    out["num_replicas"] = out["num_nodes"] * out["devices_per_node"]
    out["global_batch"] = out["num_replicas"] * out["rank_batch"]
    out["throughput"] = out["global_batch"] / out["step_time"]
    out["steps"] = np.broadcast_to(steps_needed(target, out["global_batch"], params.b_noise), out["step_time"].shape)
    out["time"] = out["steps"] * out["step_time"]
    if not np.isfinite(out["time"]).any():
        raise DataError("the model gives no finite step time for any configuration (check its parameters)")
    out["device_hours"] = out["num_replicas"] * out["time"] / 3600.0
    out["stat_eff"] = stat_eff(target, out["global_batch"], params.b_noise)
    out["scaling_eff"] = scaling_efficiency(params, space, out, base)
    return out


def scaling_efficiency(params: ParamSet, space: Space, table: dict, base: tuple[int, int]):
    """Per-device throughput relative to the `base` placement running the same micro-batches."""
    nb, gb = base
    t_base = step_time(perf_for(params.perf, gb), _placement(space, nb, gb), table["local_batch"],
                       table["accum_steps"])
    per_device_base = table["rank_batch"] / t_base
    return (table["throughput"] / table["num_replicas"]) / per_device_base


# --- choosing ------------------------------------------------------------------------------
class Choice(NamedTuple):
    feasible: bool
    cheapest: int | None      # row index: fewest device-hours among configurations meeting the time
    fastest: int              # row index: shortest time overall
    frontier: list            # row indices of the time/cost Pareto front, fastest first


def pareto(time, cost) -> np.ndarray:
    """Indices of configurations no other one beats on both time and cost, fastest first."""
    order = np.lexsort((cost, time))
    c = cost[order]
    best_before = np.minimum.accumulate(np.concatenate(([np.inf], c[:-1])))
    return order[c < best_before]


def choose(table: dict, target_time: float | None) -> Choice:
    bad = ~np.isfinite(table["time"])  # e.g. NaN parameters the fit could not identify
    time = np.where(bad, np.inf, table["time"])
    cost = np.where(bad, np.inf, table["device_hours"])
    fastest = int(np.lexsort((cost, time))[0])
    front = pareto(time, cost)
    front = front[np.isfinite(time[front])]
    if target_time is None:
        return Choice(True, None, fastest, front.tolist())
    ok = np.flatnonzero(time <= target_time)
    if not ok.size:
        return Choice(False, None, fastest, front.tolist())
    cheapest = int(ok[np.lexsort((time[ok], cost[ok]))[0]])
    return Choice(True, cheapest, fastest, front.tolist())


def thin(indices: Sequence[int], keep: Sequence[int | None], limit: int = 8) -> list[int]:
    """At most `limit` evenly spaced frontier rows, always including the rows in `keep`."""
    idx = list(indices)
    must = [i for i in keep if i is not None and i in idx]
    if len(idx) <= limit:
        return idx
    picks = set(must)
    for j in np.linspace(0, len(idx) - 1, max(limit - len(picks), 2)).round().astype(int):
        picks.add(idx[j])
    return [i for i in idx if i in picks]


# --- intervals and extrapolation -------------------------------------------------------------
def rows_time(params: ParamSet, space: Space, target: Target, table: dict, idx) -> np.ndarray:
    """Predicted time of the rows `idx` of `table` under another parameter set."""
    idx = np.asarray(idx, dtype=np.int64)
    out = np.empty(idx.size)
    for g in np.unique(table["devices_per_node"][idx]):
        sel = idx[table["devices_per_node"][idx] == g]
        t = step_time(perf_for(params.perf, int(g)), _placement(space, table["num_nodes"][sel], int(g)),
                      table["local_batch"][sel], table["accum_steps"][sel])
        out[table["devices_per_node"][idx] == g] = t * steps_needed(target, table["global_batch"][sel], params.b_noise)
    return out


def intervals(boot: Sequence[ParamSet], space: Space, target: Target, table: dict, idx,
              target_time: float | None = None, q=(5, 95)) -> list[dict | None]:
    """Per row: the 5-95 % range of the predicted time over bootstrap parameter sets (None without
    bootstrap) and, given a time budget, the fraction of sets that meet it."""
    idx = list(idx)
    if not boot or not idx:
        return [None] * len(idx)
    times = np.stack([rows_time(p, space, target, table, idx) for p in boot])  # (sets, rows)
    lo, hi = np.percentile(times, q, axis=0)
    out = []
    for j in range(len(idx)):
        d = {"lo": float(lo[j]), "hi": float(hi[j]), "n": int(times.shape[0])}
        if target_time is not None:
            d["p_meet"] = float(np.mean(times[:, j] <= target_time))
        out.append(d)
    return out


def extrapolation(ranges: dict, table: dict, i: int) -> list[str]:
    """Which of the row's values lie outside the fitting data's ranges."""
    notes = []
    for key, col in (("num_nodes", "num_nodes"), ("num_replicas", "num_replicas"), ("local_batch", "local_batch")):
        r = ranges.get(key) if ranges else None
        if not r or len(r) != 2:
            continue
        v, (lo, hi) = float(table[col][i]), (float(r[0]), float(r[1]))
        if v < lo or v > hi:
            notes.append(f"{key} {v:g} outside measured {lo:g}-{hi:g}")
    return notes


def row(table: dict, i: int) -> dict:
    out = {}
    for k in COLUMNS:
        v = table[k][i]
        out[k] = int(v) if np.issubdtype(np.asarray(v).dtype, np.integer) else float(v)
    return out


def coarse_grid(params: ParamSet, space: Space, target: Target) -> dict:
    """Time to target on power-of-two node counts x power-of-two global batches (best devices per node
    per cell): a regular map for reports, where every cell's batch divides evenly over the devices."""
    lo, hi = min(space.global_batches), max(space.global_batches)
    batches = [2 ** k for k in range(int(math.ceil(math.log2(lo))), int(math.floor(math.log2(hi))) + 1)]
    nodes = sorted({n for n in space.num_nodes if n & (n - 1) == 0} | {max(space.num_nodes)})
    if not batches:
        return {}
    table = evaluate(params, space._replace(num_nodes=nodes, global_batches=batches), target)
    # per (num_nodes, global_batch) keep the fastest devices-per-node value
    order = np.lexsort((table["time"], table["global_batch"], table["num_nodes"]))
    keys = np.stack([table["num_nodes"][order], table["global_batch"][order]], axis=1)
    first = order[np.unique(keys, axis=0, return_index=True)[1]]
    return {k: v[first] for k, v in table.items()}


def geometric_batches(lo: int, hi: int, count: int = 64) -> np.ndarray:
    """About `count` integer global batches spaced evenly in log between lo and hi (inclusive)."""
    if lo < 1 or hi < lo:
        raise UsageError(f"bad global batch range {lo}..{hi}")
    return np.unique(np.rint(np.geomspace(lo, hi, max(count, 2))).astype(np.int64))
