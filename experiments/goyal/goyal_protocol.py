"""The study plan: which (global batch, LR arm, seed) points exist and with what settings.

Goyal et al. 2017 trained 90 epochs (warmup 5, x0.1 at 30/60/80). Here the same schedule is
compressed 10x to a 9-epoch budget over a fixed 8,192-image Fashion-MNIST subset: warmup 0.5
epoch, x0.1 at epochs 3, 6, 8 (the budget the shared 2-core machine allows in ~45 min). Arms (Goyal Table 1 / Fig. 2):
  a  no scaling          eta = 0.1 for every B
  b  linear, no warmup   eta = 0.1 * B/256 from step 0
  c  linear + warmup     eta ramps 0.1 -> 0.1 * B/256 over the warmup (only when eta > 0.1)
Below B = 256 the linear rule lowers eta, there is nothing to warm up and b == c; at B = 256 all
arms coincide, so those duplicates are not run (analysis maps them).
"""
from __future__ import annotations

from typing import NamedTuple

ARMS = {"a": "no LR scaling", "b": "linear scaling, no warmup", "c": "linear scaling + gradual warmup"}
REF_BATCH = 256


class Protocol(NamedTuple):
    name: str
    model: str = "resnet8"            # ResNet-6n+2 with n=1 (see driver.build)
    width: int = 8                    # first-stage filters (16 in He et al.'s ResNet-20)
    ghost_batch: int = 32             # Goyal's per-worker batch: BN statistics over 32 examples
    train_size: int = 8192            # power of two: every B divides it, no dropped remainder
    val_size: int = 1024              # held out from the other 51,808 training images
    epochs: float = 9.0
    warmup_epochs: float = 0.5
    decay_epochs: tuple = (3.0, 6.0, 8.0)
    evals_per_epoch: int = 4          # validation accuracy curve for steps-to-target
    test_size: int | None = None      # None: the full 10k test set
    batches: tuple = (128, 256, 512, 1024, 2048, 4096, 8192)
    # batches run per arm with the first seed (c everywhere; a, b where they tell most)
    arm_batches: tuple = (("a", (128, 1024, 8192)), ("b", (512, 1024, 2048, 4096, 8192)),
                          ("c", (128, 256, 512, 1024, 2048, 4096, 8192)))
    seeds: tuple = (0, 1, 2)
    key_points: tuple = ((128, "c"), (256, "c"), (8192, "b"), (8192, "c"))   # run with every seed
    hvd_point: tuple = (256, "c", 0)  # also run on 2 real Horovod ranks
    hvd_ranks: int = 2
    # steps-to-target metrics (analysis only): a window's mean training loss is smooth; validation
    # accuracy (1,024 images, per-worker BN statistics) is noisier
    targets: tuple = (("train_loss", 1.0), ("val_acc", 0.6), ("val_acc", 0.7))
    noise_beta: float = 0.9


FULL = Protocol("full")
QUICK = Protocol("quick", train_size=2048, val_size=512, epochs=3.0, warmup_epochs=0.5,
                 decay_epochs=(2.0,), evals_per_epoch=2, test_size=2000, batches=(64, 128, 512),
                 arm_batches=(("a", (64, 512)), ("b", (512,)), ("c", (64, 128, 512))),
                 seeds=(0, 1), key_points=((64, "c"),), hvd_point=(128, "c", 0), targets=(("train_loss", 2.0), ("val_acc", 0.5)))


class Point(NamedTuple):
    global_batch: int
    arm: str
    seed: int
    ranks: int = 1                    # >1: a real multi-rank Horovod run

    @property
    def id(self) -> str:
        return f"B{self.global_batch:05d}-{self.arm}-s{self.seed}" + (f"-hvd{self.ranks}" if self.ranks > 1 else "")


def equivalent_arms(batch: int, arm: str) -> tuple:
    """Arms whose schedule is identical to `arm` at this batch (for filling the table)."""
    if batch == REF_BATCH:
        return ("a", "b", "c")
    if batch < REF_BATCH and arm == "c":
        return ("b", "c")
    return (arm,)


def plan(p: Protocol) -> list:
    """Points in priority order: the seed-0 grid, the Horovod check, then the extra seeds."""
    runs = dict(p.arm_batches)
    first = [Point(b, a, p.seeds[0]) for b in p.batches for a in sorted(runs) if b in runs[a]
             and equivalent_arms(b, a)[-1] == a]   # skip arms that coincide with a later one
    hb, ha, hs = p.hvd_point
    hvd = [Point(hb, ha, hs, p.hvd_ranks)] if p.hvd_ranks > 1 else []
    extra = [Point(b, a, s) for s in p.seeds[1:] for b, a in p.key_points]
    return first + hvd + extra


def recipe_kwargs(p: Protocol, point: Point) -> dict:
    """scalesim.train.step.Recipe fields for a point (Goyal's ref 0.1 @ 256, momentum 0.9)."""
    rule = "none" if point.arm == "a" else "linear"
    warm = p.warmup_epochs if point.arm == "c" and point.global_batch > REF_BATCH else 0.0
    return dict(ref_lr=0.1, ref_batch=REF_BATCH, rule=rule, warmup_epochs=warm,
                decay_epochs=tuple(p.decay_epochs), decay_factor=0.1)
