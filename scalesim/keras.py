"""Bring your own model: record a Keras / Horovod training job into a scalesim run directory (the
format `measure` writes: step split, exposed allreduce, bytes, per-step gradient noise), for
`scalesim fit` and `report`.

model.fit (Horovod's Keras integration, Keras 3):

    import scalesim.keras as sk
    hvd = sk.init()                                     # hvd.init(), one GPU per rank, threads
    opt = sk.DistributedOptimizer(keras.optimizers.SGD(0.05, momentum=0.9))
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, callbacks=[sk.BroadcastVariables(), sk.Recorder("runs/mine", local_batch=64)])

a custom tf.GradientTape loop:

    reduce = sk.GradientReducer()                       # hvd.grouped_allreduce(Average) + probe
    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = reduce(tape.gradient(loss, model.trainable_variables))
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    step = sk.record_step(train_step, "runs/mine", model=model, reducer=reduce, local_batch=64)
    for epoch in range(E):
        for x, y in batches:
            loss = step(x, y, epoch=epoch)
    step.close()

Why not Horovod's own wrappers: with Keras 3, horovod.tensorflow.keras.DistributedOptimizer
(0.28.1) hooks methods Keras 3 no longer calls (_compute_gradients / _aggregate_gradients), so
model.fit trains WITHOUT any allreduce and the ranks silently drift apart; its
BroadcastGlobalVariablesCallback and hvd.DistributedGradientTape fail on Keras 3 variables
(`'Variable' object has no attribute 'ref'`). The replacements here do plain tf.GradientTape +
hvd.grouped_allreduce, and read every rank's local gradient norm before averaging and the
allreduced one after it, at no extra compute (two squared norms and two tf.timestamp ops in the
step's own graph).

What is recorded, per step and rank (scalesim.train.record): compute_time = start of the step ->
all local gradients ready (includes fetching the batch inside model.fit), allreduce_time -> the
allreduce returned (exposed: grouped_allreduce starts after the last gradient), update_time -> the
step returned; bytes reduced; the noise table from local (b) vs allreduced (n*b) gradients. The loss
is taken to be a mean over the local batch (Keras' default), so the allreduce averages. With one
rank there is no second batch size here: no noise rows (use 2+ ranks, or `scalesim train`, which
splits the batch in halves). Keras' `loss` in the noise table is Keras' running mean over the epoch.
"""
from __future__ import annotations

import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from .schema import RunDir
from .train.record import Layout, StepRecorder, wall
from .train.step import horovod_if_initialised, sqnorm

__all__ = ["init", "DistributedOptimizer", "GradientReducer", "BroadcastVariables", "Recorder",
           "record_step", "RecordedStep"]


def init(threads="auto"):
    """hvd.init(), pin this rank to the GPU of its local rank, set TensorFlow's threads (cores //
    ranks on the host). Returns horovod.tensorflow. Call before building the model."""
    import horovod.tensorflow as hvd

    from .train.gpu import pin_gpu
    from .train.hvdrun import configure_tf_threads

    hvd.init()
    pin_gpu(hvd.local_rank())
    configure_tf_threads(threads, hvd.local_size())
    return hvd


class GradientReducer:
    """grads -> allreduced grads (average over ranks, fp16 on the wire if asked), recording in
    `probe` [t_grads, t_reduced, |g_nb|^2, |g_b|^2] for the Recorder. Call it inside the step."""

    def __init__(self, fp16_allreduce: bool = False, hvd="auto", record: bool = True):
        self.hvd = horovod_if_initialised() if hvd == "auto" else hvd
        self.record = bool(record)   # False: the same allreduce, nothing recorded (for paired benchmarks)
        self.size = self.hvd.size() if self.hvd else 1
        self.fp16_allreduce = bool(fp16_allreduce)
        self.probe = tf.Variable(tf.fill([4], tf.constant(math.nan, tf.float64)), trainable=False,
                                 name="scalesim_probe")

    def _allreduce(self, grads: list, dense: list) -> list:
        """grads with every non-None entry averaged over the ranks (None entries stay None)."""
        if self.size == 1:
            return grads
        hvd = self.hvd
        comp = hvd.Compression.fp16 if self.fp16_allreduce else hvd.Compression.none
        reduced = iter(hvd.grouped_allreduce(dense, op=hvd.Average, compression=comp))
        return [next(reduced) if g is not None else None for g in grads]

    def __call__(self, grads):
        grads = list(grads)
        dense = [g for g in grads if g is not None]
        if not self.record:
            return self._allreduce(grads, dense)
        with tf.control_dependencies(dense):
            t_grads = tf.timestamp()
        local_sq = sqnorm(dense)
        out = self._allreduce(grads, dense)
        reduced_dense = [g for g in out if g is not None]
        with tf.control_dependencies(reduced_dense):
            t_reduced = tf.timestamp()
        global_sq = sqnorm(reduced_dense)
        self.probe.assign(tf.stack([t_grads, t_reduced, tf.cast(global_sq, tf.float64),
                                    tf.cast(local_sq, tf.float64)]))
        return out

    def read(self) -> np.ndarray:
        """[t_grads, t_reduced, |g_nb|^2, |g_b|^2 ...] of the last step; no |g_b|^2 with one rank
        (it equals |g_nb|^2 there: not a second batch size)."""
        p = self.probe.numpy()
        return p if self.size > 1 else p[:3]


