"""Goyal et al. 2017 learning-rate values from scalesim.model.schedule and the Recipe wrapper."""
import math

import pytest

from scalesim.errors import UsageError
from scalesim.model.schedule import LRSchedule, lr_at, peak_lr
from scalesim.train.recipe import Recipe


def test_linear_rule_peak_is_goyal_value():
    s = Recipe().schedule(8192)
    assert peak_lr(s) == pytest.approx(0.1 * 8192 / 256) == pytest.approx(3.2)


def test_warmup_is_linear_from_ref_lr_over_five_epochs():
    s = Recipe().schedule(8192)
    assert lr_at(s, 0.0) == pytest.approx(0.1)
    for e in (0.5, 1.0, 2.5, 4.0, 4.9):
        assert lr_at(s, e) == pytest.approx(0.1 + (3.2 - 0.1) * e / 5)
    assert lr_at(s, 2.5) == pytest.approx(1.65)
    assert lr_at(s, 5.0) == pytest.approx(3.2)
    assert lr_at(s, 20.0) == pytest.approx(3.2)


def test_per_iteration_warmup_is_monotone():
    s = Recipe().schedule(8192)
    steps_per_epoch = 1281167 // 8192     # ImageNet at B = 8k, as in Goyal et al.
    lrs = [lr_at(s, i / steps_per_epoch) for i in range(5 * steps_per_epoch + 1)]
    assert all(b > a for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(3.2)


def test_step_decay_after_warmup():
    s = Recipe(decay_epochs=(30, 60, 80)).schedule(8192)
    assert lr_at(s, 29.9) == pytest.approx(3.2)
    assert lr_at(s, 30) == pytest.approx(0.32)
    assert lr_at(s, 60) == pytest.approx(0.032)
    assert lr_at(s, 85) == pytest.approx(0.0032)


def test_reference_batch_has_no_warmup_and_other_rules():
    assert lr_at(Recipe().schedule(256), 0.0) == pytest.approx(0.1)
    assert peak_lr(Recipe(rule="sqrt").schedule(1024)) == pytest.approx(0.1 * math.sqrt(4))
    assert peak_lr(Recipe(rule="none").schedule(1024)) == pytest.approx(0.1)


def test_bad_recipe_is_a_usage_error():
    with pytest.raises(UsageError):
        Recipe(rule="cubic").schedule(256)
    with pytest.raises(UsageError):
        Recipe().schedule(0)


def test_recipe_matches_lrschedule_fields():
    s = Recipe(ref_lr=0.2, ref_batch=128, warmup_epochs=3, decay_epochs=(10,)).schedule(512)
    assert s == LRSchedule(512, 0.2, 128, "linear", 3, (10,), 0.1)


def _tiny_trainer(**recipe):
    pytest.importorskip("tensorflow")
    from scalesim.train.resnet import build_model
    from scalesim.train.step import Trainer

    model = build_model("resnet20", (8, 8, 1), 3, width=2)
    return model, Trainer(model, Recipe(**recipe), hvd=None)


@pytest.mark.parametrize("correction", [True, False])
def test_momentum_update_with_and_without_goyal_correction(correction):
    import numpy as np

    model, t = _tiny_trainer(weight_decay=0.0, momentum_correction=correction)
    w0 = [v.numpy() for v in model.trainable_variables]
    g = [np.full(v.shape, 0.5, np.float32) for v in model.trainable_variables]
    t.apply(g, 0.1)
    t.apply(g, 0.3)
    # Goyal Sec. 3: u1 = lr1 g; u2 = m (lr2/lr1 if corrected) u1 + lr2 g; w2 = w0 - u1 - u2
    u1 = 0.1 * 0.5
    u2 = 0.9 * (3.0 if correction else 1.0) * u1 + 0.3 * 0.5
    for w, v in zip(w0, model.trainable_variables):
        np.testing.assert_allclose(v.numpy(), w - u1 - u2, atol=1e-6)


def test_weight_decay_skips_bn_and_bias():
    import numpy as np

    model, t = _tiny_trainer(weight_decay=0.1)
    w0 = [v.numpy() for v in model.trainable_variables]
    t.apply([np.zeros(v.shape, np.float32) for v in model.trainable_variables], 0.5)
    for w, v in zip(w0, model.trainable_variables):
        expect = w * (1 - 0.5 * 0.1) if v.ndim > 1 else w     # kernels decay; gamma/beta/bias do not
        np.testing.assert_allclose(v.numpy(), expect, rtol=1e-6, err_msg=v.path)
    model, t = _tiny_trainer(weight_decay=0.1, wd_exclude_bn_bias=False)
    w0 = [v.numpy() for v in model.trainable_variables]
    t.apply([np.zeros(v.shape, np.float32) for v in model.trainable_variables], 0.5)
    for w, v in zip(w0, model.trainable_variables):
        np.testing.assert_allclose(v.numpy(), w * 0.95, rtol=1e-6, err_msg=v.path)


def test_batches_below_reference_start_at_their_rate_without_warmup():
    from scalesim.model.schedule import LRSchedule, describe, lr_at

    s = LRSchedule(global_batch=128)  # eta = 0.1 x 128/256 = 0.05: nothing to ramp up to
    assert [lr_at(s, e) for e in (0.0, 2.5, 4.9)] == [0.05, 0.05, 0.05]
    assert "warmup" not in describe(s)
