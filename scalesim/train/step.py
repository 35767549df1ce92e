"""The data-parallel training step (Goyal et al. 2017), with its phases exposed for measurement.

    grads, loss, acc = trainer.compute_grads(x, y)     forward + backward on the local batch
    reduced          = trainer.allreduce(grads)         hvd.grouped_allreduce(op=Sum)
    trainer.apply(reduced, lr)                          momentum SGD update
    loss, acc        = trainer.train_step(x, y, lr)     the production step: all three fused in
                                                        one tf.function, nothing recorded
    loss, acc, probe = trainer.recorded_step(x, y, lr)  the same fused step plus what `train`
                                                        records every step at no extra compute

Loss normalisation: every rank divides its summed per-example loss by the GLOBAL batch
(num_replicas * local_batch), so summing the ranks' gradients gives the mean gradient of the global
batch (Goyal Sec. 3, "remark 3"). Consequently:
    local per-sample-mean gradient  = num_replicas * grads          (|.|^2 scales by n^2)
    global per-sample-mean gradient = reduced
`Trainer.local_mean_scale` holds that factor n (and `loss_scale == "global"` names the convention,
as in scalesim.measure.noise.local_mean_scale). The `loss`/`acc` returned are the LOCAL batch's mean
cross-entropy and accuracy, for monitoring.

Update (Goyal Sec. 3, "momentum correction" when the learning rate changes):
    u <- m * (lr_t / lr_{t-1} if momentum_correction else 1) * u + lr_t * (g + wd * w);  w <- w - u
With correction this equals the usual "v <- m v + g; w <- w - lr v" form. It runs as TensorFlow's
fused ResourceApplyKerasMomentum kernel, so `velocity` holds -u. Weight decay is added to
the gradient (an L2 term in the loss) and, with wd_exclude_bn_bias, skipped for 1-D variables (BN
gamma/beta and biases).

Recording (`recorded_step`, what `scalesim train` runs): the fused step also returns `probe`, a
float64 vector [t_grads, t_reduced, |g_big|^2, |g_small,1|^2, ...]: tf.timestamp() (wall clock, the
clock of time.time()) when every local gradient is ready and when the allreduce has returned, and the
squared norms of the mean gradients for the noise estimator (scalesim.model.noise): with n ranks the
local mean gradient (batch b, n^2 |grads|^2) and the allreduced one (batch n*b); with one rank the
step computes its gradient as two half-batch passes (same FLOPs; BN statistics then come from each
half) and records both halves (b/2) and their mean (b). The timestamps cost nothing and move no
computation: grouped_allreduce is one op that starts when all gradients are ready, so the split
compute | allreduce | update is that of the production step itself.

Horovod is optional: with hvd=None (or Horovod not initialised) the trainer is a single process
and allreduce is the identity. Batch-norm statistics stay per rank during training (per-worker BN);
`sync_bn_stats` averages them before evaluation.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .recipe import Recipe


def horovod_if_initialised():
    """horovod.tensorflow when it is importable and hvd.init() was called, else None."""
    try:
        import horovod.tensorflow as hvd
    except ImportError:
        return None
    try:
        return hvd if hvd.is_initialized() else None
    except Exception:   # is_initialized raises on some builds before init
        return None


def sqnorm(tensors):
    """Sum of squares over a list of tensors (|g|^2 of a gradient)."""
    return tf.add_n([tf.reduce_sum(tf.square(tf.cast(t, tf.float32))) for t in tensors])


class Trainer:
    loss_scale = "global"

    def __init__(self, model, recipe: Recipe = Recipe(), hvd="auto", fp16_allreduce: bool = False):
        self.model, self.recipe = model, recipe
        self.hvd = horovod_if_initialised() if hvd == "auto" else hvd
        self.fp16_allreduce = bool(fp16_allreduce)
        self.num_replicas = self.hvd.size() if self.hvd else 1
        self.rank = self.hvd.rank() if self.hvd else 0
        self.local_mean_scale = float(self.num_replicas)
        self.variables = list(model.trainable_variables)
        exclude = recipe.wd_exclude_bn_bias
        self._wd = [0.0 if exclude and len(v.shape) <= 1 else float(recipe.weight_decay)
                    for v in self.variables]
        self.velocity = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False,
                                     name=f"velocity_{i}") for i, v in enumerate(self.variables)]
        self.prev_lr = tf.Variable(0.0, trainable=False, name="prev_lr")
        self.compute_grads = tf.function(self._compute_grads)
        self.allreduce = tf.function(self._allreduce)
        self._apply_fn = tf.function(self._apply)
        self._train_fn = tf.function(self._train_step)
        self._recorded_fn = tf.function(self._recorded_step)
        self._eval_fn = tf.function(self._eval_batch, reduce_retracing=True)
        self._sync_bn_fn = tf.function(self._sync_bn)

    # --- phases --------------------------------------------------------------------------
    def _compute_grads(self, x, y):
        local = tf.shape(x)[0]
        global_batch = tf.cast(local * self.num_replicas, tf.float32)
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            loss = tf.reduce_sum(per_example) / global_batch
        grads = tape.gradient(loss, self.variables)
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=y.dtype), y), tf.float32))
        return grads, tf.reduce_mean(per_example), acc

    def _allreduce(self, grads):
        if self.num_replicas == 1:
            return list(grads)
        # Sum, not Average: the loss is already divided by the global batch.
        compression = self.hvd.Compression.fp16 if self.fp16_allreduce else self.hvd.Compression.none
        return self.hvd.grouped_allreduce(list(grads), op=self.hvd.Sum, compression=compression)

    def _apply(self, grads, lr):
        lr = tf.cast(lr, tf.float32)
        mom = tf.constant(self.recipe.momentum, tf.float32)
        if self.recipe.momentum_correction:
            mom = mom * tf.where(self.prev_lr > 0.0, lr / tf.maximum(self.prev_lr, 1e-30), 1.0)
        for v, g, a, wd in zip(self.variables, grads, self.velocity, self._wd):
            if wd:
                g = g + wd * v
            # One fused kernel per variable: a <- mom * a - lr * g; w <- w + a, i.e. a = -u.
            tf.raw_ops.ResourceApplyKerasMomentum(var=v.value.handle, accum=a.handle, lr=lr, grad=g,
                                                  momentum=mom, use_nesterov=False)
        self.prev_lr.assign(lr)

    def _recorded_step(self, x, y, lr):
        n = self.num_replicas
        if n == 1 and x.shape[0] is not None and x.shape[0] >= 2:
            h = x.shape[0] // 2
            # Each half's forward pass updates the BN moving statistics; run both from the same
            # start and average, which is the one update with the mean of the halves' statistics
            # (the update is affine), as two workers' averaged statistics would be.
            stats = self.model.non_trainable_variables
            start = [tf.identity(v) for v in stats]
            g1, l1, a1 = self._compute_grads(x[:h], y[:h])
            after1 = [tf.identity(v) for v in stats]
            for v, s in zip(stats, start):
                v.assign(s)
            g2, l2, a2 = self._compute_grads(x[h:], y[h:])
            for v, s in zip(stats, after1):
                v.assign((s + v) // 2 if tf.as_dtype(v.dtype).is_integer else (s + v) * 0.5)
            w = h / x.shape[0]
            grads = [w * a + (1.0 - w) * b for a, b in zip(g1, g2)]
            loss, acc = w * l1 + (1.0 - w) * l2, w * a1 + (1.0 - w) * a2
            small = [sqnorm(g1), sqnorm(g2)]
        else:
            grads, loss, acc = self._compute_grads(x, y)
            small = [sqnorm(grads) * (self.local_mean_scale ** 2)]
        with tf.control_dependencies(grads):
            t_grads = tf.timestamp()
        reduced = self._allreduce(grads)
        with tf.control_dependencies(reduced):
            t_reduced = tf.timestamp()
        big = sqnorm(reduced)
        self._apply(reduced, lr)
        probe = tf.stack([t_grads, t_reduced] + [tf.cast(v, tf.float64) for v in [big] + small])
        return loss, acc, probe

    def _train_step(self, x, y, lr):
        grads, loss, acc = self._compute_grads(x, y)
        self._apply(self._allreduce(grads), lr)
        return loss, acc

    def half_batch_grads(self, x, y):
        """One process's two-batch-size gradients at one pass's FLOPs (McCandlish et al. 2018,
        App. A.1): ((g_1, g_2), g, (loss_1, loss_2)) for the two halves of (x, y), each a mean over
        b/2 since the loss is normalised by the batch passed, and their mean g, the batch gradient."""
        h = int(x.shape[0]) // 2
        g1, l1, _ = self.compute_grads(x[:h], y[:h])
        g2, l2, _ = self.compute_grads(x[h:2 * h], y[h:2 * h])
        return (g1, g2), [(a + b) * 0.5 for a, b in zip(g1, g2)], (l1, l2)

    # --- public entry points (lr as a tensor so a new value never retraces) ---------------
    def apply(self, grads, lr):
        return self._apply_fn(grads, tf.constant(lr, tf.float32))

    def train_step(self, x, y, lr):
        return self._train_fn(x, y, tf.constant(lr, tf.float32))

    def recorded_step(self, x, y, lr):
        """(loss, acc, probe): the production step plus its split and gradient norms (see above)."""
        return self._recorded_fn(x, y, tf.constant(lr, tf.float32))

    # --- distributed state -----------------------------------------------------------------
    def state_variables(self):
        return list(self.model.variables) + self.velocity + [self.prev_lr]

    def broadcast_variables(self, root_rank: int = 0):
        """Copy every model and optimizer variable from root_rank (call once, after building)."""
        if self.num_replicas == 1:
            return
        hvd, vs = self.hvd, self.state_variables()

        @tf.function
        def bcast():
            for i, v in enumerate(vs):
                v.assign(hvd.broadcast(tf.convert_to_tensor(v), root_rank, name=f"scalesim_bcast_{i}"))

        bcast()

    def sync_bn_stats(self):
        """Average the per-rank BN moving statistics (per-worker BN lets them drift apart)."""
        if self.num_replicas == 1 or not self.model.non_trainable_variables:
            return
        self._sync_bn_fn()   # one tf.function for the trainer's life: no retrace per evaluation

    def _sync_bn(self):
        stats = self.model.non_trainable_variables
        avg = self.hvd.grouped_allreduce([tf.convert_to_tensor(v) for v in stats], op=self.hvd.Average)
        for v, a in zip(stats, avg):
            v.assign(a)

    # --- evaluation ------------------------------------------------------------------------
    def _eval_batch(self, x, y):
        logits = self.model(x, training=False)
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=y.dtype), y), tf.float32))
        return loss, correct

    def evaluate(self, x, y, batch_size: int = 256):
        """(mean loss, accuracy) over the union of every rank's shard (x, y are this rank's)."""
        self.sync_bn_stats()
        totals = np.zeros(3)
        for i in range(0, len(x), batch_size):
            loss, correct = self._eval_fn(x[i:i + batch_size], y[i:i + batch_size])
            totals += (float(loss), float(correct), len(x[i:i + batch_size]))
        totals = self.sum_across_ranks(totals)
        return (totals[0] / totals[2], totals[1] / totals[2]) if totals[2] else (float("nan"),) * 2

    def sum_across_ranks(self, values) -> np.ndarray:
        values = np.asarray(values, np.float64)
        if self.num_replicas == 1:
            return values
        return self.hvd.allreduce(tf.constant(values), op=self.hvd.Sum, name="scalesim_sum").numpy()
