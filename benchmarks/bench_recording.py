"""Does scalesim's recording slow the training step? Side by side in ONE 2-rank Horovod run.

Variants, alternated step by step (the order rotates every round, so drift from other jobs on the
machine hits all of them alike); every block is timed the same way from outside, by this script,
as the slowest rank's time, and each variant's median over rounds is compared:
  plain         a textbook Horovod step with no recording at all: one tf.function with
                tf.GradientTape, hvd.grouped_allreduce(Average) and Keras SGD(momentum 0.9)
  recorded      what `scalesim measure` times as the production step: scalesim's Trainer.train_step
                wrapped in its per-step timer and row bookkeeping (Measurer._production)
  unrecorded    Trainer.train_step alone (separates the cost of recording from the Trainer's)
  instrumented  scalesim's split step (separate forward+backward / allreduce / update calls plus
                gradient norms for the noise scale), shown for information: it is never the figure
                reported as step_time
Goal: recorded / plain <= 1.03 (AdaptDL's hooks cost 2.6x in its issue #120).

    .venv/bin/python benchmarks/bench_recording.py [--local-batch 64 --rounds 40 --block 1]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

VARIANTS = ("plain", "recorded", "unrecorded", "instrumented")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--local-batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--block", type=int, default=1, help="steps per variant per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def launch(args) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _relaunch import under_horovodrun

    return under_horovodrun(__file__, args.ranks, ["--local-batch", str(args.local_batch), "--rounds", str(args.rounds),
                                                  "--block", str(args.block), "--warmup", str(args.warmup)])


def worker(args) -> int:
    import numpy as np
    import horovod.tensorflow as hvd

    hvd.init()
    from scalesim.train.hvdrun import configure_tf_threads

    configure_tf_threads(1, hvd.local_size())
    import keras
    import tensorflow as tf

    from scalesim.measure.worker import Measurer

    cfg = {"model": "resnet20", "dataset": "fashion-mnist", "seed": 0}
    m = Measurer(hvd, cfg)
    lr = 0.1
    batches = m._batches(args.local_batch)

    # The textbook step, on its own model copy with the same initial weights.
    from scalesim.train.resnet import build_model

    model = build_model("resnet20", m.x.shape[1:], 10, seed=0)
    opt = keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
    opt.build(model.trainable_variables)

    @tf.function
    def plain_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        grads = tape.gradient(loss, model.trainable_variables)
        grads = hvd.grouped_allreduce(grads, op=hvd.Average)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    rows: list = []

    def run(variant: str):
        if variant == "plain":
            x, y = next(batches)
            plain_step(x, y)
        elif variant == "recorded":
            rows.append({"step": len(rows), "mode": "production", "step_time": m._production(batches, lr)})
        elif variant == "unrecorded":
            x, y = next(batches)
            m.trainer.train_step(x, y, lr)
        else:
            row, _, _ = m._instrumented(batches, lr)
            rows.append(row)

    for v in VARIANTS:
        for _ in range(args.warmup):
            run(v)
    per_step = {v: [] for v in VARIANTS}
    barrier = tf.zeros([1])
    for r in range(args.rounds):
        order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
        for v in order:
            hvd.allreduce(barrier, name="bench_barrier").numpy()
            t0 = time.perf_counter()
            for _ in range(args.block):
                run(v)
            mine = (time.perf_counter() - t0) / args.block
            # A synchronous step is as slow as the slowest rank.
            per_step[v].append(float(hvd.allreduce(tf.constant([mine]), op=hvd.Max, name="bench_max")[0]))
    if hvd.rank() == 0:
        med = {v: float(np.median(t)) for v, t in per_step.items()}
        print(f"ResNet-20, Fashion-MNIST, {hvd.size()} ranks x local batch {args.local_batch}, "
              f"{args.rounds} rounds x {args.block} steps per variant (median per-step time, ms):")
        for v in VARIANTS:
            t = np.array(per_step[v]) * 1e3
            print(f"  {v:<13}{med[v] * 1e3:9.1f}   (blocks: min {t.min():.1f}, max {t.max():.1f})")
        ratios = np.array(per_step["recorded"]) / np.array(per_step["plain"])
        q1, q3 = np.percentile(ratios, [25, 75])
        print(f"recorded / plain       = {med['recorded'] / med['plain']:.3f}   (ratio of medians; paired "
              f"per-round ratios: median {np.median(ratios):.3f}, IQR {q1:.3f}-{q3:.3f})   goal <= 1.03")
        print(f"recorded / unrecorded  = {med['recorded'] / med['unrecorded']:.3f}   (cost of the recording alone)")
        cost = _recording_cost()
        print(f"recording bookkeeping timed directly: {cost * 1e6:.2f} us per step = "
              f"{cost / med['plain'] * 100:.4f} % of the plain step")
        print(f"instrumented / plain   = {med['instrumented'] / med['plain']:.3f}   (split step, never reported "
              f"as step_time)")
    return 0


def _recording_cost(reps: int = 20000) -> float:
    """Seconds per step of what recording adds to a production step: the two timer reads and the
    row appended (Measurer._production / Measurer.measure), without the step itself."""
    rows = []
    t0 = time.perf_counter()
    for i in range(reps):
        a = time.perf_counter()
        b = time.perf_counter()
        rows.append({"step": i, "mode": "production", "step_time": b - a})
    return (time.perf_counter() - t0) / reps


def main(argv=None) -> int:
    args = parse(argv)
    return worker(args) if args.worker else launch(args)


if __name__ == "__main__":
    sys.exit(main())
