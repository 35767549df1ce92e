"""One Horovod rank of `scalesim train` (started by horovodrun; `python -m scalesim.train.worker`).

Every rank loads the dataset, takes its slice of each global batch from a per-epoch permutation
shared by all ranks (a fresh random partition per epoch), starts from rank 0's variables, and runs
the fused step. Rank 0 alone writes the run directory: the manifest, then one `epochs` part per
epoch as soon as the epoch ends. No TensorFlow at module level (the launcher imports this module
for its argument definitions).
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import sys
import time
from dataclasses import asdict, dataclass, fields

from ..errors import ScalesimError, UsageError
from .recipe import Recipe

MODULE = "scalesim.train.worker"


@dataclass
class TrainConfig:
    model: str = "resnet20"
    dataset: str = "fashion-mnist"
    data: str | None = None
    batch: int = 128                 # GLOBAL batch
    epochs: int = 1
    nodes: int = 1                   # ranks
    train_subset: int | None = None
    test_subset: int | None = None
    eval: bool = True
    max_steps: int | None = None     # per epoch, for quick runs and tests
    threads: str = "auto"
    seed: int = 0
    width: int | None = None
    zero_init_residual: bool = True
    ghost_batch: int | None = None
    lr_rule: str = "linear"
    ref_lr: float = 0.1
    ref_batch: int = 256
    warmup_epochs: float = 5.0
    decay_epochs: tuple = ()
    decay_factor: float = 0.1
    momentum: float = 0.9
    momentum_correction: bool = True
    weight_decay: float = 1e-4
    wd_exclude_bn_bias: bool = True
    out: str | None = None
    dump_weights: str | None = None  # directory: rank<r>.npz with initial and final variables
    progress: str = "bar"            # bar (tqdm on rank 0) | events (for the launcher) | none

    @property
    def local_batch(self) -> int:
        return self.batch // self.nodes

    def recipe(self) -> Recipe:
        return Recipe(self.ref_lr, self.ref_batch, self.lr_rule, self.warmup_epochs,
                      tuple(self.decay_epochs), self.decay_factor, self.momentum,
                      self.momentum_correction, self.weight_decay, self.wd_exclude_bn_bias)

    def check(self) -> "TrainConfig":
        from .data import DATASETS
        from . import MODELS

        if self.nodes < 1:
            raise UsageError(f"--nodes must be at least 1 (got {self.nodes})")
        if self.batch < 1 or self.batch % self.nodes:
            raise UsageError(f"--batch {self.batch} must be a positive multiple of --nodes {self.nodes} "
                             "(it is the global batch, split evenly across ranks)")
        if self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1 (got {self.epochs})")
        if self.model not in MODELS:
            raise UsageError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.dataset not in DATASETS:
            raise UsageError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        for name in ("train_subset", "test_subset", "max_steps", "width", "ghost_batch"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be positive (got {v})")
        if self.threads != "auto" and not (str(self.threads).isdigit() and int(self.threads) > 0):
            raise UsageError(f"--threads must be 'auto' or a positive integer (got {self.threads!r})")
        self.recipe().schedule(self.batch)
        return self


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """The training flags shared by `scalesim train` and the worker."""
    d = TrainConfig()
    p.add_argument("--nodes", type=int, default=d.nodes,
                   help="data-parallel workers = Horovod ranks (-np); local processes unless --hosts")
    p.add_argument("--batch", type=int, default=d.batch,
                   help="GLOBAL batch size (summed over all ranks; each rank gets batch/nodes)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--model", default=d.model, help="resnet20 | resnet32 | resnet56 | resnet50")
    p.add_argument("--dataset", default=d.dataset, help="fashion-mnist | synthetic | npz | folder")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="dataset location (Fashion-MNIST dir, .npz file, or image folder)")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="train on a fixed random subset of N examples")
    p.add_argument("--test-subset", type=int, default=None, metavar="N")
    p.add_argument("--no-eval", dest="eval", action="store_false", help="skip test-set evaluation")
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="at most N steps per epoch")
    p.add_argument("--threads", default=d.threads,
                   help="TensorFlow intra-op threads per rank: 'auto' = cores // ranks on the host")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--width", type=int, default=None,
                   help="first-stage filters (default 16 CIFAR ResNets, 64 ResNet-50)")
    p.add_argument("--no-zero-init-residual", dest="zero_init_residual", action="store_false",
                   help="start each residual branch's last BN gamma at 1 instead of 0")
    p.add_argument("--ghost-batch", type=int, default=None, metavar="G",
                   help="normalise BN over groups of G examples within each rank's batch")
    g = p.add_argument_group("learning-rate recipe (Goyal et al. 2017)")
    g.add_argument("--lr-rule", default=d.lr_rule, help="linear (eta = ref_lr*B/ref_batch) | sqrt | none")
    g.add_argument("--ref-lr", type=float, default=d.ref_lr)
    g.add_argument("--ref-batch", type=int, default=d.ref_batch)
    g.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    g.add_argument("--decay-epochs", type=_floats, default=(), metavar="E1,E2",
                   help="epochs at which the LR is multiplied by --decay-factor")
    g.add_argument("--decay-factor", type=float, default=d.decay_factor)
    g.add_argument("--momentum", type=float, default=d.momentum)
    g.add_argument("--no-momentum-correction", dest="momentum_correction", action="store_false")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--wd-on-bn-bias", dest="wd_exclude_bn_bias", action="store_false",
                   help="also decay BN gamma/beta and biases")


def _floats(text: str) -> tuple:
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of epochs: {text!r}") from None


def config_from_args(args) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def to_argv(cfg: TrainConfig) -> list[str]:
    """Worker command-line flags reproducing cfg (the inverse of the parser)."""
    d, argv = TrainConfig(), []
    negated = {"eval": "--no-eval", "zero_init_residual": "--no-zero-init-residual",
               "momentum_correction": "--no-momentum-correction", "wd_exclude_bn_bias": "--wd-on-bn-bias"}
    for f in fields(TrainConfig):
        v = getattr(cfg, f.name)
        if f.name in negated:
            if not v:
                argv.append(negated[f.name])
        elif v is not None and v != getattr(d, f.name) or f.name in ("nodes", "batch"):
            flag = "--" + f.name.replace("_", "-")
            argv += [flag, ",".join(f"{e:g}" for e in v) if f.name == "decay_epochs" else str(v)]
    return argv


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


def mark_failed(out: str, error: str) -> None:
    from ..schema import RunDir

    run = RunDir(out)
    if run.exists():
        m = run.read_manifest()
        m["status"] = "failed"
        m["configs"][0].update(status="failed", error=error[:500])
        run.write_manifest(m)


def weight_arrays(model, phase: str) -> dict:
    """{phase_t<i>: trainable i, phase_n<i>: non-trainable i} in the model's variable order."""
    out = {f"{phase}_t{i}": v.numpy() for i, v in enumerate(model.trainable_variables)}
    out.update({f"{phase}_n{i}": v.numpy() for i, v in enumerate(model.non_trainable_variables)})
    return out


