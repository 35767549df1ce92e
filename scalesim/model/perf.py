"""Step-time model for synchronous data-parallel SGD: compute + allreduce, with overlap.

In the spirit of AdaptDL's goodput.py, but the network term has bytes and bandwidth:
- compute  T_c(b) = (alpha_c + beta_c * b) * contention * (1 + colocation * (g - 1))
           (Pollux, Qiao et al. 2021, Sec. 3.1, linear in the local batch b)
           contention = max(1, g * threads_per_rank / cores_per_host) ** kappa models ranks sharing a
           host's cores (kappa = 0 disables it); colocation is the slow-down per extra rank on the
           busiest host g from resources that are shared even with enough cores (PCIe, memory
           bandwidth, input pipeline) - it is what the Pollux traces show for 4 GPUs per node.
- allreduce of M bytes over n ranks on h hosts (Thakur, Rabenseifner & Gropp 2005; Patarasuk &
           Yuan 2009), plus a fixed per-step overhead o (launch, negotiation, framework):
           ring          o + 2(n-1) alpha + 2(n-1)/n * M / bw * s_h
           hierarchical  o + 2(g-1) a_i + 2(g-1)/g M/bw_i + 2(h-1) a_x + 2(h-1)/h (M/g)/bw_x * s_h
           rhd           recursive halving-doubling: o + 2 log2(n) alpha + 2(n-1)/n * M / bw * s_h
           where a ring across hosts runs at the inter-host link's speed. s_h = 1 + pair_sharing when
           h = 2, else 1: a ring over two hosts sends both of its directions between the same host pair,
           so where the pair's capacity is shared by the two directions (per-pair flow limits in cloud
           networks, half-duplex paths) the bytes per pair double; pair_sharing in [0, 1] (0 = full
           duplex). Pollux's traces show this: 2-host rings are 1.4-2x slower than 3- and 4-host ones
           at the same replica count.
- stragglers: a synchronous step waits for the slowest of n ranks. With per-rank times of coefficient
           of variation cv, E[max] = T (1 + cv z_n), z_n = E[max of n standard normals] (z_2 = 1/sqrt(pi);
           Blom 1958 for large n: z_n ~ Phi^-1((n - 0.375) / (n + 0.25))). Applied to compute (ComputeParams.cv) and to the
           allreduce (CommParams.jitter: each ring step waits for its slowest link).
- overlap  T_step = (T_c^gamma + T_sync^gamma)^(1/gamma), gamma >= 1 (Pollux's power mean:
           gamma = 1 no overlap, gamma -> inf perfect overlap).

Every function accepts numpy arrays: a Placement whose fields are arrays describes many placements at
once (that is how the fitter evaluates a whole trace in one call).
"""
from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np

ALGORITHMS = ("ring", "hierarchical", "rhd")


class ComputeParams(NamedTuple):
    alpha_c: float          # s per step, independent of batch
    beta_c: float           # s per sample per rank, uncontended
    kappa: float = 1.0      # contention exponent (1 = time-slicing shared cores)
    colocation: float = 0.0  # fractional slow-down per extra rank on the busiest host
    cv: float = 0.0         # coefficient of variation of per-rank compute time (stragglers)


class CommParams(NamedTuple):
    alpha_intra: float      # s latency per ring step between ranks on one host
    bw_intra: float         # bytes/s between ranks on one host
    alpha_inter: float      # s latency per ring step between hosts
    bw_inter: float         # bytes/s between hosts
    grad_bytes: float       # bytes allreduced per optimizer step (float32 gradients: 4 * params);
                            # 1.0 with bw_* in gradients/s when the size is unknown (external traces)
    algorithm: str = "ring"
    overhead_intra: float = 0.0  # s per allreduce on one host, independent of size and ranks
    overhead_inter: float = 0.0  # s per allreduce across hosts
    pair_sharing: float = 0.0    # 0..1: extra load of a 2-host ring on its single host pair
    jitter: float = 0.0          # coefficient of variation of per-link time (the ring waits for the slowest)


