"""ResNets in Keras 3 with ghost batch normalisation.

- resnet20/32/56: CIFAR-style ResNet-6n+2 of He et al. 2016 (Sec. 4.2): a 3x3 conv with 16
  filters, three stages of n basic blocks with 16/32/64 filters, global average pooling and a
  dense layer; shortcuts are identities with zero-padded channels when the shape changes (option A),
  which gives ResNet-20 its 0.27 M parameters.
- resnet50: ImageNet ResNet-50 v1.5 (the torchvision / NVIDIA variant: stride 2 on the 3x3 conv
  of a downsampling bottleneck rather than on the first 1x1), 25.6 M parameters.

Batch norm is `GhostBatchNorm`: with ghost_batch=g a batch of size k*g is normalised as k
independent groups of g examples. This is exactly what k Horovod workers with local batch g do
(Goyal et al. 2017 Sec. 2.3: BN statistics are per worker), so one process can reproduce a
multi-worker step. Keras 3's BatchNormalization has no `virtual_batch_size`, hence this layer.
Following Goyal et al. (Sec. 5.1), the last BN of each residual branch starts with gamma = 0
(zero_init_residual) unless disabled.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from ..errors import UsageError
from . import MODELS

CIFAR_DEPTHS = {"resnet8": 1, "resnet20": 3, "resnet32": 5, "resnet56": 9}   # n blocks per stage, depth 6n+2
BN_MOMENTUM = 0.9     # moving-average decay of He et al. / torchvision (PyTorch momentum 0.1)
BN_EPSILON = 1e-5


@keras.saving.register_keras_serializable(package="scalesim")
class GhostBatchNorm(layers.Layer):
    """Batch norm over the channel (last) axis whose training statistics come from groups of
    `ghost_batch` consecutive examples (the whole batch when None). The moving averages are
    updated with the mean over groups of the group means and variances; since the update is
    linear, that equals the average of the moving statistics k separate workers would keep."""

    def __init__(self, ghost_batch=None, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.ghost_batch = int(ghost_batch) if ghost_batch else None
        self.momentum, self.epsilon = momentum, epsilon
        self.gamma_initializer = keras.initializers.get(gamma_initializer)

    def build(self, input_shape):
        c = input_shape[-1]
        self.gamma = self.add_weight(shape=(c,), initializer=self.gamma_initializer, name="gamma")
        self.beta = self.add_weight(shape=(c,), initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=(c,), initializer="zeros", trainable=False,
                                           name="moving_mean")
        self.moving_variance = self.add_weight(shape=(c,), initializer="ones", trainable=False,
                                               name="moving_variance")

    def call(self, x, training=None):
        if not training:
            return self._normalise(x, self.moving_mean, self.moving_variance)
        g = self.ghost_batch
        if g is None:
            mean, var = ops.moments(x, axes=list(range(x.shape.rank - 1)))
            y = self._normalise(x, mean, var)
        else:
            # (B, H, W, C) -> (B/g, g, H, W, C): each group gets its own statistics.
            xg = ops.reshape(x, (-1, g, *x.shape[1:]))
            axes = list(range(1, xg.shape.rank - 1))
            gmean, gvar = ops.moments(xg, axes=axes, keepdims=True)
            y = ops.reshape(self._normalise(xg, gmean, gvar), ops.shape(x))
            mean = ops.mean(ops.reshape(gmean, (-1, x.shape[-1])), axis=0)
            var = ops.mean(ops.reshape(gvar, (-1, x.shape[-1])), axis=0)
        m = self.momentum
        self.moving_mean.assign(m * self.moving_mean + (1.0 - m) * ops.stop_gradient(mean))
        self.moving_variance.assign(m * self.moving_variance + (1.0 - m) * ops.stop_gradient(var))
        return y

    def _normalise(self, x, mean, var):
        scale = self.gamma * ops.rsqrt(var + self.epsilon)
        return x * scale + (self.beta - mean * scale)

    def get_config(self):
        return {**super().get_config(), "ghost_batch": self.ghost_batch, "momentum": self.momentum,
                "epsilon": self.epsilon,
                "gamma_initializer": keras.initializers.serialize(self.gamma_initializer)}


@keras.saving.register_keras_serializable(package="scalesim")
class PadShortcut(layers.Layer):
    """He et al.'s option-A shortcut: subsample by `stride` and zero-pad the new channels."""

    def __init__(self, out_channels, stride=2, **kwargs):
        super().__init__(**kwargs)
        self.out_channels, self.stride = int(out_channels), int(stride)

    def call(self, x):
        x = x[:, ::self.stride, ::self.stride, :]
        extra = self.out_channels - x.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "stride": self.stride}


