"""Which performance-model parameters a data set can identify (scalesim.fit.perf fits them).

Each parameter of scalesim.model.perf is fitted, pinned to its 'off' value with a note saying why, or -
when a whole link class has no data - refused with a DataError naming the parameters (or, with
partial=True, left unknown as NaN). User-fixed values (--fix) are pinned as given.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import DataError, UsageError
from ..model.perf import PARAMS

# Derived from the one parameter table (scalesim.model.perf.PARAMS), keyed by the fitted coordinate:
# name: (kind, lower, upper) - 'log' parameters are fitted as log(value), 'lin' ones as is; a bandwidth
# is fitted as its inverse (inv_bw_*, in log space).
SPACE = {p.fit_name: ("lin", p.lo, p.hi) if p.scale == "lin" else
         ("log", 1.0 / p.hi, 1.0 / p.lo) if p.scale == "inv" else ("log", p.lo, p.hi) for p in PARAMS}
DEFAULTS = {p.fit_name: p.default for p in PARAMS if p.default is not None}
# user-facing names (model file fields) that map onto fitted ones
ALIASES = {p.name: p.fit_name for p in PARAMS if p.fit_name != p.name}
INTRA = ("overhead_intra", "alpha_intra", "inv_bw_intra")
INTER = ("overhead_inter", "alpha_inter", "inv_bw_inter")


class Plan(NamedTuple):
    free: list            # fitted parameter names
    fixed: dict           # name -> value
    notes: list           # why something is pinned
    unidentified: list    # model-file names left unknown (NaN) with partial=True


class _Pins:
    """The decisions so far: pinned values, why, and what is left unknown."""

    def __init__(self, fixed: dict):
        self.pinned, self.notes, self.unidentified = dict(fixed), [], []

    def pin(self, name, why):
        if name not in self.pinned:
            self.pinned[name] = DEFAULTS[name]
            self.notes.append(f"{name} = {DEFAULTS[name]:g}: {why}")


def _user_fixed(fixed: dict | None) -> dict:
    # A bandwidth and the overlap exponent divide the model: 0 would write a model file nobody can load.
    zero = [k for k, v in (fixed or {}).items() if v <= 0 and (k in ALIASES or k == "gamma")]
    if zero:
        raise UsageError(f"--fix {zero[0]} must be positive (a bandwidth or gamma of 0 has no meaning)")
    fixed = {ALIASES.get(k, k): (1.0 / v if k in ALIASES else v) for k, v in (fixed or {}).items()}
    unknown = [k for k in fixed if k not in SPACE]
    if unknown:
        raise UsageError(f"cannot fix {', '.join(unknown)}: not a parameter (choose from "
                         f"{', '.join(sorted(set(SPACE) - set(ALIASES.values()) | set(ALIASES)))})")
    return fixed


def _compute(steps, pins: _Pins) -> None:
    has_step, n = steps["step_time"].notna(), steps["num_replicas"]
    compute_rows = steps[steps["compute_time"].notna() | steps["sync_time"].notna() | (has_step & (n == 1))]
    if not ({"alpha_c", "beta_c"} & set(pins.pinned)):
        batches = np.unique((compute_rows if len(compute_rows) else steps)["local_batch"])
        if batches.size < 2:
            seen = f"all have local_batch={batches[0]:g}" if batches.size else "there are none"
            raise DataError(f"compute: alpha_c and beta_c need measurements at two or more local batch sizes "
                            f"({seen}); measure another batch size or fix one, e.g. --fix alpha_c=0")
    load = steps["replicas_per_node"] * steps["threads_per_rank"] / steps["cores_per_host"]
    if not (load > 1).any():
        pins.pin("kappa", "no configuration has more rank threads than cores on a host")
    elif np.unique(np.round(np.maximum(1.0, load.to_numpy(float)), 6)).size < 2:
        # e.g. emulated nodes of 0.25 core, one rank each: the contention factor is one constant, so
        # kappa and beta_c are not separable; kappa = 1 (time slicing) is what a CPU quota does.
        pins.pin("kappa", "every configuration has the same core load (rank threads per core of a host)")
    if steps[load <= 1]["replicas_per_node"].nunique() < 2:
        pins.pin("colocation", "no two ranks-per-host counts measured without core oversubscription")


def _link_class(cls, names, rows, brows, pins: _Pins, partial: bool) -> None:
    """One link class (on one host, or between hosts): fit, pin or leave unknown its three terms."""
    combos = {(int(r), None) for r in rows["num_replicas"]} | \
             {(int(r), float(s)) for r, s in zip(brows.get("num_replicas", []), brows.get("size_bytes", []))}
    if not combos:
        why = (f"no configuration with two or more replicas {cls} ("
               + ("every configuration ran on one host" if cls != "on one host" else "none on a single host") + ")")
        if names[2] in pins.pinned:  # a given bandwidth is enough; latency terms default to 0
            for k in names[:2]:
                pins.pin(k, why)
            return
        missing = [k.replace("inv_bw", "bw") for k in names if k not in pins.pinned]
        if not partial:
            raise DataError(f"communication {cls}: cannot fit {', '.join(missing)}: {why}; measure such "
                            f"configurations, fix them (e.g. --fix {missing[-1]}=...), or drop --strict to leave them unknown")
        for k in names:
            pins.pinned.setdefault(k, math.nan)
        pins.unidentified += missing
        pins.notes.append(f"{', '.join(missing)} unknown: {why}")
        return
    if len(combos) < 2:
        pins.pin(names[0], f"one replica count and message size {cls}: overhead and bandwidth are not separable")
    sizes = brows["size_bytes"].nunique() if len(brows) else 0
    if not (sizes >= 2 and brows["num_replicas"].nunique() >= 2):
        pins.pin(names[1], f"per-hop latency {cls} needs the allreduce microbenchmark at two or more sizes and "
                           "replica counts (a fixed per-step overhead is fitted instead)")


def _shape(steps, multi, bench_n, pins: _Pins) -> None:
    """Terms that need several host or replica counts: pair sharing, jitter, stragglers, overlap."""
    has_step, n = steps["step_time"].notna(), steps["num_replicas"]
    hosts = set(multi["num_nodes"]) | (set(bench_n["num_nodes"]) if bench_n is not None else set())
    if not (2 in hosts and any(x >= 3 for x in hosts)):
        pins.pin("pair_sharing", "needs measurements on 2 hosts and on 3 or more (assumed full-duplex host pairs)")
    counts = set(multi["num_replicas"]) | (set(bench_n["num_replicas"]) if bench_n is not None else set())
    if len(counts) < 3:
        pins.pin("jitter", "needs three or more replica counts")
    step_counts = set(steps[has_step & (n > 1)]["num_replicas"])
    waits = steps[steps["allreduce_time"].notna() & (n > 1)]["local_batch"].nunique() >= 2
    if len(step_counts) < 3 and not waits:
        pins.pin("cv", "needs step times at three or more replica counts, or instrumented allreduce times (which "
                       "include waiting for the slowest rank) at two or more local batch sizes")
    if not step_counts:
        pins.pin("gamma", "no multi-replica step times to see overlap in")


def plan(steps, bench, fixed: dict | None = None, partial: bool = False) -> Plan:
    pins = _Pins(_user_fixed(fixed))
    _compute(steps, pins)
    n = steps["num_replicas"]
    multi = steps[(n > 1) & (steps["step_time"].notna() | steps["allreduce_time"].notna())]
    bench_n = bench if bench is not None and len(bench) else None
    if not len(multi) and bench_n is None:
        raise DataError("communication: every configuration has one replica; measure with two or more "
                        "replicas (or run the allreduce microbenchmark) to fit the allreduce model")
    for cls, names, sel in (("on one host", INTRA, lambda d: d["num_nodes"] == 1),
                            ("between hosts", INTER, lambda d: d["num_nodes"] > 1)):
        rows = multi[sel(multi)]
        brows = bench_n[sel(bench_n)] if bench_n is not None else rows.iloc[:0]
        _link_class(cls, names, rows, brows, pins, partial)
    _shape(steps, multi, bench_n, pins)
    free = [k for k in SPACE if k not in pins.pinned]
    return Plan(free, pins.pinned, pins.notes, pins.unidentified)