class Param(NamedTuple):
    """One of the 14 fitted performance parameters: the single place that names, bounds and explains it.
    `scale` is how the fitter moves it: 'log' (positive, spans decades), 'lin', or 'inv' (a bandwidth,
    fitted as log(1 / value) so that time is linear in the fitted quantity)."""
    name: str           # field of ComputeParams / CommParams, or 'gamma' (PerfParams)
    group: str          # 'compute' | 'comm' | 'overlap'
    unit: str           # of the value in a model file
    meaning: str
    lo: float           # bounds of the value
    hi: float
    default: float | None  # the 'off' value it is pinned to when the data cannot identify it (None: always fitted)
    scale: str
    start: tuple        # the fit's data-driven start, in the fitted coordinate: base / divisor / per, with
                        # base a number or 's' (median step time), per '' | 'b' (median local batch) |
                        # 'M' (gradient bytes)

    @property
    def fit_name(self) -> str:
        """Name of the fitted coordinate (bandwidths are fitted as inverse bandwidths)."""
        return "inv_" + self.name if self.scale == "inv" else self.name


# In the fitter's order (the order of the optimiser's vector and of its random starts).
PARAMS = (
    Param("alpha_c", "compute", "s", "compute time per step independent of the batch", 1e-9, 1e4, None, "log", ("s", 2, "")),
    Param("beta_c", "compute", "s", "compute time per sample on one uncontended rank", 1e-12, 1e3, None, "log", ("s", 2, "b")),
    Param("kappa", "compute", "", "contention exponent when rank threads exceed a host's cores (1 = time slicing)",
          0.0, 4.0, 1.0, "lin", (1.0, 1, "")),
    Param("colocation", "compute", "", "slow-down per extra rank on a host, with enough cores", 0.0, 3.0, 0.0, "lin",
          (0.05, 1, "")),
    Param("cv", "compute", "", "coefficient of variation of per-rank compute time (stragglers)", 0.0, 1.0, 0.0, "lin",
          (0.05, 1, "")),
    Param("overhead_intra", "comm", "s", "fixed cost of one allreduce on one host", 1e-9, 1e3, 0.0, "log", ("s", 10, "")),
    Param("alpha_intra", "comm", "s", "latency per ring step between ranks of one host", 1e-12, 10.0, 0.0, "log",
          ("s", 1000, "")),
    Param("bw_intra", "comm", "B/s", "bandwidth between ranks of one host", 1e-3, 1e15, None, "inv", ("s", 5, "M")),
    Param("overhead_inter", "comm", "s", "fixed cost of one allreduce across hosts", 1e-9, 1e3, 0.0, "log", ("s", 10, "")),
    Param("alpha_inter", "comm", "s", "latency per ring step between hosts", 1e-12, 10.0, 0.0, "log", ("s", 1000, "")),
    Param("bw_inter", "comm", "B/s", "bandwidth of the link between hosts", 1e-3, 1e15, None, "inv", ("s", 2, "M")),
    Param("pair_sharing", "comm", "", "extra load of a 2-host ring on its one host pair (0 = full duplex)",
          0.0, 1.0, 0.0, "lin", (0.3, 1, "")),
    Param("jitter", "comm", "", "coefficient of variation of per-link time (a ring waits for its slowest link)",
          0.0, 1.0, 0.0, "lin", (0.1, 1, "")),
    Param("gamma", "overlap", "", "compute/communication overlap: 1 = none, larger = more", 1.0, 10.0, 1.0, "lin",
          (2.0, 1, "")),
)
PARAM = {p.name: p for p in PARAMS}


