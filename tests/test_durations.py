import math

import pytest

from scalesim.units import (format_duration, parse_bytes, parse_count, parse_duration,
                                         parse_int_list, parse_rate, positive_duration)
from scalesim.errors import UsageError


@pytest.mark.parametrize("text,seconds", [
    ("45m", 2700), ("1h30m", 5400), ("1h 30m", 5400), ("3600s", 3600), ("2h", 7200), ("1.5h", 5400),
    ("1d2h", 93600), ("90min", 5400), ("250ms", 0.25), ("10us", 1e-5), ("20µs", 2e-5), ("2H", 7200),
    ("1h0m30s", 3630), ("0s", 0), (".5h", 1800), ("29h", 104400),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "60", "1x", "h", "1h30", "1h1h", "abc", "1 hour and 5m", "-5m", "1e999h"])
def test_parse_duration_rejects(text):
    with pytest.raises(UsageError) as e:
        parse_duration(text, "--target-time")
    assert "\n" not in str(e.value) and "--target-time" in str(e.value)


def test_capital_m_is_refused_with_a_hint():
    with pytest.raises(UsageError, match="'M' is ambiguous"):
        parse_duration("1M", "--target-time")
    assert parse_duration("1m") == 60 and parse_duration("1min") == 60


def test_rates_and_sizes_share_one_rule():
    assert parse_rate("200mbit") == 25e6 and parse_rate("1gbit") == 125e6 and parse_rate("500Mbit") == 62.5e6
    assert parse_bytes("64M") == parse_bytes("64MB") == 64e6
    assert parse_bytes("64MiB") == 64 * 2 ** 20


def test_bare_number_says_missing_unit():
    with pytest.raises(UsageError, match="missing unit"):
        parse_duration("3600")


def test_positive_duration():
    assert positive_duration("1m") == 60
    with pytest.raises(UsageError, match="positive"):
        positive_duration("0s")


@pytest.mark.parametrize("seconds,text", [(0.25, "0.25 s"), (42, "42 s"), (725, "12m 05s"), (3720, "1h 02m"),
                                          (104400, "29h 00m"), (446400, "5d 04h"), (math.inf, "inf")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_quantities():
    assert parse_rate("50Gbit") == 6.25e9
    assert parse_rate("50Gbit/s") == 6.25e9
    assert parse_rate("25GbE") == 3.125e9
    assert parse_rate("6.25GB/s") == 6.25e9
    assert parse_rate("10Gbps") == 1.25e9
    assert parse_bytes("102MB") == 102e6
    assert parse_bytes("64MiB") == 67108864
    assert parse_bytes("0") == 0
    assert parse_count("25.6M") == pytest.approx(25.6e6)
    assert parse_count("1281167 images") == 1281167
    assert parse_int_list("1,2,8-10") == [1, 2, 8, 9, 10]
    for bad in (lambda: parse_rate("fast"), lambda: parse_rate("0Gbit"), lambda: parse_bytes("5 parsecs"),
                lambda: parse_count("-3"), lambda: parse_int_list("0"), lambda: parse_int_list("4-2"),
                lambda: parse_int_list("a,b")):
        with pytest.raises(UsageError):
            bad()
