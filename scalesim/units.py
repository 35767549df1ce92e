"""Units typed on the command line, one parser per kind (docs/formats.md, "Units"):
  durations   '45m', '1h30m', '3600s', '2h', '10us'     a unit is required; 'M' is refused (minutes or mega?)
  counts      '1281167', '1.28M', '25.6M params'       SI prefixes k M G T
  byte sizes  '102MB', '64MiB', '64M', '4096'          a prefix is decimal (64M = 64MB = 64e6 bytes) unless
                                                       it carries an i (64MiB = 67108864 bytes)
  rates       '50Gbit', '200mbit', '6.25GB/s', '25GbE' bytes per second; network rates are always decimal
  int lists   '1,2,4', '1-64', '1,2,8-16'              sorted, unique, positive
Every parser raises UsageError with the offending text, so the CLI prints one line and exits 2."""
from __future__ import annotations

import math
import re

from .errors import UsageError

_NUM = r"(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"

_TIME_UNITS = {
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9,
}
# longest alternatives first so that 'ms' is not read as 'm' followed by garbage
_TIME_RE = re.compile(_NUM + r"\s*(" + "|".join(sorted(map(re.escape, _TIME_UNITS), key=len, reverse=True)) + r")(?![a-zµ])",
                      re.IGNORECASE)

_EXAMPLES = "e.g. 45m, 1h30m, 3600s, 2h"


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in `text`, a sum of <number><unit> parts ('1h30m', '1d 2h', '1.5h', '250ms').
    A bare number is rejected: '60' could mean seconds or minutes."""
    s = str(text).strip()
    if not s:
        raise UsageError(f"empty {what} ({_EXAMPLES})")
    pos, total, seen = 0, 0.0, set()
    while pos < len(s):
        if s[pos].isspace():
            pos += 1
            continue
        m = _TIME_RE.match(s, pos)
        if not m:
            hint = "missing unit" if re.fullmatch(_NUM, s) else "cannot parse"
            raise UsageError(f"bad {what} {text!r}: {hint} ({_EXAMPLES})")
        if m.group(2) == "M":  # '1M' reads as a million as often as a minute
            raise UsageError(f"bad {what} {text!r}: 'M' is ambiguous; write minutes as 'm' or 'min' ({_EXAMPLES})")
        unit = m.group(2).lower()
        scale = _TIME_UNITS[unit]
        if scale in seen:
            raise UsageError(f"bad {what} {text!r}: unit {unit!r} given twice")
        seen.add(scale)
        total += float(m.group(1)) * scale
        pos = m.end()
    if not math.isfinite(total):
        raise UsageError(f"bad {what} {text!r}: not finite")
    return total


def positive_duration(text: str, what: str = "duration") -> float:
    t = parse_duration(text, what)
    if t <= 0:
        raise UsageError(f"bad {what} {text!r}: must be positive")
    return t


def format_duration(seconds: float) -> str:
    """Human-readable duration: '0.25 s', '42 s', '12m 05s', '29h 02m', '5d 04h'."""
    if seconds is None or not math.isfinite(seconds):
        return "inf"
    s = float(seconds)
    if s < 60:
        return f"{s:.3g} s"
    if s < 3600:
        m, sec = divmod(int(round(s)), 60)
        return f"{m}m {sec:02d}s"
    if s < 100 * 3600:  # '29h 00m' reads better than '1d 05h' for training runs
        h, m = divmod(int(round(s / 60)), 60)
        return f"{h}h {m:02d}m"
    d, h = divmod(int(round(s / 3600)), 24)
    return f"{d}d {h:02d}h"


# --- counts, bytes, bandwidths -------------------------------------------------------------
_SI = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_BIN = {"ki": 2.0 ** 10, "mi": 2.0 ** 20, "gi": 2.0 ** 30, "ti": 2.0 ** 40}
_QTY_RE = re.compile(r"\s*" + _NUM + r"\s*([kKmMgGtT]i?)?\s*([A-Za-z/]*)\s*")


def _split(text: str, what: str):
    m = _QTY_RE.fullmatch(str(text))
    if not m:
        raise UsageError(f"bad {what} {text!r}")
    value, prefix, unit = float(m.group(1)), (m.group(2) or ""), m.group(3)
    p = prefix.lower()
    scale = _BIN[p] if p.endswith("i") else _SI[p]
    return value * scale, unit, prefix


def parse_count(text: str, what: str = "count") -> float:
    """'25.6M' -> 25.6e6, '1281167' -> 1281167, '1.28M' -> 1.28e6 (SI prefixes k, M, G, T)."""
    value, unit, _ = _split(text, what)
    if unit.lower() not in ("", "images", "samples", "params", "examples"):
        raise UsageError(f"bad {what} {text!r}: unexpected unit {unit!r}")
    if not value > 0:
        raise UsageError(f"bad {what} {text!r}: must be positive")
    return value


def parse_bytes(text: str, what: str = "size") -> float:
    """'102MB' -> 1.02e8, '64MiB' -> 67108864, '100e6' or '100e6B' -> 1e8 (bytes)."""
    value, unit, prefix = _split(text, what)
    if unit not in ("", "B", "b", "bytes"):
        raise UsageError(f"bad {what} {text!r}: use bytes such as 102MB or 64MiB")
    if unit == "b":
        value /= 8.0
    if value < 0:
        raise UsageError(f"bad {what} {text!r}: must not be negative")
    return value


def parse_size(text: str, what: str = "size") -> int:
    """A positive whole number of bytes ('4KiB', '64MiB', '1MB', '4096')."""
    value = parse_bytes(text, what)
    if not value >= 1 or not math.isfinite(value):
        raise UsageError(f"bad {what} {text!r}: must be at least one byte")
    return int(value)


def parse_rate(text: str, what: str = "bandwidth") -> float:
    """Bytes per second from '50Gbit', '50Gbit/s', '50Gbps', '25GbE', '6.25GB/s', '6.25e9' (B/s)."""
    value, unit, _ = _split(text, what)
    u = unit.replace("/s", "").replace("ps", "")
    if u in ("", "B", "bytes"):
        rate = value
    elif u in ("b", "bit", "bits", "bE", "bitE"):
        rate = value / 8.0
    else:
        raise UsageError(f"bad {what} {text!r}: use e.g. 50Gbit, 25GbE or 6.25GB/s")
    if not rate > 0:
        raise UsageError(f"bad {what} {text!r}: must be positive")
    return rate


def parse_int_list(text: str, what: str = "list") -> list[int]:
    """'1,2,4,8' or '1-64' or '1,2,8-16' -> sorted unique positive ints."""
    out: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise UsageError(f"bad {what} {text!r}: use e.g. 1,2,4 or 1-64")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if lo < 1 or hi < lo:
            raise UsageError(f"bad {what} {text!r}: need positive integers, low-high ascending")
        if hi - lo > 1_000_000:
            raise UsageError(f"bad {what} {text!r}: range too large")
        out.update(range(lo, hi + 1))
    return sorted(out)
