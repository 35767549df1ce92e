"""How long `predict` takes over 1..1024 nodes x 64 global batch sizes (goal: under 1 s).

    .venv/bin/python benchmarks/bench_predict.py

Measures, in one run and on the same grid: the full plan (search, choice, frontier, bootstrap intervals
over 200 parameter sets, as `scalesim predict` does) and, for comparison, a plain Python loop that calls
the scalar step-time model once per configuration. Prints both times and their ratio."""
from __future__ import annotations

import math
import time

import numpy as np

from scalesim.plan import recommend, search
from scalesim.model.perf import CommParams, ComputeParams, PerfParams, Placement, step_time
from scalesim.model.stateff import steps_to_target

PERF = PerfParams(ComputeParams(0.02, 0.004, 1.0), CommParams(5e-5, 2e9, 2e-4, 1.25e8, 4 * 1.1e6, "ring"), 1.5)
B_NOISE, S_MIN = 400.0, 3000.0
LR = {"ref_lr": 0.1, "ref_batch": 256, "warmup_epochs": 5.0}


def bootstrap(n: int = 200):
    rng = np.random.default_rng(0)
    return [search.ParamSet(PERF._replace(compute=PERF.compute._replace(beta_c=PERF.compute.beta_c * f)),
                            B_NOISE * g) for f, g in zip(rng.lognormal(0, 0.05, n), rng.lognormal(0, 0.1, n))]


def vectorised(space, target, boot):
    return recommend.plan(search.ParamSet(PERF, B_NOISE), space, target, target_time=3600.0, boot=boot, lr=LR)


def scalar_loop(space, target_time=3600.0):
    best = (math.inf, None)
    cheapest = (math.inf, None)
    for g in space.devices_per_node:
        for nodes in space.num_nodes:
            n = nodes * g
            placement = Placement(nodes, g, space.cores_per_host, space.threads_per_rank)
            for B in space.global_batches:
                if B < n:
                    continue
                b = min(max(1, round(B / n)), int(space.global_batches[-1]) // n)  # same cap as the search
                t = float(step_time(PERF, placement, b)) * float(steps_to_target(n * b, S_MIN, B_NOISE))
                best = min(best, (t, (nodes, g, n * b)))
                if t <= target_time:
                    cheapest = min(cheapest, (n * t, (nodes, g, n * b)))
    return best, cheapest


def main() -> None:
    space = search.Space(list(range(1, 1025)), [1], search.geometric_batches(16, 65536, 64), (), None)
    assert len(space.global_batches) == 64
    target = search.Target("stateff", S_MIN, 256, "bench")
    boot = bootstrap()
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        p = vectorised(space, target, boot)
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    (t_fast, cfg_fast), _ = scalar_loop(space)
    t_loop = time.perf_counter() - t0
    t_vec = min(runs)
    print(f"grid: 1..1024 nodes x {len(space.global_batches)} global batches -> {p['searched']:,} configurations "
          f"(batches below the device count skipped); {len(boot)} bootstrap sets for intervals")
    print(f"predict (vectorised search + intervals): {t_vec:.3f} s (best of 3; runs {', '.join(f'{r:.3f}' for r in runs)})"
          f"  goal < 1 s: {'met' if t_vec < 1 else 'NOT met'}")
    print(f"scalar loop, one step_time call per configuration, no intervals: {t_loop:.3f} s")
    print(f"ratio loop / vectorised: {t_loop / t_vec:.1f}x")
    f = p["fastest"]
    agree = (f["num_nodes"], f["devices_per_node"], f["global_batch"]) == cfg_fast
    print(f"fastest configuration agrees between the two: {agree} "
          f"({cfg_fast[0]} nodes, batch {cfg_fast[2]}, {t_fast:.1f} s)")
    print("note: measured on a shared 2-core machine; other jobs may have been running")


if __name__ == "__main__":
    main()
