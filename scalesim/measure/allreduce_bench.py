"""Allreduce microbenchmark, run inside every Horovod rank of a campaign launch.

Definitions follow nccl-tests (doc/PERFORMANCE.md):
    algbw = S / t                    S = message size in bytes, t = time of one allreduce
    busbw = algbw * 2(n-1)/n         the per-link traffic of a ring allreduce, so busbw is
                                     comparable across rank counts and to a link's bandwidth
`t` is each rank's mean over timed iterations, then averaged over ranks (nccl-tests' default
`-a 1`). With one rank busbw is 0 by definition; the time still shows Horovod's fixed cost.
"""
from __future__ import annotations

import time

KB, MB = 1 << 10, 1 << 20  # KiB, MiB: message sizes are powers of two, as in nccl-tests
DEFAULT_MIN = 4 * KB
# 256 MB (the nccl-tests-style ceiling) takes minutes per size when 8 ranks share 2 cores over
# loopback, so the default stops at 64 MB; --ar-max 256MiB restores the full range.
DEFAULT_MAX = 64 * MB
DEFAULT_FACTOR = 4
FLOAT_BYTES = 4


def algbw(size_bytes, time_s):
    return size_bytes / time_s


def busbw(size_bytes, time_s, num_replicas: int):
    return algbw(size_bytes, time_s) * 2.0 * (num_replicas - 1) / num_replicas


def geometric_sizes(lo: int = DEFAULT_MIN, hi: int = DEFAULT_MAX, factor: int = DEFAULT_FACTOR) -> list[int]:
    """lo, lo*factor, ... up to hi (hi itself included), rounded to whole float32 elements."""
    if lo < FLOAT_BYTES or hi < lo or factor < 2:
        raise ValueError("need 4 <= lo <= hi and factor >= 2")
    sizes, s = [], lo
    while s < hi:
        sizes.append(s)
        s *= factor
    sizes.append(hi)
    return sorted({FLOAT_BYTES * max(1, x // FLOAT_BYTES) for x in sizes})


def _iters_for(size_bytes: int, budget_s: float, est_bw: float, lo: int, hi: int) -> int:
    # Aim each size at ~budget_s of timed work using the bandwidth seen on the previous size.
    return int(min(hi, max(lo, budget_s / max(size_bytes / est_bw, 1e-6))))


def run(sizes: list[int], budget_s: float = 0.5, min_iters: int = 3, max_iters: int = 50,
        warmup: int = 1) -> list[dict]:
    """Time hvd.allreduce for each size on all ranks; rows for the `allreduce` table (every
    rank returns them, identical). Call from inside an initialised Horovod job."""
    import horovod.tensorflow as hvd
    import tensorflow as tf

    n = hvd.size()
    rows, est_bw = [], 1e8
    for size in sizes:
        x = tf.ones([size // FLOAT_BYTES], tf.float32)
        # All ranks must agree on the iteration count, so rank 0's estimate is broadcast.
        iters = _iters_for(size, budget_s, est_bw, min_iters, max_iters)
        iters = int(hvd.broadcast(tf.constant(iters), root_rank=0, name=f"ar_iters_{size}"))
        for _ in range(warmup):
            hvd.allreduce(x, op=hvd.Sum, name=f"ar_bench_{size}").numpy()
        hvd.allreduce(tf.zeros([1]), op=hvd.Sum, name="ar_barrier").numpy()
        t0 = time.perf_counter()
        for _ in range(iters):
            y = hvd.allreduce(x, op=hvd.Sum, name=f"ar_bench_{size}")
        y.numpy()
        per_rank = (time.perf_counter() - t0) / iters
        t = float(hvd.allreduce(tf.constant([per_rank], tf.float64), op=hvd.Average, name="ar_time")[0])
        est_bw = max(size / t, 1e3)
        rows.append({"num_replicas": n, "size_bytes": int(size), "iters": iters, "time": t,
                     "algbw": algbw(size, t), "busbw": busbw(size, t, n)})
        del x, y
    return rows
