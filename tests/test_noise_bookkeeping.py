"""Gradient-noise bookkeeping (scalesim.model.noise) on synthetic gradients with a known true
gradient G and per-example covariance Sigma: the estimators must recover |G|^2 and tr(Sigma)."""
import math

import numpy as np
import pytest

from scalesim.model.noise import NoiseTracker, local_mean_scale

DIM = 50
G_SQR = 4.0          # |G|^2
TR_SIGMA = 200.0     # tr(Sigma): per-example noise is much larger than the signal, as in practice


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=DIM)
    g *= math.sqrt(G_SQR) / np.linalg.norm(g)
    # Anisotropic diagonal covariance with the chosen trace.
    var = rng.uniform(0.5, 1.5, DIM)
    var *= TR_SIGMA / var.sum()
    return rng, g, np.sqrt(var)


def _per_example(rng, g, sd, count):
    return g + rng.normal(size=(count, DIM)) * sd


def test_data_parallel_pair_recovers_known_gradient_and_trace():
    rng, g, sd = _problem()
    n, b, steps = 4, 16, 3000
    tracker = NoiseTracker(b_small=b, b_big=n * b, beta=0.99)
    for step in range(steps):
        per_rank = [_per_example(rng, g, sd, b).mean(axis=0) for _ in range(n)]
        global_mean = np.mean(per_rank, axis=0)
        tracker.add(step, [float(v @ v) for v in per_rank], float(global_mean @ global_mean))
    s = tracker.summary()
    assert s["steps"] == steps and s["skipped"] == 0
    # Standard errors over 3000 steps are ~3 % for |G|^2 and ~1.5 % for tr(Sigma) here.
    assert s["grad_sqr"] == pytest.approx(G_SQR, rel=0.12)
    assert s["grad_var"] == pytest.approx(TR_SIGMA, rel=0.05)
    assert s["b_simple"] == pytest.approx(TR_SIGMA / G_SQR, rel=0.15)
    # The smoothed per-step ratio ends near the truth too (EMA over ~100 steps is noisier).
    assert s["b_simple_ema"] == pytest.approx(TR_SIGMA / G_SQR, rel=0.5)


def test_one_rank_half_batch_split_recovers_the_same():
    rng, g, sd = _problem(1)
    b, steps = 32, 3000
    tracker = NoiseTracker(b_small=b // 2, b_big=b, beta=0.99)
    for step in range(steps):
        ex = _per_example(rng, g, sd, b)
        h1, h2 = ex[: b // 2].mean(0), ex[b // 2:].mean(0)
        full = ex.mean(0)
        tracker.add(step, [float(h1 @ h1), float(h2 @ h2)], float(full @ full))
    s = tracker.summary()
    assert s["grad_sqr"] == pytest.approx(G_SQR, rel=0.15)
    assert s["grad_var"] == pytest.approx(TR_SIGMA, rel=0.05)


def test_global_loss_normalisation_scale():
    # Loss summed over the local batch and divided by the GLOBAL batch n*b: the raw local gradient
    # is 1/n of the local mean gradient.
    rng, g, sd = _problem(2)
    n, b = 4, 8
    ex = _per_example(rng, g, sd, b)
    raw_local = ex.sum(0) / (n * b)
    np.testing.assert_allclose(raw_local * local_mean_scale(n, "global"), ex.mean(0), rtol=1e-12)
    assert local_mean_scale(n, "local") == 1.0
    with pytest.raises(ValueError):
        local_mean_scale(n, "bogus")


def test_ema_is_bias_corrected_and_ratio_follows():
    tracker = NoiseTracker(b_small=8, b_big=16, beta=0.9)
    # small=3, big=2 at b=8/16: |G|^2 = (16*2 - 8*3)/8 = 1, tr(Sigma) = (3-2)/(1/8-1/16) = 16.
    for step in range(5):
        row = tracker.add(step, [3.0, 3.0], 2.0)
        assert row["grad_sqr"] == pytest.approx(1.0) and row["grad_var"] == pytest.approx(16.0)
        # Constant inputs: a bias-corrected EMA equals the constant from the first step on.
        assert row["ema_grad_sqr"] == pytest.approx(1.0) and row["b_simple"] == pytest.approx(16.0)


def test_non_finite_steps_are_skipped_and_counted():
    tracker = NoiseTracker(b_small=8, b_big=16)
    tracker.add(0, [3.0], 2.0)
    assert tracker.add(1, [float("nan")], 2.0) is None
    assert tracker.add(2, [3.0], float("inf")) is None
    tracker.add(3, [3.0], 2.0)
    s = tracker.summary()
    assert s["skipped"] == 2 and s["steps"] == 2 and s["b_simple"] == pytest.approx(16.0)
    assert all(math.isfinite(r["b_simple"]) for r in tracker.rows)


def test_unresolved_signal_gives_nan_not_a_negative_noise_scale():
    tracker = NoiseTracker(b_small=8, b_big=16)
    row = tracker.add(0, [3.0], 1.0)    # |G|^2 = (16 - 24)/8 = -1
    assert row["grad_sqr"] == pytest.approx(-1.0) and math.isnan(row["b_simple"])
    assert NoiseTracker(8, 16).summary()["steps"] == 0


# --- the pure step function every recorder shares (scalesim.model.noise.update) -----------------
def test_update_is_pure_and_matches_the_tracker():
    from scalesim.model.noise import NoiseEma, update

    s0 = NoiseEma()
    s1, row = update(s0, [3.0, 3.0], 2.0, 8, 16, beta=0.5)
    assert s0 == NoiseEma() and s1.n == 1 and s1.skipped == 0
    # App. A.1 by hand: |G|^2 = (16*2 - 8*3)/(16-8) = 1, tr(Sigma) = (3-2)/(1/8-1/16) = 16.
    assert row["grad_sqr"] == pytest.approx(1.0) and row["grad_var"] == pytest.approx(16.0)
    s2, row2 = update(s1, [5.0], 2.0, 8, 16, beta=0.5)   # |G|^2 = -1, tr(Sigma) = 48
    # bias-corrected EMA after two steps with beta 0.5: (0.5*1*0.5 + 0.5*(-1)) / (1-0.25) = -1/3
    assert row2["ema_grad_sqr"] == pytest.approx(-1 / 3) and math.isnan(row2["b_simple"])
    assert row2["ema_grad_var"] == pytest.approx((0.25 * 16 + 0.5 * 48) / 0.75)
    s3, none = update(s2, [float("nan")], 2.0, 8, 16)
    assert none is None and s3.skipped == 1 and s3.n == 2 and s3.sqr == s2.sqr
    t = NoiseTracker(8, 16, beta=0.5)
    t.add(0, [3.0, 3.0], 2.0, epoch=0, lr=0.1, loss=2.3)
    assert t.rows[0]["epoch"] == 0 and t.rows[0]["lr"] == 0.1 and t.rows[0]["loss"] == 2.3


def test_noise_batches_pair_local_and_global_or_halves():
    from scalesim.model.noise import noise_batches

    assert noise_batches(4, 32) == (32, 128)     # n ranks: local b vs allreduced n*b
    assert noise_batches(1, 32) == (16, 32)      # one rank: two half batches vs the batch
    assert noise_batches(1, 1) == (0, 0)         # nothing to split: no estimate


def test_measure_noise_name_is_the_same_object():
    import scalesim.measure.noise as old
    import scalesim.model.noise as new

    assert old.NoiseTracker is new.NoiseTracker and old.local_mean_scale is new.local_mean_scale