# --- the training loop --------------------------------------------------------------------------
def main(argv=None) -> int:
    cfg = config_from_args(worker_parser().parse_args(argv))
    try:
        cfg.check()
        import horovod.tensorflow as hvd

        hvd.init()
        if hvd.size() != cfg.nodes:
            raise UsageError(f"started with {hvd.size()} ranks but --nodes {cfg.nodes}")
        from .hvdrun import configure_tf_threads

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

    from ..model.schedule import describe, lr_at
    from ..schema import RunDir
    from . import data, progress
    from .resnet import build_model, count_params, grad_bytes
    from .step import Trainer

    rank, size = hvd.rank(), hvd.size()
    lead = rank == 0
    x_tr, y_tr = data.subset(*data.load_dataset(cfg.dataset, "train", cfg.data), cfg.train_subset, cfg.seed)
    num_classes = data.num_classes_of(cfg.dataset, y_tr)
    spe = data.steps_per_epoch(len(x_tr), cfg.batch)
    if spe == 0:
        raise UsageError(f"global batch {cfg.batch} is larger than the {len(x_tr)} training examples")
    steps = min(spe, cfg.max_steps or spe)
    if cfg.eval:
        x_te, y_te = data.shard(*data.subset(*data.load_dataset(cfg.dataset, "test", cfg.data),
                                             cfg.test_subset, cfg.seed), rank, size)
    recipe = cfg.recipe()
    schedule = recipe.schedule(cfg.batch)

    model = build_model(cfg.model, x_tr.shape[1:], num_classes, cfg.ghost_batch, cfg.seed,
                        cfg.width, cfg.zero_init_residual)
    trainer = Trainer(model, recipe, hvd if size > 1 else None)
    trainer.broadcast_variables()
    hosts = hosts_facts(hvd)
    initial = weight_arrays(model, "init") if cfg.dump_weights else None

    run = RunDir(cfg.out) if cfg.out and lead else None
    if run is not None:
        manifest = run.read_manifest() if run.exists() else base_manifest(cfg, run.run_id)
        manifest["configs"][0].update(num_nodes=len(hosts), status="running")
        manifest.update(hosts=hosts, threads_per_rank=threads[0], inter_op_threads=threads[1],
                        versions=versions(), schedule=describe(schedule),
                        model={"name": cfg.model, "params": count_params(model),
                               "grad_bytes": grad_bytes(model), "input_shape": list(x_tr.shape[1:]),
                               "num_classes": num_classes},
                        dataset={"name": cfg.dataset, "train_examples": int(len(x_tr)),
                                 "steps_per_epoch": steps})
        run.write_manifest(manifest)

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
            idx = data.batch_indices(perm, s, cfg.batch, rank, size)
            lr = lr_at(schedule, epoch + s / spe)
            loss, acc = trainer.train_step(x_tr[idx], y_tr[idx], lr)
            losses.append(loss)
            accs.append(acc)
            lrs.append(lr)
            if epoch == 0 and s == 0 and steps > 1:
                # The first step traces and compiles the step; keep it out of the throughput.
                float(loss)
                t0, timed_steps = time.perf_counter(), steps - 1
            if (s + 1) % every == 0 or s + 1 == steps:
                report("step", step=s + 1, loss=float(loss), lr=lr)
        elapsed = time.perf_counter() - t0
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
    if run is not None:
        m = run.read_manifest()
        m["configs"][0]["status"] = "done"
        m["status"] = "done"
        run.write_manifest(m)
    if renderer is not None:
        renderer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
