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


# --- noise paths and the joint curves + noise fit -------------------------------------------------

def _phased_runs(batches, phases, log_every):
    """Exact steps-to-target and logged noise paths for runs whose noise scale changes by phase.
    phases: [(S_min steps, B_noise)]; each logged row holds that interval's noise scale."""
    out = {}
    for B in batches:
        ends, bs, s = [], [], 0.0
        for smin, bn in phases:
            span = smin * (1 + bn / B)
            n = max(int(round(span / log_every)), 1)
            for j in range(1, n + 1):
                ends.append(s + span * j / n)
                bs.append(bn)
            s += span
        out[B] = (s, stateff.NoisePath(np.array(ends), np.array(bs)))
    return out


def test_noise_path_counts_steps_before_the_first_row_and_short_windows_by_their_span():
    # smoothed rows at steps 1000 and 1010: the first interval is 0..1000, the second 10 steps long
    p = stateff.noise_path([1000, 1010], grad_sqr=[1.0, 1.0], grad_var=[100.0, 1e6], smoothed=True)
    assert list(p.end) == [1000, 1010] and list(p.b_simple) == [100.0, 1e6]
    s_min, b = stateff.path_progress(p, batch=100.0)
    assert s_min == pytest.approx(1000 / 2 + 10 / (1 + 1e4))
    assert b == pytest.approx((500 * 100 + 10 / 10001 * 1e6) / s_min)
    # the old windowing started at the first row and gave it one step: B_eff would be ~1e6 / 2
    # smoothed statistics are not pooled again: a row with 1000x larger |G|^2 does not dominate
    p = stateff.noise_path([10, 20], grad_sqr=[1000.0, 1.0], grad_var=[1000.0, 100.0], smoothed=True)
    assert list(p.b_simple) == [1.0, 100.0]
    # raw per-step estimates are pooled (ratio of means) within windows, negative |G|^2 included
    p = stateff.noise_path(np.arange(1, 9), grad_sqr=[2, -1, 2, 1, 1, 1, 1, 1], grad_var=[10] * 8,
                           smoothed=False, windows=2)
    assert list(p.end) == [4, 8] and list(p.b_simple) == pytest.approx([10 / 1.0, 10.0])
    # unresolved intervals (|G|^2 <= 0) are counted and join the next resolved one
    p = stateff.noise_path([5, 10, 15], grad_sqr=[1, -1, 1], grad_var=[3, 3, 3], smoothed=True)
    assert list(p.end) == [5, 15] and p.skipped == 1


def test_path_steps_is_pollux_gain_and_reproduces_phased_training():
    phases = [(1000.0, 100.0), (500.0, 5000.0)]
    runs = _phased_runs([128, 256, 4096], phases, log_every=50)
    S128, path = runs[128]
    for B, (S, _) in runs.items():
        assert stateff.path_steps(path, 128, S128, B) == pytest.approx(S, rel=1e-9)
    s_min, b_eff = stateff.path_progress(path, 128, S128)
    assert s_min == pytest.approx(1500.0)
    assert b_eff == pytest.approx((1000 * 100 + 500 * 5000) / 1500)


def test_fit_curves_recovers_b_noise_from_two_batches_and_measured_noise():
    # B_noise grows 30x during training; the fit sees two small batches and their noise paths
    phases = [(2000.0, 200.0), (1000.0, 2000.0), (500.0, 6000.0)]
    runs = _phased_runs([128, 256, 1024, 8192], phases, log_every=100)
    b_true = sum(s * b for s, b in phases) / sum(s for s, _ in phases)
    b_meas = [stateff.path_progress(runs[B][1], B, runs[B][0])[1] for B in (128, 256)]
    assert b_meas == pytest.approx([b_true, b_true], rel=1e-9)
    # steps read off real curves are noisy: +2 % and -2 %
    S = [runs[128][0] * 1.02, runs[256][0] * 0.98]
    fit = stateff.fit_curves([128, 256], S, [0.05, 0.05], b_measured=b_meas[0])
    lo, hi = stateff.b_noise_interval(fit)
    assert lo < b_true < hi and fit.degenerate is None
    assert fit.b_noise == pytest.approx(b_true, rel=0.4)
    pred, plo, phi = stateff.steps_interval(fit, 8192)
    assert pred == pytest.approx(runs[8192][0], rel=0.2) and plo < runs[8192][0] < phi
    # the same noisy steps without the measured noise: further off, and far less certain
    alone = stateff.fit_curves([128, 256], S, [0.05, 0.05])
    assert abs(math.log(alone.b_noise / b_true)) > abs(math.log(fit.b_noise / b_true)) + 0.4
    assert alone.cov[1, 1] > 4 * fit.cov[1, 1]
    # exact steps at several batches, no noise: exact
    exact = stateff.fit_curves([128, 256, 1024, 8192], [runs[B][0] for B in (128, 256, 1024, 8192)])
    assert (exact.s_min, exact.b_noise) == pytest.approx((3500.0, b_true), rel=1e-4)
    # one batch needs the measured noise
    with pytest.raises(ValueError):
        stateff.fit_curves([128], [runs[128][0]])
    one = stateff.fit_curves([128], [runs[128][0]], b_measured=b_true)
    assert (one.s_min, one.b_noise) == pytest.approx((3500.0, b_true), rel=1e-6)


def test_degenerate_fits_are_flagged_with_their_cause():
    B = np.array([256.0, 512.0, 1024.0])
    perfect = stateff.fit_curves(B, 1e6 / B)                  # steps halve with every doubling
    assert perfect.degenerate == "b_noise->inf"
    assert "perfect scaling" in stateff.degenerate_reason(perfect, B)
    flat = stateff.fit_curves(B, [1000.0, 1000.0, 1000.0])    # no gain from a larger batch
    assert flat.degenerate == "b_noise->0"
    assert "do not fall" in stateff.degenerate_reason(flat, B)
    fine = stateff.fit_curves(B, stateff.steps_to_target(B, 100.0, 500.0))
    assert fine.degenerate is None and stateff.degenerate_reason(fine, B) is None


def test_crossing_uncertainty_is_larger_on_a_plateau():
    it = np.arange(1, 41) * 100.0
    rng = np.random.default_rng(3)
    steep = 0.2 * np.log(it) + rng.normal(0, 0.002, it.size)
    flat = 0.9 + 0.001 * np.log(it) + rng.normal(0, 0.002, it.size)
    sd_steep = stateff.crossing_log_sd(it, steep, float(steep[20]), True)
    sd_flat = stateff.crossing_log_sd(it, flat, float(np.sort(flat)[-3]), True)
    assert sd_steep < 0.05 < sd_flat


def test_gain_error_identifies_adaptdl_normalisation():
    # AdaptDL: progress grows by (1 + B_s/B0)/(1 + B_s/B); grad_var = tr(Sigma)/B0
    B0, B = 128.0, 1024.0
    it = np.arange(1, 21) * 50.0
    b_s = np.geomspace(100, 20000, it.size)             # noise scale in examples
    grad_sqr = np.full(it.size, 2.0)
    grad_var = b_s * grad_sqr / B0
    gain = (1 + b_s / B0) / (1 + b_s / B)
    progress = np.cumsum(np.diff(np.r_[0, it]) * gain)
    right = stateff.gain_error(it, progress, B, B0, grad_var * B0 / grad_sqr)
    wrong = stateff.gain_error(it, progress, B, B0, grad_var / grad_sqr)
    assert right < 1e-9 and wrong > 0.3