class Placement(NamedTuple):
    num_nodes: int                  # hosts
    replicas_per_node: int          # ranks (devices) per host; the busiest host's count when uneven
    cores_per_host: float = math.inf
    threads_per_rank: float = 1.0
    replicas: int | None = None     # total ranks when hosts hold different numbers (e.g. "1344" -> 12)

    @property
    def num_replicas(self):
        return self.num_nodes * self.replicas_per_node if self.replicas is None else self.replicas

    @classmethod
    def from_counts(cls, counts, cores_per_host: float = math.inf, threads_per_rank: float = 1.0) -> "Placement":
        """Ranks per host, e.g. (1, 3, 4, 4) for Pollux's placement "1344"."""
        counts = [int(c) for c in counts if int(c) > 0]
        return cls(len(counts), max(counts), cores_per_host, threads_per_rank, sum(counts))


class PerfParams(NamedTuple):
    compute: ComputeParams
    comm: CommParams
    gamma: float = 1.0


def _blom(n):
    from scipy.special import ndtri  # not at import: ~0.15 s, and `scalesim --help` imports this module

    return ndtri((n - 0.375) / (n + 0.25))


def _exact_max_normal(n_max: int):
    """E[max of n standard normals] = int x n phi(x) Phi(x)^(n-1) dx, n = 0..n_max (0 for n <= 1)."""
    from scipy.special import log_ndtr

    x = np.linspace(-9.0, 12.0, 4001)
    dens = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    n = np.arange(1, n_max + 1, dtype=float)[:, None]
    z = (x * n * dens * np.exp((n - 1) * log_ndtr(x))).sum(axis=1) * (x[1] - x[0])
    return np.concatenate([[0.0, 0.0], z[1:]])


_Z_EXACT = 64


@cache
def _z_table():
    """E[max of n standard normals] for n = 0..4096, built on first use."""
    return np.concatenate([_exact_max_normal(_Z_EXACT), _blom(np.arange(_Z_EXACT + 1, 4097, dtype=float))])


def expected_max_normal(n):
    """E[max of n iid standard normals]: exact (numerical integral) for n <= 64, Blom's approximation
    Phi^-1((n - 0.375) / (n + 0.25)) beyond (within 0.5 % there); 0 for n <= 1. Table lookup for whole n,
    because the fitter calls this thousands of times."""
    n = np.maximum(np.asarray(n, float), 1.0)
    if n.size and n.max() <= 4096:
        k = n.astype(np.int64)
        if np.array_equal(k, n):
            return _z_table()[k]
    small = n <= _Z_EXACT
    z = _blom(n)
    if np.any(small):  # fractional n below the table's exact range: interpolate it
        z = np.where(small, np.interp(n, np.arange(_Z_EXACT + 1), _z_table()[:_Z_EXACT + 1]), z)
    return z


def straggler_factor(cv: float, num_replicas):
    return 1.0 + cv * expected_max_normal(num_replicas)


def contention(p: Placement, kappa: float):
    load = np.asarray(p.replicas_per_node, float) * p.threads_per_rank / p.cores_per_host
    return np.maximum(1.0, load) ** kappa


def compute_time(c: ComputeParams, local_batch, placement: Placement | None = None):
    """Mean per-rank forward+backward time for a local batch (no straggler term)."""
    t = c.alpha_c + c.beta_c * np.asarray(local_batch, dtype=float)
    if placement is None:
        return t
    shared = 1.0 + c.colocation * (np.asarray(placement.replicas_per_node, float) - 1.0)
    return t * contention(placement, c.kappa) * shared


def _pair_factor(m: CommParams, num_nodes):
    return 1.0 + m.pair_sharing * (np.asarray(num_nodes) == 2)


def _ring(k, alpha, message_bytes, bw, share=1.0):
    """Ring allreduce over k participants: 2(k-1) latency steps and 2(k-1)/k of the message per link
    (0 for one participant, whatever its alpha and bw)."""
    t = 2 * (k - 1) * alpha + 2 * (k - 1) / k * message_bytes / bw * share
    return np.where(np.asarray(k) > 1, t, np.zeros_like(t))


