"""Runs inside every Horovod rank of a measurement launch (`python -m scalesim.measure.worker`).

For each configuration (per-rank batch b on this launch's n ranks) it times two kinds of step,
alternating in blocks so that slow drifts (other jobs, thermal) hit both equally:
  instrumented  data wait | forward+backward | allreduce (blocking) | optimizer update, each phase
                run separately and timed; local and allreduced gradient norms for the noise scale
  production    Trainer.train_step, the fused step users run, timed as a whole and nothing else
The split and the fused step time of the same configuration are what an overlap factor (Pollux's
power mean with gamma) is fitted to. With n ranks the noise estimator's two batch sizes come free:
each rank's local gradient (b) and the allreduced one (n*b). With one rank every instrumented step
is followed by an extra untimed step that computes the gradient as two half-batch passes (b/2 and
their mean, b); it is recorded only in the `noise` table.

Every configuration restarts from the same seeded weights and zero momentum, so its figures do not
depend on which configurations ran before it in the launch (or after a --resume).
Rank 0 gathers every rank's rows and writes the configuration's parts atomically.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

from ..errors import ScalesimError
from ..schema import RunDir
from . import events

FAULT_ENV = "SCALESIM_MEASURE_FAULT"   # "<config_id>:<rank>[:<step>]": that rank os._exit(17)s there


def _fault_point() -> tuple[str, int, int] | None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    parts = spec.split(":")
    return parts[0], int(parts[1]), int(parts[2]) if len(parts) > 2 else 0


class Measurer:
    def __init__(self, hvd, cfg: dict):
        import tensorflow as tf

        from ..train import data as tdata
        from ..train.models import build
        from ..train.resnet import grad_bytes
        from ..train.step import Trainer

        self.hvd, self.tf, self.cfg = hvd, tf, cfg
        self.n, self.rank = hvd.size(), hvd.rank()
        self.tdata = tdata
        # --dataset synthetic takes its image shape and classes from --input-shape / --classes.
        spec = tdata.SyntheticSpec(tuple(cfg.get("input_shape") or (28, 28, 1)), int(cfg.get("num_classes") or 10),
                                   int(cfg.get("synthetic_size") or 8192), 1, cfg.get("seed", 0))
        x, y = tdata.load_dataset(cfg["dataset"], "train", cfg.get("data_path"), spec)
        self.x, self.y = x, y
        classes = cfg.get("num_classes") or tdata.num_classes_of(cfg["dataset"], y, spec)
        # Any model: scalesim's ResNets, keras:<application>, module:function (scalesim.train.models).
        model = build(cfg["model"], x.shape[1:], classes, seed=cfg.get("seed", 0), width=cfg.get("width"))
        fp16 = bool(cfg.get("fp16_allreduce"))
        self.trainer = Trainer(model, fp16_allreduce=fp16)
        self.grad_bytes = grad_bytes(model, fp16)   # bytes on the wire per allreduce
        self.model_info = {"name": cfg["model"], "params": grad_bytes(model) // 4, "grad_bytes": self.grad_bytes,
                           "width": cfg.get("width"), "input_shape": list(x.shape[1:]), "num_classes": int(classes),
                           "fp16_allreduce": fp16}
        # Same seed on every rank gives the same weights; keep them to restart each configuration.
        self.init_state = [v.numpy() for v in self.trainer.state_variables()]
        self.fault = _fault_point()

    # --- data ----------------------------------------------------------------------------------
    def _batches(self, local_batch: int):
        """Endless local batches, re-partitioned every epoch like training (data.batch_indices)."""
        tf, td = self.tf, self.tdata
        global_batch = local_batch * self.n
        steps = td.steps_per_epoch(len(self.x), global_batch)
        if steps < 1:
            raise ValueError(f"global batch {global_batch} exceeds the dataset ({len(self.x)} examples)")
        epoch = 0
        while True:
            perm = td.epoch_permutation(len(self.x), epoch, self.cfg.get("seed", 0))
            for s in range(steps):
                idx = td.batch_indices(perm, s, global_batch, self.rank, self.n)
                yield tf.constant(self.x[idx]), tf.constant(self.y[idx])
            epoch += 1

    def _reset(self) -> None:
        for v, value in zip(self.trainer.state_variables(), self.init_state):
            v.assign(value)

    # --- steps -----------------------------------------------------------------------------------
    def _instrumented(self, batches, lr: float) -> tuple[dict, float, float]:
        from ..train.step import sqnorm

        tr = self.trainer
        t0 = time.perf_counter()
        x, y = next(batches)
        t1 = time.perf_counter()
        grads, _, _ = tr.compute_grads(x, y)
        t2 = time.perf_counter()
        # Bookkeeping outside the timed phases: |local mean gradient|^2 = (n |g|)^2.
        local_sq = float(sqnorm(grads)) * tr.local_mean_scale ** 2
        t3 = time.perf_counter()
        reduced = tr.allreduce(grads)
        t4 = time.perf_counter()
        global_sq = float(sqnorm(reduced))
        t5 = time.perf_counter()
        tr.apply(reduced, lr)
        t6 = time.perf_counter()
        row = {"data_time": t1 - t0, "compute_time": t2 - t1, "allreduce_time": t4 - t3,
               "update_time": t6 - t5}
        row["step_time"] = sum(row.values())
        row["bytes_reduced"] = self.grad_bytes if self.n > 1 else 0
        return row, local_sq, global_sq

    def _split_noise(self, batches, lr: float) -> tuple[list[float], float]:
        """One rank: gradients of the two half batches (each the mean over b/2, since the loss is
        normalised by the batch passed) and of their union (the mean of the two)."""
        from ..train.step import sqnorm

        (g1, g2), full, _ = self.trainer.half_batch_grads(*next(batches))
        self.trainer.apply(full, lr)
        return [float(sqnorm(g1)), float(sqnorm(g2))], float(sqnorm(full))

    def _production(self, batches, lr: float) -> float:
        t0 = time.perf_counter()
        x, y = next(batches)
        self.trainer.train_step(x, y, lr)
        return time.perf_counter() - t0

    def _maybe_fault(self, config_id: str, step: int) -> None:
        f = self.fault
        if f and f[0] == config_id and f[1] == self.rank and step >= f[2]:
            os._exit(17)  # a rank dying mid-configuration, as a crash or OOM kill would

    # --- one configuration -----------------------------------------------------------------------
    def measure(self, c: dict) -> tuple[list[dict], list[tuple], dict]:
        from ..model.schedule import lr_at
        from ..train.recipe import Recipe

        cfg, b, cid = self.cfg, int(c["local_batch"]), c["config_id"]
        lr = float(cfg.get("lr") or lr_at(Recipe().schedule(b * self.n), 0.0))
        self._reset()
        batches = self._batches(b)
        split_noise = self.n == 1 and b >= 2
        for _ in range(cfg["warmup"]):
            self._instrumented(batches, lr)
            self._production(batches, lr)
            if split_noise:
                self._split_noise(batches, lr)
        rows, noise, step, done = [], [], 0, {"instrumented": 0, "production": 0}
        K, block = cfg["steps"], cfg["block"]
        while done["production"] < K:
            for mode in ("instrumented", "production"):
                for _ in range(min(block, K - done[mode])):
                    self._maybe_fault(cid, step)
                    if mode == "instrumented":
                        row, local_sq, global_sq = self._instrumented(batches, lr)
                        if split_noise:
                            local_sqs, full_sq = self._split_noise(batches, lr)
                            noise.append((step, local_sqs, full_sq))
                        elif self.n > 1:
                            noise.append((step, [local_sq], global_sq))
                    else:
                        row = {"step_time": self._production(batches, lr)}
                    rows.append({"step": step, "mode": mode, **row})
                    done[mode] += 1
                    step += 1
            if self.rank == 0:  # keeps the campaign's no-progress timeout from firing on slow configs
                events.emit("progress", config_id=cid, done=step, total=2 * K)
        return rows, noise, {"lr": lr}


def _facts(hvd, threads: tuple[int, int], want: list) -> dict:
    """Hosts as Horovod placed the ranks (placement.expected, already checked against hvd), with
    the cores and OS host name each one reports (informative only: not an identity)."""
    import socket

    from ..train.hvdrun import usable_cores
    from ..train.worker import versions

    # An emulated node's CPU share (a cgroup quota its ranks cannot see: /sys is the namespace's).
    share = os.environ.get("SCALESIM_CORES_PER_NODE")
    me = (hvd.rank(), float(share) if share else usable_cores(), socket.gethostname())
    every = hvd.allgather_object(me) if hvd.size() > 1 else [me]
    by_rank = {r: (cores, name) for r, cores, name in every}
    hosts = []
    for s in want:
        if s.local_rank == 0:
            cores, name = by_rank[s.rank]
            hosts.append({"hostname": s.host, "host_index": s.host_index, "ranks": s.local_size,
                          "cores": cores, "os_hostname": name})
    return {"hosts": hosts, "threads_per_rank": threads[0], "inter_op_threads": threads[1],
            "versions": versions()}


def _check_placement(hvd, want: list) -> None:
    from . import placement

    why = placement.mismatch(want, hvd.rank(), hvd.size(), hvd.local_rank(), hvd.local_size(),
                             hvd.cross_rank(), hvd.cross_size())
    if why:
        raise PlacementError(why)


class PlacementError(ScalesimError):
    """Horovod started other ranks than the launch asked for: every launch would record wrong data."""


class SharedDirError(ScalesimError):
    """A rank cannot see the run directory (no shared filesystem)."""


def _config_frames(rows_by_rank, noise_by_rank, c: dict, n: int, facts: dict, beta: float):
    import pandas as pd

    from .noise import NoiseTracker

    steps = pd.DataFrame([{"rank": r, **row} for r, rows in enumerate(rows_by_rank) for row in rows])
    num_nodes = len(facts["hosts"])
    meta = {"config_id": c["config_id"], "num_nodes": num_nodes, "num_replicas": n,
            "local_batch": c["local_batch"], "global_batch": n * c["local_batch"],
            "ranks_per_host": max(h["ranks"] for h in facts["hosts"]),
            "threads_per_rank": facts["threads_per_rank"],
            "cores_per_host": min(h["cores"] for h in facts["hosts"])}
    for k, v in reversed(meta.items()):
        steps.insert(0, k, v)
    cols = ["data_time", "compute_time", "allreduce_time", "update_time", "step_time", "bytes_reduced"]
    for col in cols:
        if col not in steps:
            steps[col] = np.nan
    steps["bytes_reduced"] = steps["bytes_reduced"].astype(float)
    b = c["local_batch"]
    b_small, b_big = (b // 2, 2 * (b // 2)) if n == 1 else (b, n * b)
    tracker = NoiseTracker(b_small, b_big, beta) if b_big > b_small > 0 else None
    if tracker is not None and noise_by_rank[0]:
        # Per step: every rank's local |g_b|^2 (or both halves on one rank), one global |g_nb|^2.
        for i, (step, _, global_sq) in enumerate(noise_by_rank[0]):
            small = [s for per_rank in noise_by_rank for s in per_rank[i][1]]
            tracker.add(step, small, global_sq)
    noise = pd.DataFrame(tracker.rows if tracker else [])
    if not noise.empty:
        for k, v in reversed({"config_id": c["config_id"], "num_replicas": n, "local_batch": b}.items()):
            noise.insert(0, k, v)
    return steps, noise, (tracker.summary() if tracker else {"b_simple": math.nan, "skipped": 0})


def _summary(steps, noise_summary: dict) -> dict:
    from ..schema import slowest_step_median  # the one definition fit and report use too

    ins = steps[steps["mode"] == "instrumented"]
    per_mode = slowest_step_median(steps, ["mode"])
    step_time = float(per_mode["production"])
    out = {"step_time": step_time, "images_per_sec": float(steps["global_batch"].iloc[0]) / step_time,
           "b_simple": noise_summary.get("b_simple"), "noise_skipped": noise_summary.get("skipped", 0),
           "steps": int(steps.loc[steps["mode"] == "production", "step"].nunique())}
    for col in ("data_time", "compute_time", "allreduce_time", "update_time"):
        out[col] = float(ins[col].median())
    out["instrumented_step_time"] = float(per_mode["instrumented"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scalesim.measure.worker")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--configs", default="")
    ap.add_argument("--allreduce-bench", action="store_true")
    ap.add_argument("--placement", help="the launch's exact -H (host:slots,...); checked against Horovod")
    args = ap.parse_args(argv)
    from ..procs import watch_launch

    watch_launch()  # exit when the campaign driver or horovodrun is gone

    import horovod.tensorflow as hvd

    from ..train.hvdrun import configure_tf_threads

    from . import placement

    hvd.init()
    from ..train.gpu import pin_gpu

    pin_gpu(hvd.local_rank())   # one GPU per rank, by local rank (no-op without GPUs)
    n, rank = hvd.size(), hvd.rank()
    rd = RunDir(args.run_dir)
    want = placement.expected(placement.parse(args.placement) if args.placement
                              else [placement.Host("localhost", n)])
    current = "setup"
    try:
        _check_placement(hvd, want)
        if not rd.exists():
            # Each rank reads the campaign's settings, rank 0 writes the tables: all of them need
            # the run directory at the same path (a shared filesystem), said in the README.
            raise SharedDirError(f"run directory {rd.path} is not visible on {want[rank].host} (rank {rank}); "
                                 "--hosts needs it on a filesystem shared by every host, at the same path")
        manifest = rd.read_manifest()
        cfg = manifest["config"]
        threads = configure_tf_threads(cfg.get("threads_per_rank", 1), hvd.local_size())
        facts = _facts(hvd, threads, want)
        measurer = Measurer(hvd, cfg)
        if rank == 0:
            events.emit("facts", **facts, model=measurer.model_info)
        if args.allreduce_bench:
            current = "allreduce"
            _allreduce_bench(hvd, rd, cfg, facts, rank)
        by_id = {c["config_id"]: c for c in manifest["configs"]}
        for cid in filter(None, args.configs.split(",")):
            current = cid
            if rank == 0:
                events.emit("config_start", config_id=cid)
            rows, noise, _ = measurer.measure(by_id[cid])
            rows_by_rank = hvd.allgather_object(rows)
            noise_by_rank = hvd.allgather_object(noise)
            if rank == 0:
                steps, noise_df, ns = _config_frames(rows_by_rank, noise_by_rank, by_id[cid], n, facts,
                                                     cfg.get("noise_beta", 0.9))
                rd.write_part("steps", cid, steps)
                if not noise_df.empty:
                    rd.write_part("noise", cid, noise_df)
                events.emit("config_done", config_id=cid, summary=_summary(steps, ns))
        current = None
    except Exception as e:  # any rank: say what failed, then die so horovodrun stops the others
        msg = (str(e) if isinstance(e, ScalesimError) else f"{type(e).__name__}: {e}").splitlines()[0][:300]
        # Bad input found while setting up (unknown model, missing dataset) fails every launch alike.
        events.emit("error", rank=rank, config_id=current, error=msg,
                    fatal=current == "setup" and isinstance(e, ScalesimError))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    return 0


def _allreduce_bench(hvd, rd: RunDir, cfg: dict, facts: dict, rank: int) -> None:
    import pandas as pd

    from . import allreduce_bench

    if rank == 0:
        events.emit("ar_start")
    rows = allreduce_bench.run(cfg["allreduce"]["sizes"])
    if rank == 0:
        df = pd.DataFrame(rows)
        df.insert(0, "num_nodes", len(facts["hosts"]))
        df.insert(1, "ranks_per_host", max(h["ranks"] for h in facts["hosts"]))
        rd.write_part("allreduce", f"n{hvd.size()}", df)
        events.emit("ar_done")


if __name__ == "__main__":
    sys.exit(main())
