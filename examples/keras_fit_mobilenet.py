"""Your own Keras model in your own model.fit loop, recorded by scalesim (any number of ranks):

    horovodrun -np 2 -H localhost:2 --gloo python examples/keras_fit_mobilenet.py --run-dir runs/mobilenet
    scalesim fit runs/mobilenet            # the run directory is the one `scalesim measure` writes

keras.applications MobileNet (alpha 0.25) on small synthetic images (32x32x3, 10 classes). The
three scalesim lines are marked. --bench instead alternates blocks of steps of two identical
models in this one run, one recorded (DistributedOptimizer + Recorder) and one not (the same
allreduce, no probe, no callback), and prints the per-step time of both: the recording's overhead.
"""
import argparse
import time

import numpy as np

import scalesim.keras as sk                                   # scalesim (1/3)

p = argparse.ArgumentParser()
p.add_argument("--run-dir", default="runs/keras-mobilenet")
p.add_argument("--local-batch", type=int, default=32)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--steps", type=int, default=40, help="steps per epoch")
p.add_argument("--image-size", type=int, default=32)
p.add_argument("--alpha", type=float, default=0.25)
p.add_argument("--fp16-allreduce", action="store_true")
p.add_argument("--bench", action="store_true", help="paired recorded vs unrecorded blocks (overhead)")
p.add_argument("--rounds", type=int, default=12)
p.add_argument("--block", type=int, default=10)
args = p.parse_args()

hvd = sk.init()                                               # scalesim (2/3): hvd.init + GPU pin + threads
import keras  # noqa: E402  (after the threads are set)
import tensorflow as tf  # noqa: E402

rng = np.random.default_rng(hvd.rank())                       # each rank its own examples
n = args.local_batch * args.steps
x = rng.random((n, args.image_size, args.image_size, 3), dtype=np.float32)
# Learnable labels (a fixed random linear teacher, the same on every rank), so the gradient has signal.
teacher = np.random.default_rng(12345).normal(size=(x[0].size, 10)).astype(np.float32)
y = np.argmax((x.reshape(n, -1) - 0.5) @ teacher, axis=1).astype(np.int32)


def make(record=True):
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNet(weights=None, input_shape=x.shape[1:], classes=10, alpha=args.alpha,
                                         classifier_activation=None)
    opt = sk.DistributedOptimizer(keras.optimizers.SGD(0.02 * hvd.size(), momentum=0.9),
                                  fp16_allreduce=args.fp16_allreduce, record=record)
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


if not args.bench:
    model = make()
    rec = sk.Recorder(args.run_dir, local_batch=args.local_batch)   # scalesim (3/3)
    model.fit(x, y, batch_size=args.local_batch, epochs=args.epochs, shuffle=True,
              verbose=2 if hvd.rank() == 0 else 0, callbacks=[sk.BroadcastVariables(), rec])
    if hvd.rank() == 0:
        print(f"run directory: {args.run_dir}  ({rec.summary})")
    raise SystemExit(0)


class Cadence(keras.callbacks.Callback):
    """Time between successive batch starts: the step plus every callback's work for it."""

    def __init__(self):
        super().__init__()
        self.t = []

    def on_train_batch_begin(self, batch, logs=None):
        self.t.append(time.perf_counter())


recorded, plain = make(True), make(False)
# Flushes (allgather of the rows + Parquet + TensorBoard; every 200 steps and at epoch end by default)
# happen here at each block's end, outside the step cadence: they are timed on their own below and
# charged at the default rate of one per 200 steps.
rec = sk.Recorder(args.run_dir, local_batch=args.local_batch, flush_steps=10 ** 9)
flush_times = []


class _TimedFlush(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        if not hasattr(rec.session.recorder, "_untimed_flush"):
            r = rec.session.recorder
            r._untimed_flush = r.flush

            def timed():
                t0 = time.perf_counter()
                r._untimed_flush()
                flush_times.append(time.perf_counter() - t0)
            r.flush = timed


ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(args.local_batch)
cad = {"recorded": Cadence(), "plain": Cadence()}
cbs = {"recorded": [cad["recorded"], sk.BroadcastVariables(), rec, _TimedFlush()],
       "plain": [cad["plain"], sk.BroadcastVariables()]}
models = {"recorded": recorded, "plain": plain}
per = {"recorded": [], "plain": []}
for r in range(args.rounds + 1):                              # round 0 traces and warms up
    for v in (("recorded", "plain") if r % 2 else ("plain", "recorded")):
        cad[v].t = []
        models[v].fit(ds, steps_per_epoch=args.block + 1, epochs=1, verbose=0, callbacks=cbs[v])
        mine = float(np.median(np.diff(cad[v].t)))
        slowest = float(hvd.allreduce(tf.constant([mine]), op=hvd.Max, name="bench_max")[0])
        if r:
            per[v].append(slowest)
if hvd.rank() == 0:
    a, b = np.array(per["recorded"]), np.array(per["plain"])
    print(f"MobileNet alpha {args.alpha}, {args.image_size}x{args.image_size}x3, {hvd.size()} ranks x local batch "
          f"{args.local_batch}, {args.rounds} rounds x {args.block} steps per variant (slowest rank's median step):")
    print(f"  plain     {np.median(b) * 1e3:8.1f} ms   recorded {np.median(a) * 1e3:8.1f} ms")
    flush = float(np.median(flush_times)) if flush_times else 0.0
    print(f"recorded / plain = {np.median(a) / np.median(b):.3f} (ratio of medians); paired per-round ratios: "
          f"median {np.median(a / b):.3f}, IQR {np.percentile(a / b, 25):.3f}-{np.percentile(a / b, 75):.3f}")
    print(f"flush (every 200 steps and at epoch end): median {flush * 1e3:.1f} ms over {len(flush_times)} flushes of "
          f"{args.block + 1} steps = {flush / 200 / np.median(b) * 100:.2f} % of a plain step at 1 per 200 steps")
    print(f"recorded / plain incl. flushes = {(np.median(a) + flush / 200) / np.median(b):.3f}   goal <= 1.03")
