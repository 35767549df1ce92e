"""Training configuration: the `TrainConfig` every rank runs with, the command-line flags shared
by `scalesim train` and the worker, and the flags that reproduce a config on a rank's command line.
No TensorFlow here."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from ..errors import UsageError
from .recipe import Recipe


@dataclass
class TrainConfig:
    model: str = "resnet20"
    dataset: str = "fashion-mnist"
    data: str | None = None
    batch: int = 128                 # GLOBAL batch
    epochs: int = 1
    nodes: int = 1                   # ranks
    train_subset: int | None = None
    synthetic_shape: str = "28,28,1"   # H,W,C of --dataset synthetic
    synthetic_size: int = 8192         # training examples of --dataset synthetic
    num_classes: int = 10              # classes of --dataset synthetic
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
    fp16_allreduce: bool = False       # hvd.Compression.fp16 on the gradient allreduce
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

        import math

        for f in fields(self):  # NaN passes every `x < 0` test below; inf is no learning rate
            v = getattr(self, f.name)
            vals = v if isinstance(v, (tuple, list)) else (v,)
            if any(isinstance(x, float) and not math.isfinite(x) for x in vals):
                raise UsageError(f"--{f.name.replace('_', '-')} must be finite (got {v})")
        if not (self.ref_lr > 0 and self.warmup_epochs >= 0 and self.decay_factor > 0):
            raise UsageError("need --ref-lr > 0, --warmup-epochs >= 0 and --decay-factor > 0")
        if self.nodes < 1:
            raise UsageError(f"need at least 1 rank (got {self.nodes})")
        if self.batch > 2 ** 24 * self.nodes:
            raise UsageError(f"--batch {self.batch}: more than {2 ** 24} samples per rank per step is beyond "
                             "any dataset")
        if self.batch < 1 or self.batch % self.nodes:
            raise UsageError(f"--batch {self.batch} must be a positive multiple of the {self.nodes} ranks "
                             "(nodes x devices per node: it is the global batch, split evenly across ranks)")
        if self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1 (got {self.epochs})")
        if self.model not in MODELS:
            from .models import check_arch

            check_arch(self.model, light=True)   # keras:<application> | module:function, or a UsageError
        if self.dataset not in DATASETS:
            raise UsageError(f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        for name in ("train_subset", "test_subset", "max_steps", "width", "ghost_batch"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be positive (got {v})")
        if self.threads != "auto" and not (str(self.threads).isdigit() and int(self.threads) > 0):
            raise UsageError(f"--threads-per-rank must be 'auto' or a positive integer (got {self.threads!r})")
        if not 0.0 <= self.momentum < 1.0 or self.weight_decay < 0.0:
            raise UsageError("need 0 <= --momentum < 1 and --weight-decay >= 0")
        self.synthetic_spec()
        if self.synthetic_size < 1 or self.num_classes < 2:
            raise UsageError("--synthetic-size must be positive and --num-classes at least 2")
        self.recipe().schedule(self.batch)
        return self

    def synthetic_spec(self):
        from .data import SyntheticSpec

        try:
            shape = tuple(int(t) for t in str(self.synthetic_shape).split(","))
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise UsageError(f"--synthetic-shape must be H,W,C (got {self.synthetic_shape!r})")
        return SyntheticSpec(shape, self.num_classes, self.synthetic_size, max(1, self.synthetic_size // 8),
                             self.seed)


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
    p.add_argument("--synthetic-shape", default=d.synthetic_shape, metavar="H,W,C",
                   help="image shape of --dataset synthetic (e.g. 224,224,3 with resnet50)")
    p.add_argument("--synthetic-size", type=int, default=d.synthetic_size, metavar="N",
                   help="training examples of --dataset synthetic")
    p.add_argument("--num-classes", type=int, default=d.num_classes, help="classes of --dataset synthetic")
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
    p.add_argument("--fp16-allreduce", nargs="?", const=True, default=False,
                   type=lambda s: str(s).lower() in ("1", "true", "yes"),
                   help="send gradients as float16 in the allreduce (hvd.Compression.fp16)")
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
