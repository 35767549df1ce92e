"""Gradient-noise estimators and the steps-to-target model (McCandlish et al. 2018) recover known values."""
import math

import numpy as np
import pytest

from scalesim.model import stateff


def _synthetic_sqnorms(rng, G, sigma, b_small, b_big, steps):
    """|mean gradient|^2 over the first b_small and over all b_big per-example gradients G + eps."""
    small, big = [], []
    for _ in range(steps):
        g = G + rng.normal(size=(b_big, G.size)) * sigma
        small.append(np.sum(g[:b_small].mean(0) ** 2))
        big.append(np.sum(g.mean(0) ** 2))
    return np.array(small), np.array(big)


def test_noise_estimators_recover_grad_sqr_and_trace_sigma():
    rng = np.random.default_rng(0)
    G = rng.normal(size=40) * 0.05                       # |G|^2 ~ 0.1
    sigma = rng.uniform(0.5, 1.5, size=40)               # tr(Sigma) ~ 43
    true_sqr, true_var = float(G @ G), float(np.sum(sigma ** 2))
    small, big = _synthetic_sqnorms(rng, G, sigma, 32, 128, 3000)
    est = stateff.estimate_noise(small, big, 32, 128)
    assert np.mean(est.grad_sqr) == pytest.approx(true_sqr, rel=0.1)
    assert np.mean(est.grad_var) == pytest.approx(true_var, rel=0.03)
    assert stateff.pooled_b_simple(est.grad_sqr, est.grad_var) == pytest.approx(true_var / true_sqr, rel=0.12)
    # single-step ratios are heavy-tailed (|G|^2 estimates go negative): that is why we pool
    assert np.mean(est.grad_sqr < 0) > 0.05


def test_estimate_noise_rejects_bad_batches():
    with pytest.raises(ValueError):
        stateff.estimate_noise(1.0, 0.5, 64, 64)


def test_fit_steps_to_target_recovers_s_min_and_b_noise():
    rng = np.random.default_rng(1)
    B = np.array([64, 128, 256, 512, 1024, 2048, 4096], float)
    S = stateff.steps_to_target(B, 3000.0, 900.0) * np.exp(rng.normal(0, 0.03, B.size))
    s_min, b_noise = stateff.fit_steps_to_target(B, S)
    assert s_min == pytest.approx(3000, rel=0.08)
    assert b_noise == pytest.approx(900, rel=0.15)
    # two batch sizes, no noise: exact
    s_min, b_noise = stateff.fit_steps_to_target([100, 1000], stateff.steps_to_target(np.array([100, 1000]), 50.0, 300.0))
    assert (s_min, b_noise) == pytest.approx((50.0, 300.0), rel=1e-5)
    # one batch size needs b_noise
    with pytest.raises(ValueError):
        stateff.fit_steps_to_target([256, 256], [10, 11])
    s_min, _ = stateff.fit_steps_to_target([256], [stateff.steps_to_target(256, 40.0, 512.0)], b_noise=512.0)
    assert s_min == pytest.approx(40.0)


def test_effective_b_noise_reproduces_phased_training():
    # two phases: noise scale 100 for 1000 S_min-steps, then 2000 for 500 S_min-steps
    phases = [(1000.0, 100.0), (500.0, 2000.0)]
    batch = 256.0
    steps_at = [smin * (1 + bn / batch) for smin, bn in phases]          # what a run at `batch` takes
    b_eff = stateff.effective_b_noise([bn for _, bn in phases], steps_at, batch)
    s_min = sum(smin for smin, _ in phases)
    for other in (64.0, 1024.0, 8192.0):
        truth = sum(smin * (1 + bn / other) for smin, bn in phases)
        assert stateff.steps_to_target(other, s_min, b_eff) == pytest.approx(truth)
    assert stateff.effective_b_noise([300.0] * 5, [10.0] * 5, 128.0) == pytest.approx(300.0)


def test_steps_to_reach_interpolates():
    it = [0, 100, 200, 300]
    acc = [0.1, 0.5, 0.7, 0.9]
    assert stateff.steps_to_reach(it, acc, 0.6, True) == pytest.approx(150.0)
    assert math.isnan(stateff.steps_to_reach(it, acc, 0.95, True))
    loss = [2.0, 1.0, 0.5, 0.4]
    assert stateff.steps_to_reach(it, loss, 0.75, False) == pytest.approx(150.0)


def test_statistical_efficiency_is_examples_ratio():
    B, bn = np.array([256.0, 4096.0]), 1000.0
    e = stateff.examples_to_target(B, 10.0, bn)
    assert stateff.statistical_efficiency(B, bn, 256.0) == pytest.approx(e[0] / e)
