"""One Horovod rank of `scalesim train` (started by horovodrun; `python -m scalesim.train.worker`).

Every rank loads the dataset, takes its slice of each global batch from a per-epoch permutation
shared by all ranks (a fresh random partition per epoch), starts from rank 0's variables, and runs
the fused step. Rank 0 alone writes the run directory: the manifest, then one `epochs` part per
epoch as soon as the epoch ends. No TensorFlow at module level (the launcher and `scalesim measure`
import its run-directory helpers).
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import time
from dataclasses import asdict

from ..errors import ScalesimError, UsageError
from .config import TrainConfig, add_training_arguments, config_from_args

MODULE = "scalesim.train.worker"


def worker_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=MODULE)
    add_training_arguments(p)
    p.add_argument("--out", default=None, help="run directory (rank 0 writes it)")
    p.add_argument("--dump-weights", default=None, metavar="DIR")
    p.add_argument("--progress", default="bar", choices=("events", "bar", "none"))
    return p


# --- run-directory facts ----------------------------------------------------------------------
def versions() -> dict:
    import subprocess

    out = {"python": platform.python_version()}
    for mod in ("tensorflow", "keras", "horovod"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            out[mod] = None
    from .. import __version__

    out["scalesim"] = __version__
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out["git_commit"] = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                           text=True, timeout=10).stdout.strip() or None
    except Exception:
        out["git_commit"] = None
    return out


def hosts_facts(hvd) -> list[dict]:
    """[{hostname, ranks, cores}] gathered from every rank."""
    from .hvdrun import usable_cores

    me = (socket.gethostname(), usable_cores())
    every = hvd.allgather_object(me) if hvd.size() > 1 else [me]
    hosts: dict = {}
    for name, cores in every:
        h = hosts.setdefault(name, {"hostname": name, "ranks": 0, "cores": cores})
        h["ranks"] += 1
    return list(hosts.values())


def base_manifest(cfg: TrainConfig, run_id: str) -> dict:
    return {"run_id": run_id, "kind": "train", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": {**asdict(cfg), "decay_epochs": list(cfg.decay_epochs)},
            "recipe": cfg.recipe().to_dict(), "status": "running",
            "configs": [{"config_id": "train", "num_nodes": None, "num_replicas": cfg.nodes,
                         "local_batch": cfg.local_batch, "status": "pending", "error": None}]}


def record_start(run, cfg: TrainConfig, hosts, threads, model, x_train, num_classes: int, steps: int,
                 schedule: str) -> None:
    """Complete the launcher's manifest (or write one, for a worker started by hand) with what only
    a rank knows: hosts and cores, threads, library versions, model size."""
    from .resnet import count_params, grad_bytes

    manifest = run.read_manifest() if run.exists() else base_manifest(cfg, run.run_id)
    manifest["configs"][0].update(num_nodes=len(hosts), status="running")
    manifest.update(hosts=hosts, threads_per_rank=threads[0], inter_op_threads=threads[1],
                    versions=versions(), schedule=schedule,
                    model={"name": cfg.model, "params": count_params(model), "grad_bytes": grad_bytes(model),
                           "input_shape": list(x_train.shape[1:]), "num_classes": num_classes},
                    dataset={"name": cfg.dataset, "train_examples": int(len(x_train)), "steps_per_epoch": steps})
    run.write_manifest(manifest)


def mark_failed(out: str, error: str) -> None:
    from ..schema import RunDir

    run = RunDir(out)
    if run.exists():
        m = run.read_manifest()
        m["status"] = "failed"
        m["configs"][0].update(status="failed", error=error[:500])
        run.write_manifest(m)


def weight_arrays(model, phase: str) -> dict:
    """{phase_t<i>: trainable i, phase_n<i>: non-trainable i} in the model's variable order.
    (--dump-weights also saves step<k>_t<i>, trainable weights after step k: for tests, small models.)"""
    out = {f"{phase}_t{i}": v.numpy() for i, v in enumerate(model.trainable_variables)}
    out.update({f"{phase}_n{i}": v.numpy() for i, v in enumerate(model.non_trainable_variables)})
    return out


# --- the training loop --------------------------------------------------------------------------
def main(argv=None) -> int:
    from ..procs import watch_launch

    watch_launch()  # exit when `scalesim train` or horovodrun is gone
    cfg = config_from_args(worker_parser().parse_args(argv))
    try:
        cfg.check()
        import horovod.tensorflow as hvd

        hvd.init()
        if hvd.size() != cfg.nodes:
            raise UsageError(f"started with {hvd.size()} ranks but --nodes {cfg.nodes}")
        from .gpu import pin_gpu
        from .hvdrun import configure_tf_threads

        pin_gpu(hvd.local_rank())
        threads = configure_tf_threads(cfg.threads, hvd.local_size())
        try:
            return train(cfg, hvd, threads)
        except BaseException as e:
            if hvd.rank() == 0 and cfg.out:
                mark_failed(cfg.out, f"{type(e).__name__}: {e}")
            raise
    except ScalesimError as e:
        print(f"{MODULE}: error: {e}", file=sys.stderr, flush=True)
        return e.exit_code


def train(cfg: TrainConfig, hvd, threads) -> int:
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    from ..model.schedule import describe, lr_at
    from ..schema import RunDir
    from . import data, progress
    from .models import build
    from .resnet import count_params
    from .step import Trainer

    rank, size = hvd.rank(), hvd.size()
    lead = rank == 0
    spec = cfg.synthetic_spec()
    x_tr, y_tr = data.subset(*data.load_dataset(cfg.dataset, "train", cfg.data, spec), cfg.train_subset, cfg.seed)
    num_classes = data.num_classes_of(cfg.dataset, y_tr, spec)
    spe = data.steps_per_epoch(len(x_tr), cfg.batch)
    if spe == 0:
        raise UsageError(f"global batch {cfg.batch} is larger than the {len(x_tr)} training examples")
    steps = min(spe, cfg.max_steps or spe)
    if cfg.eval:
        x_te, y_te = data.shard(*data.subset(*data.load_dataset(cfg.dataset, "test", cfg.data, spec),
                                             cfg.test_subset, cfg.seed), rank, size)
    recipe = cfg.recipe()
    schedule = recipe.schedule(cfg.batch)

    model = build(cfg.model, x_tr.shape[1:], num_classes, seed=cfg.seed, width=cfg.width,
                  ghost_batch=cfg.ghost_batch, zero_init_residual=cfg.zero_init_residual)
    trainer = Trainer(model, recipe, hvd if size > 1 else None, fp16_allreduce=cfg.fp16_allreduce)
    trainer.broadcast_variables()
    hosts = hosts_facts(hvd)
    initial = weight_arrays(model, "init") if cfg.dump_weights else None

    run = RunDir(cfg.out) if cfg.out and lead else None
    if run is not None:
        record_start(run, cfg, hosts, threads, model, x_tr, num_classes, steps, describe(schedule))

    from .record import Layout, StepRecorder, wall
    from .resnet import grad_bytes

    recorder = StepRecorder(hvd, run, Layout.of(hosts, size, cfg.local_batch, threads[0]),
                            grad_bytes(model, cfg.fp16_allreduce))
    renderer = progress.Renderer() if lead and cfg.progress == "bar" else None

    def report(event, **kw):
        if not lead or cfg.progress == "none":
            return
        if renderer is not None:
            renderer.feed({"event": event, **kw})
        else:
            progress.emit(event, **kw)

    report("message", text=f"{cfg.model} ({count_params(model):,} params) on {cfg.dataset}: "
                           f"{size} ranks x local batch {cfg.local_batch} = global batch {cfg.batch}, "
                           f"{steps} steps/epoch, {threads[0]} threads/rank; {describe(schedule)}")
    lrs, every = [], max(1, steps // 100)
    for epoch in range(cfg.epochs):
        perm = data.epoch_permutation(len(x_tr), epoch, cfg.seed)
        report("epoch_start", epoch=epoch, epochs=cfg.epochs, steps=steps)
        losses, accs = [], []
        t0, timed_steps = time.perf_counter(), steps
        for s in range(steps):
            t_data = wall()
            idx = data.batch_indices(perm, s, cfg.batch, rank, size)
            lr = lr_at(schedule, epoch + s / spe)
            x, y = tf.constant(x_tr[idx]), tf.constant(y_tr[idx])
            t_begin = wall()
            loss, acc, probe = trainer.recorded_step(x, y, lr)
            probe = probe.numpy()   # also waits for the step on an accelerator
            t_end = wall()
            if recorder.add(len(lrs), t_begin, t_end, probe, epoch=epoch, lr=lr, loss=float(loss),
                            data_time=t_begin - t_data):
                recorder.flush()
            losses.append(loss)
            accs.append(acc)
            lrs.append(lr)
            if cfg.dump_weights:
                initial.update({f"step{len(lrs)}_t{i}": v.numpy() for i, v in enumerate(model.trainable_variables)})
            if epoch == 0 and s == 0 and steps > 1:
                # The first step traces and compiles the step; keep it out of the throughput.
                float(loss)
                t0, timed_steps = time.perf_counter(), steps - 1
            if (s + 1) % every == 0 or s + 1 == steps:
                report("step", step=s + 1, loss=float(loss), lr=lr)
        elapsed = time.perf_counter() - t0
        recorder.flush()   # collective: every rank flushes at the same steps
        tr = trainer.sum_across_ranks([float(np.mean(losses)), float(np.mean(accs)), elapsed]) / size
        test = trainer.evaluate(x_te, y_te) if cfg.eval else (float("nan"), float("nan"))
        row = {"epoch": epoch, "lr": lr_at(schedule, epoch), "train_loss": tr[0], "train_acc": tr[1],
               "test_loss": float(test[0]), "test_acc": float(test[1]),
               "images_per_sec": timed_steps * cfg.batch / tr[2] if tr[2] > 0 else float("nan"),
               "elapsed": tr[2], "steps": steps}
        if run is not None:
            run.write_part("epochs", f"epoch-{epoch:04d}", pd.DataFrame([row]))
        report("epoch_end", epochs=cfg.epochs, **row)

    if cfg.dump_weights:
        os.makedirs(cfg.dump_weights, exist_ok=True)
        np.savez(os.path.join(cfg.dump_weights, f"rank{rank}.npz"), lrs=np.asarray(lrs),
                 **initial, **weight_arrays(model, "final"))
    rec = recorder.close()
    if run is not None:
        m = run.read_manifest()
        m["status"] = m["configs"][0]["status"] = "done"
        m["recording"] = rec
        m["noise_nonfinite_skipped"] = rec["noise_nonfinite_skipped"]
        m["configs"][0].update(global_batch=cfg.batch, summary={k: rec.get(k) for k in ("step_time", "b_simple")})
        run.write_manifest(m)
    if renderer is not None:
        renderer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