def allreduce_time(m: CommParams, message_bytes, num_nodes: int, replicas_per_node: int, num_replicas=None):
    """Seconds to allreduce `message_bytes` over num_nodes hosts with replicas_per_node ranks each
    (num_replicas: total ranks when hosts are uneven; replicas_per_node is then the busiest host's)."""
    M = np.asarray(message_bytes, dtype=float)
    h = np.asarray(num_nodes)
    g = np.asarray(replicas_per_node)
    n = np.asarray(h * g if num_replicas is None else num_replicas, dtype=float)
    if m.algorithm not in ALGORITHMS:
        raise ValueError(f"unknown allreduce algorithm {m.algorithm!r}; choose one of {ALGORITHMS}")
    multi = h > 1
    alpha = np.where(multi, m.alpha_inter, m.alpha_intra)
    bw = np.where(multi, m.bw_inter, m.bw_intra)
    over = np.where(multi, m.overhead_inter, m.overhead_intra)
    nn = np.maximum(n, 1.0)
    volume = 2 * (nn - 1) / nn * M / bw * _pair_factor(m, h)
    if m.algorithm == "rhd":
        t = over + 2 * np.log2(nn) * alpha + volume
    else:
        t = over + 2 * (nn - 1) * alpha + volume
    if m.algorithm == "hierarchical":  # a ring inside each host, then g rings of M/g bytes across hosts
        gf, hf = np.maximum(g, 1.0), np.maximum(h, 1.0)
        intra = _ring(gf, m.alpha_intra, M, m.bw_intra)
        inter = _ring(hf, m.alpha_inter, M / gf, m.bw_inter, _pair_factor(m, h))
        t = np.where(multi, m.overhead_inter + intra + inter, t)
    t = t * straggler_factor(m.jitter, nn)
    # One rank reduces nothing: exactly 0, even where the parameters it never uses are unknown (NaN).
    return np.where(n > 1, t, np.zeros_like(t))


def sync_time(m: CommParams, placement: Placement):
    return allreduce_time(m, m.grad_bytes, placement.num_nodes, placement.replicas_per_node,
                          placement.num_replicas)


def measured_allreduce_time(p: PerfParams, placement: Placement, local_batch):
    """The allreduce as timed around the collective inside a step (mean over ranks): the transfer plus
    waiting for the slowest rank's compute, E[max] - mean = cv z_n T_c. A microbenchmark of the bare
    collective has no such wait (use allreduce_time)."""
    tc = compute_time(p.compute, local_batch, placement)
    wait = tc * p.compute.cv * expected_max_normal(placement.num_replicas)
    return sync_time(p.comm, placement) + wait


def overlap(t_compute, t_sync, gamma: float):
    """Pollux's power mean: (T_c^g + T_s^g)^(1/g)."""
    tc, ts = np.asarray(t_compute, float), np.asarray(t_sync, float)
    return (tc ** gamma + ts ** gamma) ** (1.0 / gamma)


def step_time(p: PerfParams, placement: Placement, local_batch, accum_steps: int = 1):
    """Seconds per optimizer step; with gradient accumulation, accum_steps micro-batches of
    local_batch are computed before one allreduce (only the last one overlaps with it)."""
    tc = compute_time(p.compute, local_batch, placement)
    slowest = tc * straggler_factor(p.compute.cv, placement.num_replicas)
    ts = sync_time(p.comm, placement)
    return (np.asarray(accum_steps) - 1) * tc + overlap(slowest, ts, p.gamma)


def throughput(p: PerfParams, placement: Placement, local_batch, accum_steps: int = 1):
    """Samples per second for the whole job."""
    global_batch = placement.num_replicas * np.asarray(local_batch, float) * accum_steps
    return global_batch / step_time(p, placement, local_batch, accum_steps)
