"""Your own tf.GradientTape loop, recorded by scalesim (any number of ranks):

    horovodrun -np 2 -H localhost:2 --gloo python examples/custom_loop.py --run-dir runs/custom
    scalesim fit runs/custom

A small Keras CNN on Fashion-MNIST (Debian's dataset-fashion-mnist) if present, else on synthetic
28x28 images. The scalesim lines are marked; everything else is a textbook Horovod loop.
"""
import argparse

import numpy as np

import scalesim.keras as sk                                   # scalesim

p = argparse.ArgumentParser()
p.add_argument("--run-dir", default="runs/custom-loop")
p.add_argument("--local-batch", type=int, default=64)
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--steps", type=int, default=50, help="steps per epoch")
args = p.parse_args()

hvd = sk.init()                                               # scalesim: hvd.init + GPU pin + threads
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

try:
    from scalesim.train.data import load_dataset
    x, y = load_dataset("fashion-mnist", "train")
except Exception:                                             # no dataset package: learnable synthetic data
    rng = np.random.default_rng(0)
    x = rng.random((8192, 28, 28, 1), dtype=np.float32)
    y = (x.mean(axis=(1, 2, 3)) * 40).astype(np.int32) % 10

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Conv2D(16, 3, activation="relu"),
                          keras.layers.MaxPooling2D(), keras.layers.Conv2D(32, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
opt = keras.optimizers.SGD(0.05 * hvd.size(), momentum=0.9)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
reduce = sk.GradientReducer()                                 # scalesim: replaces hvd.grouped_allreduce


@tf.function
def train_step(xb, yb):
    with tf.GradientTape() as tape:
        loss = loss_fn(yb, model(xb, training=True))
    grads = reduce(tape.gradient(loss, model.trainable_variables))
    opt.apply_gradients(zip(grads, model.trainable_variables))
    return loss


sk.broadcast_variables(model.variables)                       # start every rank from rank 0's weights
step = sk.record_step(train_step, args.run_dir, model=model, reducer=reduce,       # scalesim
                      local_batch=args.local_batch, optimizer=opt)
global_batch = args.local_batch * hvd.size()
for epoch in range(args.epochs):
    perm = np.random.default_rng(epoch).permutation(len(x))     # the same on every rank
    for s in range(args.steps):
        idx = perm[s * global_batch:(s + 1) * global_batch][hvd.rank()::hvd.size()]
        loss = step(tf.constant(x[idx]), tf.constant(y[idx]), epoch=epoch)
    if hvd.rank() == 0:
        print(f"epoch {epoch}: loss {float(loss):.3f}")
summary = step.close()                                          # scalesim: last flush (every rank)
if hvd.rank() == 0:
    print(f"run directory: {args.run_dir}  (median step {summary.get('step_time')} s, B_simple {summary.get('b_simple')})")
