"""Allreduce microbenchmark definitions (nccl-tests doc/PERFORMANCE.md) and size parsing."""
import pytest

from scalesim.errors import UsageError
from scalesim.measure import allreduce_bench as ab
from scalesim.units import parse_size


def test_nccl_tests_bandwidth_definitions():
    # 64 MiB in 0.5 s: algbw = S/t; busbw = algbw * 2(n-1)/n (a ring moves 2(n-1)/n * S per rank).
    S, t = 64 * 2**20, 0.5
    assert ab.algbw(S, t) == pytest.approx(134217728.0)
    assert ab.busbw(S, t, 8) == pytest.approx(134217728.0 * 14 / 8)
    assert ab.busbw(S, t, 2) == pytest.approx(ab.algbw(S, t))      # n = 2: factor 1
    assert ab.busbw(S, t, 1) == 0.0                                  # nothing crosses a link


def test_default_sizes_span_4k_to_64m_geometrically():
    sizes = ab.geometric_sizes()
    assert sizes[0] == 4 * 1024 and sizes[-1] == 64 * 2**20
    assert all(b == 4 * a for a, b in zip(sizes, sizes[1:]))
    assert ab.geometric_sizes(4096, 256 * 2**20, 4)[-1] == 256 * 2**20
    # A ceiling off the geometric grid is still measured, and sizes are whole float32 elements.
    assert ab.geometric_sizes(4096, 10**6, 4) == [4096, 16384, 65536, 262144, 1000000]
    with pytest.raises(ValueError):
        ab.geometric_sizes(4096, 1024)


@pytest.mark.parametrize("text,value", [("4KiB", 4096), ("64MiB", 64 * 2**20), ("1GiB", 2**30), ("4096", 4096),
                                        ("1.5MiB", 1572864), ("256MB", 256 * 10**6), ("64M", 64 * 10**6)])
def test_message_sizes_use_the_one_byte_parser(text, value):
    # one rule everywhere (scalesim.units): a prefix is decimal unless it carries an i
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["", "x", "4Q", "0"])
def test_parse_size_rejects(bad):
    with pytest.raises(UsageError):
        parse_size(bad)


def test_iteration_count_targets_the_time_budget():
    # 1 MB at an estimated 100 MB/s takes 10 ms: a 0.5 s budget gives 50 iterations (capped).
    assert ab._iters_for(10**6, 0.5, 1e8, 3, 100) == 50
    assert ab._iters_for(10**9, 0.5, 1e8, 3, 100) == 3