def DistributedOptimizer(optimizer, fp16_allreduce: bool = False, record: bool = True):
    """A copy of a Keras 3 optimizer whose apply() allreduces the gradients first (and records
    their norms). Same class name and config, so a saved model loads without scalesim."""
    reducer = GradientReducer(fp16_allreduce, record=record)
    base = type(optimizer)

    def apply(self, grads, trainable_variables=None):
        return base.apply(self, self._scalesim_reducer(grads), trainable_variables)

    cls = type(base.__name__, (base,), {"apply": apply, "__module__": base.__module__})
    opt = cls.from_config(optimizer.get_config())
    opt.__dict__["_scalesim_reducer"] = reducer   # untracked: not an optimizer variable
    return opt


def _reducer_of(optimizer) -> GradientReducer | None:
    return getattr(optimizer, "_scalesim_reducer", None) if optimizer is not None else None


def broadcast_variables(variables, root_rank: int = 0, hvd="auto") -> None:
    """Copy variables from root_rank to every rank (Keras 3 variables included)."""
    hvd = horovod_if_initialised() if hvd == "auto" else hvd
    if hvd is None or hvd.size() == 1:
        return
    for i, v in enumerate(variables):
        v.assign(hvd.broadcast(tf.convert_to_tensor(v), root_rank, name=f"scalesim_bcast_{i}"))


class BroadcastVariables(keras.callbacks.Callback):
    """Start every rank from root_rank's weights (replaces hvd.keras' broadcast callback)."""

    def __init__(self, root_rank: int = 0):
        super().__init__()
        self.root_rank = root_rank

    def on_train_begin(self, logs=None):
        broadcast_variables(self.model.variables, self.root_rank)


class _Session:
    """The run directory side shared by Recorder and record_step: manifest, recorder, epochs."""

    def __init__(self, run_dir, model, local_batch: int, reducer: GradientReducer, name: str | None,
                 tensorboard: bool, flush_steps: int, source: str):
        from .train.worker import hosts_facts, versions
        from .train.resnet import count_params, grad_bytes

        if not (isinstance(local_batch, int) and local_batch > 0):
            raise ValueError(f"local_batch must be a positive int (got {local_batch!r})")
        self.hvd = horovod_if_initialised()
        n = self.hvd.size() if self.hvd else 1
        rank = self.hvd.rank() if self.hvd else 0
        hosts = hosts_facts(self.hvd) if self.hvd else [{"hostname": os.uname().nodename, "ranks": 1,
                                                          "cores": len(os.sched_getaffinity(0))}]
        threads = tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0))
        self.run = RunDir(run_dir) if rank == 0 else None
        params = count_params(model)
        wire_bytes = grad_bytes(model, reducer.fp16_allreduce)
        if self.run is not None:
            if self.run.exists():
                raise FileExistsError(f"{self.run.path} already holds a run; choose another directory")
            self.run.write_manifest({
                "run_id": self.run.run_id, "kind": "train", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "config": {"source": source, "local_batch": local_batch, "batch": n * local_batch, "nodes": n,
                           "fp16_allreduce": reducer.fp16_allreduce},
                "status": "running", "hosts": hosts, "threads_per_rank": threads, "versions": versions(),
                "model": {"name": name or model.name, "params": params, "grad_bytes": 4 * params,
                          "input_shape": [d for d in model.input_shape[1:]] if hasattr(model, "input_shape") else None},
                "configs": [{"config_id": "train", "num_nodes": len(hosts), "num_replicas": n,
                             "local_batch": local_batch, "global_batch": n * local_batch, "status": "running",
                             "error": None}]})
        self.recorder = StepRecorder(self.hvd, self.run, Layout.of(hosts, n, local_batch, threads), wire_bytes,
                                     tensorboard=tensorboard, flush_steps=flush_steps)
        self.global_batch = n * local_batch
        self.step = self.epochs = 0

    def add(self, t_begin, t_end, probe, epoch, lr, loss, data_time=math.nan):
        if self.recorder.add(self.step, t_begin, t_end, probe, epoch=epoch, lr=lr, loss=loss, data_time=data_time):
            self.recorder.flush()
        self.step += 1

    def epoch_row(self, row: dict) -> None:
        if self.run is not None:
            import pandas as pd

            # Numbered by the session, not Keras' epoch: a second fit() call must not overwrite.
            self.run.write_part("epochs", f"epoch-{self.epochs:04d}", pd.DataFrame([{**row, "epoch": self.epochs}]))
        self.epochs += 1

    def close(self, status: str = "done", final: bool = True) -> dict:
        rec = self.recorder.close() if final else (self.recorder.flush() or self.recorder.summary())
        if self.run is not None:
            m = self.run.read_manifest()
            m["status"] = m["configs"][0]["status"] = status
            m["recording"] = rec
            m["noise_nonfinite_skipped"] = rec["noise_nonfinite_skipped"]
            m["configs"][0]["summary"] = {k: rec.get(k) for k in ("step_time", "b_simple")}
            self.run.write_manifest(m)
        return rec