class _Builder:
    """Layer factory with deterministic per-layer seeds, so every process builds the same weights."""

    def __init__(self, ghost_batch, seed):
        self.ghost_batch, self.seed, self.i = ghost_batch, seed, 0

    def _init(self):
        self.i += 1
        # torchvision's kaiming_normal_(mode='fan_out') for convolutions
        return keras.initializers.VarianceScaling(2.0, "fan_out", "normal", seed=self.seed * 10007 + self.i)

    def conv(self, x, filters, kernel, stride=1):
        return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                             kernel_initializer=self._init())(x)

    def bn(self, x, zero=False):
        return GhostBatchNorm(self.ghost_batch, gamma_initializer="zeros" if zero else "ones")(x)

    def dense(self, x, units):
        self.i += 1
        return layers.Dense(units, kernel_initializer=keras.initializers.GlorotUniform(seed=self.seed * 10007 + self.i))(x)


def _cifar(b: _Builder, x, n: int, width: int, zero_res: bool):
    x = layers.ReLU()(b.bn(b.conv(x, width, 3)))
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            y = layers.ReLU()(b.bn(b.conv(x, filters, 3, stride)))
            y = b.bn(b.conv(y, filters, 3), zero=zero_res)
            short = PadShortcut(filters, stride)(x) if stride != 1 or x.shape[-1] != filters else x
            x = layers.ReLU()(layers.Add()([y, short]))
    return x


def _resnet50(b: _Builder, x, width: int, zero_res: bool):
    x = layers.ReLU()(b.bn(b.conv(x, width, 7, 2)))
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    for stage, blocks in enumerate((3, 4, 6, 3)):
        mid = width * 2 ** stage
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            y = layers.ReLU()(b.bn(b.conv(x, mid, 1)))
            y = layers.ReLU()(b.bn(b.conv(y, mid, 3, stride)))     # v1.5: stride on the 3x3
            y = b.bn(b.conv(y, 4 * mid, 1), zero=zero_res)
            short = x if block > 0 else b.bn(b.conv(x, 4 * mid, 1, stride))
            x = layers.ReLU()(layers.Add()([y, short]))
    return x


def build_model(name: str, input_shape, num_classes: int, ghost_batch=None, seed: int = 0,
                width: int | None = None, zero_init_residual: bool = True) -> keras.Model:
    """A ResNet returning logits. width: filters of the first stage (16 for the CIFAR ResNets,
    64 for ResNet-50); smaller widths give cheap models for tests."""
    if name not in MODELS:   # keras:<application> and module:function models: scalesim.train.models.build
        raise UsageError(f"unknown ResNet {name!r} (choose from {', '.join(MODELS)}; any Keras model: "
                         "scalesim.train.models.build)")
    if ghost_batch is not None and int(ghost_batch) <= 0:
        raise UsageError("ghost_batch must be a positive number of examples")
    b = _Builder(ghost_batch, seed)
    inputs = keras.Input(shape=tuple(input_shape))
    if name == "resnet50":
        x = _resnet50(b, inputs, width or 64, zero_init_residual)
    else:
        x = _cifar(b, inputs, CIFAR_DEPTHS[name], width or 16, zero_init_residual)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = b.dense(x, num_classes)
    return keras.Model(inputs, outputs, name=name)


def count_params(model, trainable_only: bool = True) -> int:
    """Number of parameters (trainable ones by default: what the allreduce carries)."""
    vs = model.trainable_variables if trainable_only else model.variables
    return int(sum(int(ops.size(v)) for v in vs))


def grad_bytes(model, fp16_allreduce: bool = False) -> int:
    """Bytes allreduced per step: float32 gradients of the trainable variables (float16 on the
    wire with fp16_allreduce: hvd.Compression.fp16)."""
    return 4 * count_params(model) // (2 if fp16_allreduce else 1)
