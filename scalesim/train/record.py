"""Per-step recording into a run directory, shared by `scalesim train`, scalesim.keras.Recorder and
scalesim.keras.record_step (one format, the `measure` one: see scalesim/schema.py).

Every rank keeps its own rows in memory (plain floats: the step's probe, see scalesim.train.step);
`flush` is collective: the ranks' rows are gathered once per flush (not per step, so recording adds
no communication to a step) and rank 0 appends one part to each table:
  steps  mode 'production', with the split measured inside the production step itself
         (data_time | compute_time | allreduce_time | update_time, step_time = their sum)
  noise  one row per step: every rank's local |g_b|^2 (mean over ranks) and the allreduced
         |g_nb|^2, McCandlish's |G|^2 and tr(Sigma) and their EMAs (scalesim.model.noise), plus
         epoch, lr and loss (mean over ranks)
and, with TensorBoard on, the same as scalars (tf.summary, under <run_dir>/tensorboard).
No TensorFlow at module level (only the TensorBoard writer needs it).
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from ..model.noise import DEFAULT_BETA, NoiseTracker, noise_batches
from ..schema import RunDir, slowest_step_median

CONFIG_ID = "train"
FLUSH_STEPS = 200
TB_DIR = "tensorboard"


class Layout(NamedTuple):
    """Where the ranks ran: the meta columns every `steps`/`noise` row carries."""
    num_nodes: int
    num_replicas: int
    local_batch: int
    ranks_per_host: int
    threads_per_rank: int
    cores_per_host: int

    @classmethod
    def of(cls, hosts: list[dict], num_replicas: int, local_batch: int, threads_per_rank: int) -> "Layout":
        return cls(len(hosts), num_replicas, int(local_batch), max(h["ranks"] for h in hosts),
                   int(threads_per_rank), min(h["cores"] for h in hosts))


def split_row(step: int, t_begin: float, t_end: float, probe, data_time: float = math.nan) -> dict:
    """One rank's steps row from wall-clock step bounds and the probe [t_grads, t_reduced, ...]:
    compute = start of the call -> gradients ready, allreduce = -> allreduce returned, update = rest."""
    t_grads, t_reduced = float(probe[0]), float(probe[1])
    row = {"step": int(step), "mode": "production", "data_time": float(data_time),
           "compute_time": t_grads - t_begin, "allreduce_time": t_reduced - t_grads,
           "update_time": t_end - t_reduced}
    row["step_time"] = (t_end - t_begin) + (row["data_time"] if math.isfinite(row["data_time"]) else 0.0)
    return row


class StepRecorder:
    """Collects every step of one rank; rank 0 (run is not None there) writes the tables."""

    def __init__(self, hvd, run: RunDir | None, layout: Layout, grad_bytes: int, beta: float = DEFAULT_BETA,
                 tensorboard: bool = True, flush_steps: int = FLUSH_STEPS):
        self.hvd, self.run, self.layout = hvd, run, layout
        self.n = layout.num_replicas
        self.bytes_reduced = float(grad_bytes if self.n > 1 else 0)
        self.flush_steps = max(1, int(flush_steps))
        b_small, b_big = noise_batches(self.n, layout.local_batch)
        self.tracker = NoiseTracker(b_small, b_big, beta) if b_big > b_small > 0 else None
        self._rows: list[dict] = []
        self._noise: list[tuple] = []
        self._parts = 0
        self.steps_written = 0
        self._tb = None
        if run is not None and tensorboard:
            import tensorflow as tf

            self._tb = tf.summary.create_file_writer(str(run.path / TB_DIR))

    # --- every step (no communication, no TensorFlow) --------------------------------------------
    def add(self, step: int, t_begin: float, t_end: float, probe, *, epoch: int, lr: float, loss: float,
            data_time: float = math.nan) -> bool:
        """Record one step; True when `flush_steps` steps are waiting (then call flush on every rank)."""
        p = np.asarray(probe, np.float64)
        row = split_row(step, t_begin, t_end, p, data_time)
        row["bytes_reduced"] = self.bytes_reduced
        self._rows.append(row)
        self._noise.append((int(step), int(epoch), float(lr), float(loss), float(p[2]), p[3:].tolist()))
        return len(self._rows) >= self.flush_steps

    # --- collective ----------------------------------------------------------------------------------
    def flush(self) -> None:
        rows, noise = self._rows, self._noise
        self._rows, self._noise = [], []
        if self.n > 1:
            rows_by_rank = self.hvd.allgather_object(rows)
            noise_by_rank = self.hvd.allgather_object(noise)
        else:
            rows_by_rank, noise_by_rank = [rows], [noise]
        if self.run is None or not rows_by_rank[0]:
            return
        steps, noise_df = self._frames(rows_by_rank, noise_by_rank)
        part = f"{CONFIG_ID}-{self._parts:05d}"
        self._parts += 1
        self.run.write_part("steps", part, steps)
        if not noise_df.empty:
            self.run.write_part("noise", part, noise_df)
        self.steps_written += int(steps["step"].nunique())
        if self._tb is not None:
            self._scalars(steps, noise_df)

    def _meta(self) -> dict:
        lay = self.layout
        return {"config_id": CONFIG_ID, "num_nodes": lay.num_nodes, "num_replicas": lay.num_replicas,
                "local_batch": lay.local_batch, "global_batch": lay.num_replicas * lay.local_batch,
                "ranks_per_host": lay.ranks_per_host, "threads_per_rank": lay.threads_per_rank,
                "cores_per_host": lay.cores_per_host}

    def _frames(self, rows_by_rank, noise_by_rank):
        import pandas as pd

        meta = self._meta()
        steps = pd.DataFrame([{**meta, "rank": r, **row} for r, rows in enumerate(rows_by_rank) for row in rows])
        out = []
        if self.tracker is not None:
            for i, (step, epoch, lr, _, big, _) in enumerate(noise_by_rank[0]):
                small = [s for per_rank in noise_by_rank for s in per_rank[i][5]]
                if not small:      # no second batch size (one rank without half batches)
                    continue
                loss = float(np.mean([per_rank[i][3] for per_rank in noise_by_rank]))
                row = self.tracker.add(step, small, big, epoch=epoch, lr=lr, loss=loss)
                if row is not None:
                    out.append({"config_id": CONFIG_ID, "num_replicas": self.n,
                                "local_batch": self.layout.local_batch, **row})
        return steps, pd.DataFrame(out)

    def _scalars(self, steps, noise) -> None:
        import tensorflow as tf

        meta = _scalar_metadata()

        def scalar(tag, value, step):
            tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=meta)

        per_step = steps.groupby("step").agg(step_time=("step_time", "max"),
                                             allreduce_time=("allreduce_time", "mean"),
                                             compute_time=("compute_time", "mean"))
        with self._tb.as_default():
            for step, r in per_step.iterrows():
                for k, v in r.items():
                    scalar(f"time/{k}", v, step=int(step))
            for r in noise.itertuples(index=False):
                s = int(r.step)
                scalar("noise/b_simple", r.b_simple, step=s)
                scalar("noise/grad_sqr_ema", r.ema_grad_sqr, step=s)
                scalar("noise/tr_sigma_ema", r.ema_grad_var, step=s)
                scalar("noise/local_sqnorm", r.local_sqnorm, step=s)
                scalar("noise/global_sqnorm", r.global_sqnorm, step=s)
                scalar("train/loss", r.loss, step=s)
                scalar("train/lr", r.lr, step=s)
        self._tb.flush()

    def summary(self) -> dict:
        """What the manifest keeps about the recording (rank 0, after the last flush)."""
        out = {"steps": self.steps_written, "noise_nonfinite_skipped": self.tracker.skipped if self.tracker else 0,
               "b_small": self.tracker.b_small if self.tracker else None,
               "b_big": self.tracker.b_big if self.tracker else None,
               "noise_beta": self.tracker.beta if self.tracker else None,
               "split": "in the production step (tf.timestamp when gradients are ready and when the "
                        "allreduce returned)", "tensorboard": TB_DIR if self._tb is not None else None}
        if self.tracker is not None:
            out["b_simple"] = self.tracker.summary()["b_simple"]
        if self.run is not None and self.run.has_table("steps"):
            steps = self.run.read_table("steps")
            steps = steps[steps["config_id"] == CONFIG_ID]
            if len(steps):
                out["step_time"] = float(slowest_step_median(steps, ["config_id"]).iloc[0])
        return out

    def close(self) -> dict:
        self.flush()
        if self._tb is not None:
            self._tb.close()
        return self.summary()


def _scalar_metadata() -> bytes:
    """SummaryMetadata marking a value as a TensorBoard scalar (what tensorboard's own
    tf.summary.scalar writes), so that no tensorboard package is needed to write the events."""
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
                                       data_class=summary_pb2.DATA_CLASS_SCALAR).SerializeToString()


def wall() -> float:
    """The clock tf.timestamp() reads (seconds since the epoch), for the step bounds."""
    return time.time()
