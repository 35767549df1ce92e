"""One trial = one `scalesim train` run with the trial's parameters, in its own run directory.

This module is what engines ship to their workers (Spark python workers, local pool processes), so
its functions take and return plain picklable values. 1-rank trials train in the worker's own
process through the same `scalesim.train.worker.train` that `scalesim train` runs on each rank
(a reused worker pays TensorFlow's import once); multi-rank trials run on Horovod ranks started by
the engine (`horovod.spark.run` with Gloo, or `horovodrun` for the local engine) and rank 0 writes
the run directory. The driver then reads the objective from the run directory's `epochs` table.
No TensorFlow at module level.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import NamedTuple

from ..errors import UsageError

OBJECTIVES = ("test_error", "test_loss", "train_loss", "train_error")
PID_FILE = "worker.pid"


class TrialSpec(NamedTuple):
    trial_id: int
    params: dict        # PARAMS values + seed
    base: dict          # TrainConfig fields shared by every trial (model, dataset, epochs, ...)
    run_dir: str        # absolute
    objective: str


def config_for(spec: TrialSpec):
    """The TrainConfig of a trial: base config, overridden by the trial's parameters."""
    from ..train.config import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    kw = {k: v for k, v in spec.base.items() if k in names}
    p = dict(spec.params)
    if "global_batch" in p:
        kw["batch"] = int(p.pop("global_batch"))
    kw.update({k: v for k, v in p.items() if k in names})
    cfg = TrainConfig(**kw)
    if cfg.nodes > 1 and cfg.batch % cfg.nodes:
        cfg.batch = max(cfg.nodes, cfg.batch // cfg.nodes * cfg.nodes)   # sampled batches: round to ranks
    cfg.out, cfg.progress = spec.run_dir, "none"
    if isinstance(cfg.decay_epochs, list):
        cfg.decay_epochs = tuple(cfg.decay_epochs)
    return cfg


def prepare_run_dir(spec: TrialSpec):
    """Checks the config and writes the run's first manifest (as `scalesim train` does) and this
    worker's pid (so a driver or a test can find the process that trains the trial)."""
    from ..schema import RunDir
    from ..train.worker import base_manifest

    cfg = config_for(spec).check()
    run = RunDir(spec.run_dir)
    if run.exists():
        raise UsageError(f"{run.path} already holds a run")
    m = base_manifest(cfg, run.run_id)
    m["sweep_trial"] = {"trial_id": spec.trial_id, "params": spec.params}
    run.write_manifest(m)
    (run.path / PID_FILE).write_text(f"{os.getpid()}\n")
    return cfg


class _OneRank:
    """The part of horovod.tensorflow's interface `worker.train` uses, for a single rank without
    Horovod (a Spark worker that earlier ran a horovod.spark rank keeps its Horovod environment, so
    calling hvd.init() there would try to join a finished job)."""

    def rank(self):
        return 0

    def size(self):
        return 1

    def local_size(self):
        return 1

    def local_rank(self):
        return 0


def _threads(cfg, ranks_here: int) -> tuple[int, int]:
    """Configure TensorFlow's pools once per process; a reused worker keeps its first setting."""
    import tensorflow as tf

    from ..train.hvdrun import configure_tf_threads

    try:
        return configure_tf_threads(cfg.threads, ranks_here)
    except RuntimeError:   # TF already initialised in this worker by an earlier trial
        return (tf.config.threading.get_intra_op_parallelism_threads(),
                tf.config.threading.get_inter_op_parallelism_threads())


def run_in_process(spec: TrialSpec) -> dict:
    """A 1-rank trial in this process. Never raises for a trial's own failure: returns it."""
    t0 = time.time()
    try:
        cfg = prepare_run_dir(spec)
        import keras

        from ..train.worker import train

        threads = _threads(cfg, 1)
        keras.backend.clear_session()
        train(cfg, _OneRank(), threads)
    except Exception as e:   # noqa: BLE001 - a trial's failure is data, the sweep goes on
        return _failed(spec, e, time.time() - t0)
    return {"trial_id": spec.trial_id, "ok": True, "wall_time": time.time() - t0, "worker_pid": os.getpid()}


def rank_main(spec: TrialSpec) -> dict:
    """One Horovod rank of a multi-rank trial (inside `horovod.spark.run`)."""
    import horovod.tensorflow as hvd
    import keras

    from ..train.worker import train

    cfg = config_for(spec).check()
    hvd.init()
    try:
        if hvd.rank() == 0:
            from ..schema import RunDir

            if not RunDir(spec.run_dir).exists():
                prepare_run_dir(spec)
            else:
                (Path(spec.run_dir) / PID_FILE).write_text(f"{os.getpid()}\n")
        threads = _threads(cfg, hvd.local_size())
        keras.backend.clear_session()
        try:
            train(cfg, hvd, threads)
        except BaseException as e:
            if hvd.rank() == 0:
                from ..train.worker import mark_failed

                mark_failed(spec.run_dir, f"{type(e).__name__}: {e}")
            raise
        return {"rank": hvd.rank(), "pid": os.getpid()}
    finally:
        hvd.shutdown()


def _failed(spec: TrialSpec, e: BaseException, wall: float) -> dict:
    from ..train.worker import mark_failed

    msg = f"{type(e).__name__}: {e}".splitlines()[0][:500]
    try:
        mark_failed(spec.run_dir, msg)
    except Exception:  # noqa: BLE001 - the run dir itself may be what failed
        pass
    return {"trial_id": spec.trial_id, "ok": False, "error": msg, "wall_time": wall, "worker_pid": os.getpid()}


def outcome(run_dir: str | os.PathLike, objective: str) -> dict:
    """What a finished run directory says: objective, test_error, losses, epochs done, status."""
    from ..schema import RunDir

    run = RunDir(run_dir)
    nan = float("nan")
    out = {"test_error": nan, "test_loss": nan, "train_loss": nan, "epochs_done": 0, "objective": nan,
           "train_seconds": nan, "run_status": None, "run_error": None}
    if not run.exists():
        return out
    m = run.read_manifest()
    out["run_status"], out["run_error"] = m.get("status"), (m.get("configs") or [{}])[0].get("error")
    ep = run.read_table("epochs")
    if ep.empty:
        return out
    last = ep.sort_values("epoch").iloc[-1]
    out.update(test_error=1.0 - float(last["test_acc"]), test_loss=float(last["test_loss"]),
               train_loss=float(last["train_loss"]), epochs_done=int(len(ep)),
               train_seconds=float(ep["elapsed"].sum()))
    value = {"test_error": out["test_error"], "test_loss": out["test_loss"],
             "train_loss": out["train_loss"], "train_error": 1.0 - float(last["train_acc"])}[objective]
    out["objective"] = value if math.isfinite(value) else nan
    return out


def worker_pid(run_dir: str | os.PathLike) -> int | None:
    """The pid a trial's worker wrote into its run directory (None until it has started)."""
    try:
        return int((Path(run_dir) / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
