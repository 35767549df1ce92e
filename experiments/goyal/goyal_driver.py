"""Thin study driver: trains one point with scalesim.train (model, Trainer, data order) and
returns its record. Imports TensorFlow, so run.py imports this lazily.

Gradient noise at no extra compute (McCandlish et al. 2018, App. A.1):
  one process:  the global batch B is computed as two halves of B/2 (same FLOPs as one pass),
                the mean of the two half gradients is the batch gradient that is applied;
                |g_half|^2 (mean of the two) and |g_B|^2 feed estimate_noise(B/2, B)
  n ranks:      each rank's local mean gradient (B/n) and the allreduced one (B), the same pair
                as above when n = 2
so emulated and real runs measure the same quantity.
"""
from __future__ import annotations

import math
import time

import numpy as np

from scalesim.measure.noise import NoiseTracker
from scalesim.model.schedule import lr_at, peak_lr
from scalesim.train import data as D
from scalesim.train import resnet as R

from goyal_protocol import Point, Protocol, recipe_kwargs

SPLIT_SEED = 2017       # fixes the train subset / validation split for every point


def load_data(p: Protocol) -> dict:
    x, y = D.load_dataset("fashion-mnist", "train")
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    tr, va = perm[:p.train_size], perm[p.train_size:p.train_size + p.val_size]
    xt, yt = D.load_dataset("fashion-mnist", "test")
    if p.test_size:
        xt, yt = xt[:p.test_size], yt[:p.test_size]
    return {"train": (x[tr], y[tr]), "val": (x[va], y[va]), "test": (xt, yt)}


def build(p: Protocol, seed: int, ghost_batch: int):
    return R.build_model(p.model, (28, 28, 1), 10, ghost_batch=ghost_batch, seed=seed, width=p.width)


def _noisy_step(trainer, x, y, lr, hvd):
    """One SGD step; returns (loss, small |g|^2 list, big |g|^2)."""
    from scalesim.train.step import sqnorm

    if hvd is None:
        (g1, g2), full, (l1, l2) = trainer.half_batch_grads(x, y)
        small = [float(sqnorm(g1)), float(sqnorm(g2))]
        loss = 0.5 * (float(l1) + float(l2))
    else:
        g, l, _ = trainer.compute_grads(x, y)
        full = trainer.allreduce(g)
        n = trainer.num_replicas
        # One collective for both rank means: |local mean gradient|^2 (= (n |g|)^2) and the loss.
        local_sq, loss = trainer.sum_across_ranks([float(sqnorm(g)) * trainer.local_mean_scale ** 2,
                                                   float(l)]) / n
        small = [local_sq]
    trainer.apply(full, lr)
    return loss, small, float(sqnorm(full))


def train_point(p: Protocol, point: Point, data: dict, hvd=None, log=print) -> dict:
    import keras
    import tensorflow as tf

    from scalesim.train.step import Recipe, Trainer

    keras.backend.clear_session()
    tf.random.set_seed(point.seed)
    ranks = hvd.size() if hvd else 1
    rank = hvd.rank() if hvd else 0
    B = point.global_batch
    model = build(p, point.seed, p.ghost_batch)
    recipe = Recipe(**recipe_kwargs(p, point))
    trainer = Trainer(model, recipe, hvd=hvd)
    trainer.broadcast_variables(0)
    sched = recipe.schedule(B)
    xtr, ytr = data["train"]
    xva, yva = D.shard(*data["val"], rank, ranks)
    spe = D.steps_per_epoch(len(xtr), B)
    total = int(round(p.epochs * spe))
    every = max(1, spe // p.evals_per_epoch)
    b_small = B // 2 if hvd is None else B // ranks
    tracker = NoiseTracker(b_small, B, beta=p.noise_beta)
    curve, win, diverged = [], {"loss": [], "n0": 0}, False
    t0, train_time = time.time(), 0.0
    for step in range(total):
        epoch_i, s_in = divmod(step, spe)
        if s_in == 0:
            perm = D.epoch_permutation(len(xtr), epoch_i, seed=point.seed)
        idx = D.batch_indices(perm, s_in, B, rank, ranks)
        lr = lr_at(sched, step / spe)
        ts = time.time()
        loss, small, big = _noisy_step(trainer, tf.constant(xtr[idx]), tf.constant(ytr[idx]), lr, hvd)
        train_time += time.time() - ts
        tracker.add(step, small, big)
        win["loss"].append(loss)
        if not math.isfinite(loss):
            diverged = True
        if (step + 1) % every == 0 or step + 1 == total or diverged:
            vl, va = trainer.evaluate(xva, yva, batch_size=1024)
            rows = tracker.rows[win["n0"]:]
            curve.append({"step": step + 1, "epoch": (step + 1) / spe, "examples": (step + 1) * B,
                          "lr": lr, "train_loss": float(np.mean(win["loss"])), "val_loss": float(vl),
                          "val_acc": float(va), "noise_n": len(rows),
                          "grad_sqr": float(np.mean([r["grad_sqr"] for r in rows])) if rows else None,
                          "grad_var": float(np.mean([r["grad_var"] for r in rows])) if rows else None,
                          "b_simple_ema": tracker.rows[-1]["b_simple"] if tracker.rows else None})
            win = {"loss": [], "n0": len(tracker.rows)}
            if rank == 0:
                log(f"  {point.id} step {step + 1}/{total} ep {(step + 1) / spe:.2f} lr {lr:.3g} "
                    f"loss {curve[-1]['train_loss']:.3f} val_acc {va:.4f} B_simple {curve[-1]['b_simple_ema']}")
        if diverged:
            break
    xte, yte = D.shard(*data["test"], rank, ranks)
    tl, ta = trainer.evaluate(xte, yte, batch_size=1024)
    wall = time.time() - t0
    steps_done = curve[-1]["step"] if curve else 0
    return {"point": point._asdict() | {"id": point.id}, "status": "done", "diverged": diverged,
            "protocol": p.name, "model": p.model, "width": p.width, "params": R.count_params(model),
            "ghost_batch": p.ghost_batch, "train_size": len(xtr), "epochs": p.epochs,
            "steps_per_epoch": spe, "total_steps": total, "steps_done": steps_done,
            "peak_lr": float(peak_lr(sched)),
            "warmup_epochs": sched.warmup_epochs, "decay_epochs": list(sched.decay_epochs),
            "test_loss": float(tl), "test_acc": float(ta), "test_err": 100.0 * (1.0 - float(ta)),
            "final_val_acc": curve[-1]["val_acc"] if curve else None,
            "noise": tracker.summary(), "curve": curve, "wall_s": wall,
            "images_per_s": steps_done * B / train_time if train_time else None,
            "b_noise_pair": [b_small, B]}
