"""Does the training core's per-step recording (issue 14) slow the production step? Side by side
in ONE Horovod run: two Trainers on identical models and data, stepped in alternating blocks (order
flipped every round, so drift from other jobs hits both alike), each block timed from outside as
the slowest rank's median step:
  plain     Trainer.train_step: the fused step, nothing recorded
  recorded  what `scalesim train` runs per step: wall-clock bounds, Trainer.recorded_step (two
            squared norms and two tf.timestamp in the graph; with one rank two half-batch passes),
            the probe read, StepRecorder.add, and a flush (allgather + Parquet + TensorBoard) every
            --flush steps (default: within every block, more often than `train`'s 200)
Goal: recorded / plain <= 1.03.

    .venv/bin/python benchmarks/bench_train_recording.py [--ranks 2 --local-batch 64 --rounds 20 --block 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--local-batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--block", type=int, default=10, help="steps per variant per round")
    p.add_argument("--flush", type=int, default=5, help="recorded variant flushes every N steps")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def launch(args) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _relaunch import under_horovodrun

    return under_horovodrun(__file__, args.ranks, sys.argv[1:])


def worker(args) -> int:
    import horovod.tensorflow as hvd
    import numpy as np

    hvd.init()
    from scalesim.train.hvdrun import configure_tf_threads

    threads = configure_tf_threads("auto", hvd.local_size())
    import tensorflow as tf

    from scalesim.schema import RunDir
    from scalesim.train import data
    from scalesim.train.record import Layout, StepRecorder, wall
    from scalesim.train.resnet import build_model, grad_bytes
    from scalesim.train.step import Trainer
    from scalesim.train.worker import hosts_facts

    n, rank = hvd.size(), hvd.rank()
    x, y = data.load_dataset("fashion-mnist", "train")
    trainers = {v: Trainer(build_model(args.model, x.shape[1:], 10, seed=0), hvd=hvd if n > 1 else None)
                for v in ("plain", "recorded")}
    out = tempfile.mkdtemp(prefix="bench-rec-")
    run = RunDir(os.path.join(out, "run")) if rank == 0 else None
    rec = StepRecorder(hvd, run, Layout.of(hosts_facts(hvd), n, args.local_batch, threads[0]),
                       grad_bytes(trainers["plain"].model), flush_steps=args.flush)
    perm = data.epoch_permutation(len(x), 0, 0)
    spe = data.steps_per_epoch(len(x), args.local_batch * n)
    counter = {"s": 0}

    def batch():
        idx = data.batch_indices(perm, counter["s"] % spe, args.local_batch * n, rank, n)
        counter["s"] += 1
        return tf.constant(x[idx]), tf.constant(y[idx])

    def step(v: str):
        if v == "plain":
            xb, yb = batch()
            trainers[v].train_step(xb, yb, 0.05)
            return
        t_data = wall()
        xb, yb = batch()
        t0 = wall()
        loss, _, probe = trainers[v].recorded_step(xb, yb, 0.05)
        probe = probe.numpy()
        t1 = wall()
        if rec.add(counter["s"], t0, t1, probe, epoch=0, lr=0.05, loss=float(loss), data_time=t0 - t_data):
            rec.flush()

    per = {"plain": [], "recorded": []}
    for r in range(args.rounds + 1):          # round 0: tracing and warm-up, not counted
        for v in (("plain", "recorded") if r % 2 else ("recorded", "plain")):
            times = []
            for _ in range(args.block):
                t0 = time.perf_counter()
                step(v)
                times.append(time.perf_counter() - t0)
            mine = float(np.median(times))
            slowest = float(hvd.allreduce(tf.constant([mine]), op=hvd.Max, name="bench_max")[0])
            if r:
                per[v].append(slowest)
    summary = rec.close()
    if rank == 0:
        a, b = np.array(per["recorded"]), np.array(per["plain"])
        print(f"{args.model}, Fashion-MNIST, {n} ranks x local batch {args.local_batch}, {args.rounds} rounds x "
              f"{args.block} steps per variant, flush every {args.flush} steps (slowest rank's median step, ms):")
        print(f"  plain     {np.median(b) * 1e3:8.1f}   recorded {np.median(a) * 1e3:8.1f}")
        print(f"recorded / plain = {np.median(a) / np.median(b):.3f} (ratio of medians); paired per-round ratios: "
              f"median {np.median(a / b):.3f}, IQR {np.percentile(a / b, 25):.3f}-{np.percentile(a / b, 75):.3f}"
              f"   goal <= 1.03")
        print(f"recorded steps written: {summary['steps']}, B_simple {summary.get('b_simple')}")
    return 0


def main(argv=None) -> int:
    args = parse(argv)
    return worker(args) if args.worker else launch(args)


if __name__ == "__main__":
    sys.exit(main())
