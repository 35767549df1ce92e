"""Which performance-model parameters a data set can identify (scalesim.analysis.perf_fit fits them).

Each parameter of scalesim.model.perf is fitted, pinned to its 'off' value with a note saying why, or -
when a whole link class has no data - refused with a DataError naming the parameters (or, with
partial=True, left unknown as NaN). User-fixed values (--fix) are pinned as given.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import DataError, UsageError

# name: (kind, lower, upper) - 'log' parameters are fitted as log(value), 'lin' ones as is
SPACE = {
    "alpha_c": ("log", 1e-9, 1e4), "beta_c": ("log", 1e-12, 1e3),
    "kappa": ("lin", 0.0, 4.0), "colocation": ("lin", 0.0, 3.0), "cv": ("lin", 0.0, 1.0),
    "overhead_intra": ("log", 1e-9, 1e3), "alpha_intra": ("log", 1e-12, 10.0), "inv_bw_intra": ("log", 1e-15, 1e3),
    "overhead_inter": ("log", 1e-9, 1e3), "alpha_inter": ("log", 1e-12, 10.0), "inv_bw_inter": ("log", 1e-15, 1e3),
    "pair_sharing": ("lin", 0.0, 1.0), "jitter": ("lin", 0.0, 1.0), "gamma": ("lin", 1.0, 10.0),
}
DEFAULTS = {"kappa": 1.0, "colocation": 0.0, "cv": 0.0, "overhead_intra": 0.0, "alpha_intra": 0.0,
            "overhead_inter": 0.0, "alpha_inter": 0.0, "pair_sharing": 0.0, "jitter": 0.0, "gamma": 1.0}
# user-facing names (model file fields) that map onto fitted ones
ALIASES = {"bw_intra": "inv_bw_intra", "bw_inter": "inv_bw_inter"}
INTRA = ("overhead_intra", "alpha_intra", "inv_bw_intra")
INTER = ("overhead_inter", "alpha_inter", "inv_bw_inter")


class Plan(NamedTuple):
    free: list            # fitted parameter names
    fixed: dict           # name -> value
    notes: list           # why something is pinned
    unidentified: list    # model-file names left unknown (NaN) with partial=True


def plan(steps, bench, fixed: dict | None = None, partial: bool = False) -> Plan:
    fixed = {ALIASES.get(k, k): (1.0 / v if k in ALIASES else v) for k, v in (fixed or {}).items()}
    unknown = [k for k in fixed if k not in SPACE]
    if unknown:
        raise UsageError(f"cannot fix {', '.join(unknown)}: not a parameter (choose from "
                         f"{', '.join(sorted(set(SPACE) - set(ALIASES.values()) | set(ALIASES)))})")
    notes, free, pinned, unidentified = [], [], dict(fixed), []

    def pin(name, why):
        if name not in pinned:
            pinned[name] = DEFAULTS[name]
            notes.append(f"{name} = {DEFAULTS[name]:g}: {why}")

    has_step = steps["step_time"].notna()
    n = steps["num_replicas"]
    compute_rows = steps[steps["compute_time"].notna() | steps["sync_time"].notna() | (has_step & (n == 1))]
    if not ({"alpha_c", "beta_c"} & set(pinned)):
        batches = np.unique((compute_rows if len(compute_rows) else steps)["local_batch"])
        if batches.size < 2:
            seen = f"all have local_batch={batches[0]:g}" if batches.size else "there are none"
            raise DataError(f"compute: alpha_c and beta_c need measurements at two or more local batch sizes "
                            f"({seen}); measure another batch size or fix one, e.g. --fix alpha_c=0")
    load = steps["replicas_per_node"] * steps["threads_per_rank"] / steps["cores_per_host"]
    if not (load > 1).any():
        pin("kappa", "no configuration has more rank threads than cores on a host")
    shared_ok = steps[load <= 1]["replicas_per_node"].nunique() >= 2
    if not shared_ok:
        pin("colocation", "no two ranks-per-host counts measured without core oversubscription")

    multi = steps[(n > 1) & (has_step | steps["allreduce_time"].notna())]
    bench_n = bench if bench is not None and len(bench) else None
    if not len(multi) and bench_n is None:
        raise DataError("communication: every configuration has one replica; measure with two or more "
                        "replicas (or run the allreduce microbenchmark) to fit the allreduce model")
    for cls, names, sel in (("on one host", INTRA, lambda d: d["num_nodes"] == 1),
                            ("between hosts", INTER, lambda d: d["num_nodes"] > 1)):
        rows = multi[sel(multi)]
        brows = bench_n[sel(bench_n)] if bench_n is not None else rows.iloc[:0]
        combos = {(int(r), None) for r in rows["num_replicas"]} | \
                 {(int(r), float(s)) for r, s in zip(brows.get("num_replicas", []), brows.get("size_bytes", []))}
        if not combos:
            why = (f"no configuration with two or more replicas {cls} ("
                   + ("every configuration ran on one host" if cls != "on one host" else "none on a single host") + ")")
            if names[2] in pinned:  # a given bandwidth is enough; latency terms default to 0
                for k in names[:2]:
                    pin(k, why)
                continue
            missing = [k.replace("inv_bw", "bw") for k in names if k not in pinned]
            if not partial:
                raise DataError(f"communication {cls}: cannot fit {', '.join(missing)}: {why}; measure such "
                                f"configurations, fix them (e.g. --fix {missing[-1]}=...), or drop --strict to leave them unknown")
            for k in names:
                pinned.setdefault(k, math.nan)
            unidentified += missing
            notes.append(f"{', '.join(missing)} unknown: {why}")
            continue
        if len(combos) < 2:
            pin(names[0], f"one replica count and message size {cls}: overhead and bandwidth are not separable")
        sizes = brows["size_bytes"].nunique() if len(brows) else 0
        if not (sizes >= 2 and brows["num_replicas"].nunique() >= 2):
            pin(names[1], f"per-hop latency {cls} needs the allreduce microbenchmark at two or more sizes and "
                          "replica counts (a fixed per-step overhead is fitted instead)")
    hosts = set(multi["num_nodes"]) | (set(bench_n["num_nodes"]) if bench_n is not None else set())
    if not (2 in hosts and any(x >= 3 for x in hosts)):
        pin("pair_sharing", "needs measurements on 2 hosts and on 3 or more (assumed full-duplex host pairs)")
    counts = set(multi["num_replicas"]) | (set(bench_n["num_replicas"]) if bench_n is not None else set())
    if len(counts) < 3:
        pin("jitter", "needs three or more replica counts")
    step_counts = set(steps[has_step & (n > 1)]["num_replicas"])
    waits = steps[steps["allreduce_time"].notna() & (n > 1)]["local_batch"].nunique() >= 2
    if len(step_counts) < 3 and not waits:
        pin("cv", "needs step times at three or more replica counts, or instrumented allreduce times (which "
                  "include waiting for the slowest rank) at two or more local batch sizes")
    if not step_counts:
        pin("gamma", "no multi-replica step times to see overlap in")
    free = [k for k in SPACE if k not in pinned]
    return Plan(free, pinned, notes, unidentified)
