"""ResNet parameter counts (He et al. 2016; ResNet-50 v1.5) and ghost batch norm semantics."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from scalesim.errors import UsageError

resnet = pytest.importorskip("scalesim.train.resnet")


def test_resnet20_params():
    # He et al. Table 6: 0.27 M. Exact count with option-A shortcuts and BN gamma/beta.
    assert resnet.count_params(resnet.build_model("resnet20", (32, 32, 3), 10)) == 269_722
    # Fashion-MNIST input: the first conv has 1 input channel instead of 3 (288 fewer weights).
    assert resnet.count_params(resnet.build_model("resnet20", (28, 28, 1), 10)) == 269_434


def test_deeper_cifar_resnets():
    assert resnet.count_params(resnet.build_model("resnet32", (32, 32, 3), 10)) == 464_154   # 0.46 M
    assert resnet.count_params(resnet.build_model("resnet56", (32, 32, 3), 10)) == 853_018   # 0.85 M


def test_resnet50_params():
    m = resnet.build_model("resnet50", (224, 224, 3), 1000)
    assert resnet.count_params(m) == 25_557_032    # torchvision resnet50: 25,557,032
    assert resnet.grad_bytes(m) == 4 * 25_557_032


def test_unknown_model():
    with pytest.raises(UsageError):
        resnet.build_model("resnet7", (32, 32, 3), 10)


def test_same_seed_same_weights():
    a = resnet.build_model("resnet20", (28, 28, 1), 10, seed=3, width=4)
    b = resnet.build_model("resnet20", (28, 28, 1), 10, seed=3, width=4)
    for va, vb in zip(a.variables, b.variables):
        assert np.array_equal(va.numpy(), vb.numpy())


def test_ghost_batch_norm_is_per_group_batch_norm():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (12, 5, 5, 4)).astype(np.float32)
    ghost = resnet.GhostBatchNorm(ghost_batch=4)
    out = ghost(x, training=True).numpy()
    means, variances = [], []
    for k in range(3):                                # three "workers" with 4 examples each
        bn = resnet.GhostBatchNorm()
        part = x[4 * k:4 * k + 4]
        np.testing.assert_allclose(out[4 * k:4 * k + 4], bn(part, training=True).numpy(), atol=1e-5)
        means.append(bn.moving_mean.numpy())
        variances.append(bn.moving_variance.numpy())
        m, v = part.mean(axis=(0, 1, 2)), part.var(axis=(0, 1, 2))
        np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * m, rtol=1e-5)
        np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * v, rtol=1e-5)
    # moving statistics = average of what the separate workers keep
    np.testing.assert_allclose(ghost.moving_mean.numpy(), np.mean(means, axis=0), rtol=1e-5)
    np.testing.assert_allclose(ghost.moving_variance.numpy(), np.mean(variances, axis=0), rtol=1e-5)
    # inference uses the moving statistics, identically for any grouping
    np.testing.assert_allclose(ghost(x, training=False).numpy(),
                               (x - ghost.moving_mean.numpy()) / np.sqrt(ghost.moving_variance.numpy() + 1e-5),
                               rtol=1e-4, atol=1e-5)
