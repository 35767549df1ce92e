"""Synthetic inputs for the report tests, generated from known model parameters (so fitted lines
must pass through the points) and written through the real run-directory schema and model file."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scalesim import modelfile
from scalesim.model import perf
from scalesim.schema import RunDir

EVIL = "<script>alert(1)</script>"
TRUE = perf.PerfParams(perf.ComputeParams(alpha_c=0.004, beta_c=0.0009, kappa=1.0),
                       perf.CommParams(alpha_intra=50e-6, bw_intra=2e9, alpha_inter=200e-6, bw_inter=1e9,
                                       grad_bytes=1.1e6, algorithm="ring"), gamma=1.5)
CORES = 2
REPLICAS = (1, 2, 4, 8)
LOCAL = (32, 64, 128)
B_NOISE = 800.0


def _placement(r):
    return perf.Placement(1, r, CORES, 1)


def make_run(path, tables=("steps", "allreduce", "noise", "epochs"), hostname="host-a", config_note="default",
             seed=0) -> RunDir:
    rng = np.random.default_rng(seed)
    rd = RunDir(path)
    configs = [dict(config_id=f"n{r}-b{b}", num_nodes=1, num_replicas=r, local_batch=b, status="done", error=None)
               for r in REPLICAS for b in LOCAL]
    rd.write_manifest({
        "run_id": rd.run_id, "kind": "measure", "created": "2025-01-01T00:00:00+00:00",
        "config": {"nodes": 8, "model": "resnet20", "note": config_note, "batches": list(LOCAL)},
        "hosts": [{"hostname": hostname, "ranks": 8, "cores": CORES}], "threads_per_rank": 1,
        "versions": {"python": "3.11", "tensorflow": "2.21.0", "horovod": "0.28.1", "scalesim": "0.1.0"},
        "model": {"name": "resnet20", "params": 272474, "grad_bytes": 1.1e6},
        "configs": configs})
    for c in configs:
        r, b, cid = c["num_replicas"], c["local_batch"], c["config_id"]
        pl = _placement(r)
        tc = float(perf.compute_time(TRUE.compute, b, pl))
        ts = float(perf.sync_time(TRUE.comm, pl))
        prod = float(perf.step_time(TRUE, pl, b))
        rows = []
        for rank in range(r):
            for step in range(8):
                jit = rng.normal(1, 0.02, 3)
                split = dict(data_time=0.0005, compute_time=tc * jit[0], allreduce_time=ts * jit[1], update_time=0.0008)
                rows.append(dict(config_id=cid, num_nodes=1, num_replicas=r, local_batch=b, global_batch=r * b,
                                 rank=rank, step=step, mode="instrumented", **split,
                                 step_time=sum(split.values()), bytes_reduced=TRUE.comm.grad_bytes))
                rows.append(dict(config_id=cid, num_nodes=1, num_replicas=r, local_batch=b, global_batch=r * b,
                                 rank=rank, step=step, mode="production", data_time=np.nan, compute_time=np.nan,
                                 allreduce_time=np.nan, update_time=np.nan, step_time=prod * jit[2],
                                 bytes_reduced=TRUE.comm.grad_bytes))
        if "steps" in tables:
            rd.write_part("steps", cid, pd.DataFrame(rows))
    if "allreduce" in tables:
        rows = []
        for r in REPLICAS:
            for size in 4096 * 4 ** np.arange(8):
                t = float(perf.allreduce_time(TRUE.comm, size, 1, r)) * rng.normal(1, 0.03)
                algbw = size / t if t > 0 else 0.0
                rows.append(dict(num_nodes=1, num_replicas=r, size_bytes=int(size), iters=10, time=t,
                                 algbw=algbw, busbw=algbw * 2 * (r - 1) / r))
        rd.write_part("allreduce", "all", pd.DataFrame(rows))
    if "noise" in tables:
        for r in (2, 4):
            steps = np.arange(200)
            grad_sqr = 1.0 / (1 + steps / 50)
            grad_var = B_NOISE * grad_sqr[-1] * np.ones_like(grad_sqr)
            noisy_sqr = grad_sqr * rng.normal(1, 0.3, len(steps))
            rd.write_part("noise", f"n{r}", pd.DataFrame(dict(
                config_id=f"n{r}-b32", num_replicas=r, local_batch=32, step=steps, local_sqnorm=np.nan,
                global_sqnorm=np.nan, grad_sqr=noisy_sqr, grad_var=grad_var, b_simple=grad_var / noisy_sqr)))
    if "epochs" in tables:
        rd.write_part("epochs", "all", pd.DataFrame(dict(epoch=[0, 1], lr=[0.1, 0.2], train_loss=[1.0, 0.6],
                                                           train_acc=[0.6, 0.8], test_loss=[0.9, 0.6],
                                                           test_acc=[0.65, 0.8], images_per_sec=[900, 950],
                                                           elapsed=[60, 120], steps=[100, 100])))
    return rd


def make_model(path):
    rng = np.random.default_rng(1)
    boots = []
    for _ in range(20):
        f = rng.normal(1, 0.05, 4)
        p = TRUE._replace(compute=TRUE.compute._replace(beta_c=TRUE.compute.beta_c * f[0]),
                          comm=TRUE.comm._replace(bw_intra=TRUE.comm.bw_intra * f[1],
                                                  alpha_intra=TRUE.comm.alpha_intra * f[2]))
        boots.append({**modelfile.perf_to_dict(p), "b_noise": B_NOISE * f[3]})
    m = modelfile.FittedModel(perf=TRUE, stateff={"b_noise": B_NOISE, "s_min": 1000.0}, bootstrap=boots,
                              intervals={"beta_c": [0.00085, 0.00095]}, ranges={"num_replicas": [1, 8]},
                              quality={"step_time": {"mape": 3.2, "n": 12}},
                              host={"cores_per_host": CORES, "threads_per_rank": 1})
    modelfile.save(m, path)
    return path


def make_validation(path):
    rows = []
    for r in (4, 8):
        for b in LOCAL:
            t = float(perf.step_time(TRUE, _placement(r), b))
            rows.append(dict(config=f"n{r}-b{b}", quantity="step_time", measured=t * 1.05, predicted=t,
                             error_pct=-100 * 0.05 / 1.05))
            rows.append(dict(config=f"n{r}-b{b}", quantity="throughput", measured=r * b / t * 0.97,
                             predicted=r * b / t, error_pct=100 * 0.03 / 0.97))
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def make_prediction(path):
    grid = []
    for n in (1, 2, 4, 8, 16, 32):
        for B in (256, 512, 1024, 2048, 4096, 8192):
            t = 3600 * (1 + B_NOISE / B) * 8 / n * (1 + 0.05 * n) if B / n <= 1024 else None
            grid.append({"num_nodes": n, "global_batch": B, "local_batch": B // n,
                         "time_to_target_s": t, "device_hours": None if t is None else t * n / 3600})
    payload = {"target": "1h", "grid": grid,
               "recommendation": {"num_nodes": 8, "global_batch": 2048, "time_to_target_s": 5000.0},
               "fastest": {"num_nodes": 32, "global_batch": 8192}}
    path.write_text(json.dumps(payload))
    return path


LINK_BPS = 200e6
NODES = (1, 2, 4)


def make_multinode_run(path) -> RunDir:
    """One rank per node on 1, 2, 4 emulated nodes; step time from the generating model, link recorded."""
    rd = RunDir(path)
    rows, configs = [], []
    for n in NODES:
        for b in (32, 64):
            pl = perf.Placement(n, 1, CORES, 1)
            t = float(perf.step_time(TRUE, pl, b))
            cid = f"n{n}-b{b}"
            configs.append(dict(config_id=cid, num_nodes=n, num_replicas=n, local_batch=b, status="done", error=None))
            rows += [dict(config_id=cid, num_nodes=n, num_replicas=n, local_batch=b, global_batch=n * b, rank=r,
                          step=s, mode="production", step_time=t) for r in range(n) for s in range(4)]
    rd.write_manifest({"run_id": rd.run_id, "kind": "measure", "config": {"emulated": {"nodes": 4, "link_bps": LINK_BPS}},
                       "hosts": [{"hostname": f"h{i}", "ranks": 1, "cores": 0.5} for i in range(1, 5)],
                       "configs": configs})
    rd.write_part("steps", "all", pd.DataFrame(rows))
    ar = []
    for n in (2, 4):
        for size in 4096 * 4 ** np.arange(6):
            t = size / (LINK_BPS / 8 * 0.9) * 2 * (n - 1) / n + 1e-3   # 90 % of the link at large sizes
            ar.append(dict(num_nodes=n, num_replicas=n, size_bytes=int(size), iters=5, time=t))
    rd.write_part("allreduce", "all", pd.DataFrame(ar))
    return rd
