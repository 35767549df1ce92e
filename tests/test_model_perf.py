"""The step-time model's formulas (scalesim.model.perf), checked against hand-computed values."""
import math

import numpy as np
import pytest

from scalesim.model import perf

COMM = perf.CommParams(alpha_intra=1e-5, bw_intra=1e10, alpha_inter=1e-4, bw_inter=1e9, grad_bytes=1e8)


def test_ring_allreduce_is_alpha_beta():
    # 2(n-1) alpha + 2(n-1)/n M/bw on one host, the inter-host link across hosts
    assert perf.allreduce_time(COMM, 1e8, 1, 4) == pytest.approx(6 * 1e-5 + 1.5 * 1e8 / 1e10)
    assert perf.allreduce_time(COMM, 1e8, 4, 2) == pytest.approx(14 * 1e-4 + 1.75 * 1e8 / 1e9)
    assert perf.allreduce_time(COMM, 1e8, 1, 1) == 0.0


def test_ring_saturates_at_twice_message_over_bandwidth():
    big = perf.allreduce_time(COMM._replace(alpha_inter=0.0), 1e8, 1024, 1)
    assert big == pytest.approx(2 * 1e8 / 1e9, rel=1e-3)


def test_hierarchical_and_rhd_forms():
    h = COMM._replace(algorithm="hierarchical")
    g, nodes, M = 4, 3, 1e8
    want = 2 * (g - 1) * 1e-5 + 2 * (g - 1) / g * M / 1e10 + 2 * (nodes - 1) * 1e-4 + 2 * (nodes - 1) / nodes * (M / g) / 1e9
    assert perf.allreduce_time(h, M, nodes, g) == pytest.approx(want)
    r = COMM._replace(algorithm="rhd")
    assert perf.allreduce_time(r, M, 1, 8) == pytest.approx(2 * 3 * 1e-5 + 1.75 * M / 1e10)
    with pytest.raises(ValueError):
        perf.allreduce_time(COMM._replace(algorithm="tree"), M, 1, 2)


def test_overhead_pair_sharing_and_jitter():
    m = COMM._replace(alpha_inter=0.0, overhead_inter=0.01, pair_sharing=1.0)
    two = perf.allreduce_time(m, 1e8, 2, 1)      # both ring directions on one host pair: bytes doubled
    three = perf.allreduce_time(m, 1e8, 3, 1)
    assert two == pytest.approx(0.01 + 2 * 1.0 * 1e8 / 1e9)
    assert three == pytest.approx(0.01 + 4 / 3 * 1e8 / 1e9)
    j = m._replace(jitter=0.5)
    assert perf.allreduce_time(j, 1e8, 3, 1) == pytest.approx(three * (1 + 0.5 * perf.expected_max_normal(3)))


def test_expected_max_normal():
    assert perf.expected_max_normal(1) == 0.0
    assert perf.expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi), rel=1e-6)  # exact
    assert perf.expected_max_normal(3) == pytest.approx(1.5 / math.sqrt(math.pi), rel=1e-6)  # exact
    z = perf.expected_max_normal(np.array([4, 16, 100, 1000, 10000]))
    assert np.all(np.diff(z) > 0)
    assert z[-2] == pytest.approx(3.2414, rel=0.01)  # tabulated value for n = 1000


def test_compute_contention_and_colocation():
    c = perf.ComputeParams(alpha_c=0.01, beta_c=0.001, kappa=1.0, colocation=0.1)
    p = perf.Placement(1, 4, cores_per_host=2, threads_per_rank=1)
    # 4 ranks on 2 cores: x2 time-slicing; 3 extra ranks on the host: x1.3
    assert perf.compute_time(c, 10, p) == pytest.approx(0.02 * 2 * 1.3)
    assert perf.compute_time(c, 10) == pytest.approx(0.02)


def test_uneven_placement_and_stragglers():
    p = perf.Placement.from_counts((1, 3, 4, 4))
    assert (p.num_nodes, p.replicas_per_node, p.num_replicas) == (4, 4, 12)
    params = perf.PerfParams(perf.ComputeParams(0.1, 0.0, cv=0.2), COMM._replace(grad_bytes=0.0, alpha_inter=0.0), 1.0)
    assert perf.step_time(params, p, 8) == pytest.approx(0.1 * (1 + 0.2 * perf.expected_max_normal(12)))


def test_overlap_power_mean_and_accumulation():
    assert perf.overlap(3.0, 4.0, 1.0) == pytest.approx(7.0)
    assert perf.overlap(3.0, 4.0, 2.0) == pytest.approx(5.0)
    assert perf.overlap(3.0, 4.0, 60.0) == pytest.approx(4.0, rel=1e-2)
    p = perf.PerfParams(perf.ComputeParams(0.1, 0.0), COMM, 1.0)
    one = perf.step_time(p, perf.Placement(2, 2), 8)
    assert perf.step_time(p, perf.Placement(2, 2), 8, accum_steps=3) == pytest.approx(one + 0.2)


def test_vectorised_over_placements_matches_scalar():
    p = perf.PerfParams(perf.ComputeParams(0.05, 0.002, colocation=0.05, cv=0.1),
                        COMM._replace(overhead_inter=0.01, pair_sharing=0.5, jitter=0.2), 2.0)
    counts = [(1,), (2,), (1, 1), (2, 2), (1, 3, 4, 4), (4, 4, 4)]
    batch = np.array([8.0, 16, 32, 64, 128, 256])
    scalar = [float(perf.step_time(p, perf.Placement.from_counts(c), b)) for c, b in zip(counts, batch)]
    arr = perf.Placement(np.array([len(c) for c in counts]), np.array([max(c) for c in counts]), math.inf, 1.0,
                         np.array([sum(c) for c in counts]))
    assert perf.step_time(p, arr, batch) == pytest.approx(scalar)


def test_old_style_construction_still_works():
    # the three-field ComputeParams and six-field CommParams of the first contract
    c = perf.ComputeParams(0.01, 0.001, 1.0)
    m = perf.CommParams(1e-5, 1e10, 1e-4, 1e9, 1e8, "ring")
    t = perf.throughput(perf.PerfParams(c, m, 1.5), perf.Placement(2, 4, 8, 1), np.array([32, 64]))
    assert t.shape == (2,) and np.all(t > 0)