def _lr_of(optimizer) -> float:
    try:
        lr = optimizer.learning_rate
        return float(lr(optimizer.iterations) if callable(lr) else lr)
    except Exception:
        return math.nan


class Recorder(keras.callbacks.Callback):
    """Keras callback writing a scalesim run directory (rank 0) from model.fit. The model must be
    compiled with scalesim.keras.DistributedOptimizer (it carries the gradient norms). All ranks
    must run it (the flushes gather every rank's rows), with the same number of steps."""

    def __init__(self, run_dir, local_batch: int, name: str | None = None, tensorboard: bool = True,
                 flush_steps: int = 200):
        super().__init__()
        self.run_dir, self.local_batch, self.name = run_dir, local_batch, name
        self.tensorboard, self.flush_steps = tensorboard, flush_steps
        self.session = None

    def on_train_begin(self, logs=None):
        if self.session is not None:   # a later fit() call continues the same run directory
            return
        reducer = _reducer_of(self.model.optimizer)
        if reducer is None:
            raise ValueError("scalesim.keras.Recorder needs the model compiled with "
                             "scalesim.keras.DistributedOptimizer(...) (it records the gradient norms)")
        self.reducer = reducer
        self.session = _Session(self.run_dir, self.model, self.local_batch, reducer, self.name, self.tensorboard,
                                self.flush_steps, "scalesim.keras.Recorder (model.fit)")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self._epoch_t0, self._epoch_steps = epoch, time.perf_counter(), 0

    def on_train_batch_begin(self, batch, logs=None):
        self._t_begin = wall()

    def on_train_batch_end(self, batch, logs=None):
        t_end = wall()
        loss = (logs or {}).get("loss", math.nan)
        self.session.add(self._t_begin, t_end, self.reducer.read(), self.epoch, _lr_of(self.model.optimizer),
                         float(loss) if loss is not None else math.nan)
        self._epoch_steps += 1

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        elapsed = time.perf_counter() - self._epoch_t0
        acc = next((logs[k] for k in ("accuracy", "sparse_categorical_accuracy", "acc") if k in logs), math.nan)
        vacc = next((logs[k] for k in ("val_accuracy", "val_sparse_categorical_accuracy", "val_acc") if k in logs),
                    math.nan)
        self.session.epoch_row({"epoch": epoch, "lr": _lr_of(self.model.optimizer),
                                "train_loss": float(logs.get("loss", math.nan)), "train_acc": float(acc),
                                "test_loss": float(logs.get("val_loss", math.nan)), "test_acc": float(vacc),
                                "images_per_sec": self._epoch_steps * self.session.global_batch / elapsed,
                                "elapsed": elapsed, "steps": self._epoch_steps})
        self.session.recorder.flush()

    def on_train_end(self, logs=None):
        # Flushes and marks the run done; a later fit() call appends to it.
        if self.session is not None:
            self.summary = self.session.close(final=False)

    def close(self) -> dict:
        """Optional: close the TensorBoard writer (the run directory is complete after fit anyway)."""
        return self.session.close() if self.session is not None else {}


class RecordedStep:
    """A custom loop's step function, timed and recorded: call it as the step it wraps, plus
    epoch= (and lr= if the optimizer's is not readable); close() at the end (every rank)."""

    def __init__(self, fn, run_dir, model, reducer: GradientReducer, local_batch: int, optimizer=None,
                 name: str | None = None, tensorboard: bool = True, flush_steps: int = 200):
        self.fn, self.reducer, self.optimizer = fn, reducer, optimizer
        self.session = _Session(run_dir, model, local_batch, reducer, name, tensorboard, flush_steps,
                                "scalesim.keras.record_step (custom loop)")
        self._last_end = None

    def __call__(self, *args, epoch: int = 0, lr: float | None = None, **kwargs):
        t_begin = wall()
        out = self.fn(*args, **kwargs)
        probe = self.reducer.read()          # waits for the step on an accelerator
        t_end = wall()
        loss = out[0] if isinstance(out, (tuple, list)) else out
        try:
            loss = float(loss)
        except (TypeError, ValueError):
            loss = math.nan
        # Data time: from the end of the previous step to this call, i.e. the loop fetching the batch.
        data = t_begin - self._last_end if self._last_end is not None else math.nan
        self.session.add(t_begin, t_end, probe, epoch, _lr_of(self.optimizer) if lr is None else lr, loss, data)
        self._last_end = wall()
        return out

    def close(self) -> dict:
        return self.session.close()


def record_step(fn, run_dir, *, model, reducer: GradientReducer, local_batch: int, optimizer=None,
                **kwargs) -> RecordedStep:
    """Wrap a custom loop's step function (one that calls `reducer` on its gradients)."""
    return RecordedStep(fn, run_dir, model, reducer, local_batch, optimizer, **kwargs)
