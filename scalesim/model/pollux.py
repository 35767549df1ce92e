"""The Pollux/AdaptDL throughput model, re-implemented as a baseline (Qiao et al., OSDI 2021, Sec. 3.1;
petuum/adaptdl adaptdl/goodput.py, read for the form, not copied).

    T_grad = alpha_c + beta_c * b
    T_sync = 0                                  if n == 1
             alpha_r + beta_r * max(n - 2, 0)   if all replicas on one node
             alpha_n + beta_n * max(n - 2, 0)   if more than one node
    T_step = (T_grad^gamma + T_sync^gamma)^(1/gamma),  1 <= gamma <= 10

No bytes or bandwidth: the network term is a per-count constant plus a linear "retrogression".
Fitted like AdaptDL: RMSE of log step time + RMSE of log compute time, a small pull of gamma towards 1
and of beta/alpha towards 0, all parameters >= 1e-8; parameters the data cannot inform are pinned
(no multi-node rows -> alpha_n, beta_n; no single-node multi-replica rows -> alpha_r, beta_r; no
n > 2 -> both betas; one local batch -> alpha_c = mean compute / 2).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

FLOOR = 1e-8


class PolluxParams(NamedTuple):
    alpha_c: float
    beta_c: float
    alpha_n: float
    beta_n: float
    alpha_r: float
    beta_r: float
    gamma: float


def compute_time(p: PolluxParams, local_batch):
    return p.alpha_c + p.beta_c * np.asarray(local_batch, float)


def network_time(p: PolluxParams, num_nodes, num_replicas):
    nodes, n = np.asarray(num_nodes), np.asarray(num_replicas, float)
    retro = np.maximum(n - 2, FLOOR)
    inter = p.alpha_n + p.beta_n * retro
    intra = p.alpha_r + p.beta_r * retro
    return np.select([nodes > 1, n > 1], [inter, intra], FLOOR)


def step_time(p: PolluxParams, num_nodes, num_replicas, local_batch):
    tc, tn = compute_time(p, local_batch), network_time(p, num_nodes, num_replicas)
    return (tc ** p.gamma + tn ** p.gamma) ** (1.0 / p.gamma)


def _objective(x, nodes, reps, bsz, step, compute):
    p = PolluxParams(*x)
    err_step = np.sqrt(np.mean((np.log(step_time(p, nodes, reps, bsz)) - np.log(step)) ** 2))
    err_comp = np.sqrt(np.mean((np.log(compute_time(p, bsz)) - np.log(compute)) ** 2))
    reg = 1e-3 * (p.gamma - 1) ** 2 + 1e-2 * ((p.beta_n / p.alpha_n) ** 2 + (p.beta_r / p.alpha_r) ** 2)
    return err_step + err_comp + reg


def fit(num_nodes, num_replicas, local_batch, step, compute) -> PolluxParams:
    """Fit to measured step times and compute times (for AdaptDL traces: step_time - sync_time)."""
    from scipy.optimize import minimize

    nodes, reps = np.asarray(num_nodes), np.asarray(num_replicas)
    bsz, step, compute = (np.asarray(a, float) for a in (local_batch, step, compute))
    x0 = np.array([1e-1, 1e-2] * 3 + [1.0 + 1e-3])
    lo = np.array([FLOOR] * 6 + [1.0])
    hi = np.array([np.inf] * 6 + [10.0])
    pinned = []
    if np.unique(bsz).size == 1:
        x0[0] = lo[0] = hi[0] = np.mean(compute) / 2
    if not (nodes > 1).any():
        pinned += [2, 3]
    if not ((nodes == 1) & (reps > 1)).any():
        pinned += [4, 5]
    if not (reps > 2).any():
        pinned += [3, 5]
    for i in pinned:
        x0[i] = hi[i] = lo[i]
    free = lo < hi

    def f(z):
        x = x0.copy()
        x[free] = z
        return _objective(x, nodes, reps, bsz, step, compute)

    r = minimize(f, x0[free], method="L-BFGS-B", bounds=list(zip(lo[free], hi[free])))
    x = x0.copy()
    x[free] = r.x
    return PolluxParams(*x)
