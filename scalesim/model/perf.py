"""Step-time model for synchronous data-parallel SGD: compute + allreduce, with overlap.

In the spirit of AdaptDL's goodput.py, but the network term has bytes and bandwidth:
- compute  T_c(b) = (alpha_c + beta_c * b) * contention            (Pollux, Qiao et al. 2021, Sec. 3.1,
           contention = max(1, ranks_per_host * threads_per_rank / cores_per_host) ** kappa
           models ranks sharing a host's cores; kappa = 0 disables it)
- allreduce of M bytes over n ranks (Thakur, Rabenseifner & Gropp 2005; Patarasuk & Yuan 2009):
           ring          2(n-1) alpha + 2(n-1)/n * M / bw
           hierarchical  intra reduce-scatter + inter ring on M/g + intra all-gather
                         = 2(g-1) a_i + 2(g-1)/g M/bw_i + 2(h-1) a_x + 2(h-1)/h (M/g)/bw_x
           rhd           recursive halving-doubling: 2 log2(n) alpha + 2(n-1)/n * M / bw
           where a ring across hosts is bounded by the slowest (inter-host) link.
- overlap  T_step = (T_c^gamma + T_sync^gamma)^(1/gamma), gamma >= 1 (Pollux's power mean:
           gamma = 1 no overlap, gamma -> inf perfect overlap).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

ALGORITHMS = ("ring", "hierarchical", "rhd")


class ComputeParams(NamedTuple):
    alpha_c: float          # s per step, independent of batch
    beta_c: float           # s per sample per rank, uncontended
    kappa: float = 1.0      # contention exponent (1 = time-slicing shared cores)


class CommParams(NamedTuple):
    alpha_intra: float      # s latency per ring step between ranks on one host
    bw_intra: float         # bytes/s between ranks on one host
    alpha_inter: float      # s latency per ring step between hosts
    bw_inter: float         # bytes/s between hosts
    grad_bytes: float       # bytes allreduced per optimizer step (float32 gradients: 4 * params)
    algorithm: str = "ring"


class Placement(NamedTuple):
    num_nodes: int                  # hosts
    replicas_per_node: int          # ranks (devices) per host
    cores_per_host: float = math.inf
    threads_per_rank: float = 1.0

    @property
    def num_replicas(self) -> int:
        return self.num_nodes * self.replicas_per_node


class PerfParams(NamedTuple):
    compute: ComputeParams
    comm: CommParams
    gamma: float = 1.0


def contention(p: Placement, kappa: float) -> float:
    load = p.replicas_per_node * p.threads_per_rank / p.cores_per_host
    return max(1.0, load) ** kappa


def compute_time(c: ComputeParams, local_batch, placement: Placement | None = None):
    t = c.alpha_c + c.beta_c * np.asarray(local_batch, dtype=float)
    return t * (contention(placement, c.kappa) if placement is not None else 1.0)


def allreduce_time(m: CommParams, message_bytes, num_nodes: int, replicas_per_node: int):
    """Seconds to allreduce `message_bytes` over num_nodes x replicas_per_node ranks."""
    M = np.asarray(message_bytes, dtype=float)
    n = num_nodes * replicas_per_node
    if n <= 1:
        return np.zeros_like(M)
    multi = num_nodes > 1
    alpha, bw = (m.alpha_inter, m.bw_inter) if multi else (m.alpha_intra, m.bw_intra)
    if m.algorithm == "ring" or (m.algorithm == "hierarchical" and not multi):
        return 2 * (n - 1) * alpha + 2 * (n - 1) / n * M / bw
    if m.algorithm == "rhd":
        return 2 * math.log2(n) * alpha + 2 * (n - 1) / n * M / bw
    if m.algorithm == "hierarchical":
        g, h = replicas_per_node, num_nodes
        intra = 2 * (g - 1) * m.alpha_intra + 2 * (g - 1) / g * M / m.bw_intra
        inter = 2 * (h - 1) * m.alpha_inter + 2 * (h - 1) / h * (M / g) / m.bw_inter
        return intra + inter
    raise ValueError(f"unknown allreduce algorithm {m.algorithm!r}; choose one of {ALGORITHMS}")


def sync_time(m: CommParams, placement: Placement):
    return allreduce_time(m, m.grad_bytes, placement.num_nodes, placement.replicas_per_node)


def overlap(t_compute, t_sync, gamma: float):
    """Pollux's power mean: (T_c^g + T_s^g)^(1/g)."""
    tc, ts = np.asarray(t_compute, float), np.asarray(t_sync, float)
    return (tc ** gamma + ts ** gamma) ** (1.0 / gamma)


def step_time(p: PerfParams, placement: Placement, local_batch, accum_steps: int = 1):
    """Seconds per optimizer step; with gradient accumulation, accum_steps micro-batches of
    local_batch are computed before one allreduce (only the last one overlaps with it)."""
    tc = compute_time(p.compute, local_batch, placement)
    ts = sync_time(p.comm, placement)
    return (accum_steps - 1) * tc + overlap(tc, ts, p.gamma)


def throughput(p: PerfParams, placement: Placement, local_batch, accum_steps: int = 1):
    """Samples per second for the whole job."""
    global_batch = placement.num_replicas * np.asarray(local_batch, float) * accum_steps
    return global_batch / step_time(p, placement, local_batch, accum_steps)
