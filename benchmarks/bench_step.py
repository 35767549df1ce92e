"""Single-rank training-step speed: scalesim's Trainer.train_step versus a plain Keras/TF step
(tf.GradientTape + keras.optimizers.SGD.apply_gradients in one tf.function) on the same ResNet,
batch, data and thread settings. The two are timed ALTERNATELY, round after round, in one process,
so machine load (other jobs on shared cores) hits both alike. Rounds are short so that each pair of
blocks sees nearly the same load; the median of the per-round (paired) ratios is the headline.

    .venv/bin/python benchmarks/bench_step.py [--model resnet20] [--batch 128] [--rounds 20] [--steps 4]

Goal: ratio (scalesim / plain) >= 0.95.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--steps", type=int, default=4, help="timed steps per method per round")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = all usable cores)")
    args = p.parse_args(argv)

    from scalesim.train.hvdrun import usable_cores

    threads = args.threads or usable_cores()
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from scalesim.train.data import load_dataset
    from scalesim.train.resnet import build_model
    from scalesim.train.step import Recipe, Trainer

    x, y = load_dataset("fashion-mnist", "train")
    xb, yb = tf.constant(x[:args.batch]), tf.constant(y[:args.batch])
    lr = 0.1
    recipe = Recipe()

    ours = Trainer(build_model(args.model, x.shape[1:], 10), recipe, hvd=None)

    plain_model = build_model(args.model, x.shape[1:], 10)
    opt = keras.optimizers.SGD(learning_rate=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def plain_step(xs, ys):
        with tf.GradientTape() as tape:
            loss = loss_fn(ys, plain_model(xs, training=True))
        grads = tape.gradient(loss, plain_model.trainable_variables)
        opt.apply_gradients(zip(grads, plain_model.trainable_variables))
        return loss

    methods = {"scalesim": lambda: ours.train_step(xb, yb, lr)[0], "plain": lambda: plain_step(xb, yb)}
    for fn in methods.values():          # trace + warm up
        for _ in range(2):
            float(fn())

    rates = {k: [] for k in methods}
    cpu_rates = {k: [] for k in methods}   # images per CPU-second of this process: less sensitive to load
    for r in range(args.rounds):
        order = list(methods) if r % 2 == 0 else list(methods)[::-1]   # alternate who goes first
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                out = methods[name]()
            float(out)                   # wait for the last step
            rates[name].append(args.steps * args.batch / (time.perf_counter() - t0))
            cpu_rates[name].append(args.steps * args.batch / (time.process_time() - c0))
        print(f"round {r + 1}: " + "  ".join(f"{k} {rates[k][-1]:7.1f} img/s" for k in methods), flush=True)

    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{args.model} batch {args.batch}, {threads} intra-op threads, {args.rounds} rounds x {args.steps} steps")
    for k in methods:
        print(f"  {k:8s} median {med[k]:7.1f} images/s  (min {min(rates[k]):.1f}, max {max(rates[k]):.1f})")
    ratios = sorted(a / b for a, b in zip(rates["scalesim"], rates["plain"]))
    q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
    print(f"ratio scalesim/plain: median of paired rounds {statistics.median(ratios):.3f} "
          f"(quartiles {q1:.3f}-{q3:.3f}); ratio of medians {med['scalesim'] / med['plain']:.3f}; goal >= 0.95")
    cpu = {k: statistics.median(v) for k, v in cpu_rates.items()}
    print(f"images per CPU-second: scalesim {cpu['scalesim']:.1f}, plain {cpu['plain']:.1f}, "
          f"ratio {cpu['scalesim'] / cpu['plain']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
