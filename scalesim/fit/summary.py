"""The text `scalesim fit` prints: data used, in-sample errors, and every parameter with its unit, its
90 % bootstrap interval and what it means (from the parameter table, scalesim.model.perf.PARAMS)."""
from __future__ import annotations

import math

from ..errors import UsageError
from ..model.perf import PARAMS


def parse_fix(items) -> dict:
    """['bw_inter=1.25e9', ...] -> {name: value} (names checked by scalesim.fit.identify)."""
    out = {}
    for it in items:
        name, sep, value = it.partition("=")
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if not sep or not name.strip() or not math.isfinite(v) or v < 0:
            raise UsageError(f"--fix needs NAME=VALUE with a non-negative number, got {it!r}")
        out[name.strip()] = v
    return out


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def with_unit(value, unit: str) -> str:
    """4.2e-05 s -> '42 us'; 5.886e+08 B/s -> '0.5886 GB/s'; NaN/None -> 'unknown'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    v = float(value)
    if v == 0 and unit in ("s", "B/s", "grad/s"):
        return f"0 {unit}"
    if unit == "s":
        for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")):
            if abs(v) >= scale or name == "ns":
                return f"{v / scale:.4g} {name}"
    if unit == "B/s":
        for scale, name in ((1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s"), (1.0, "B/s")):
            if abs(v) >= scale or name == "B/s":
                return f"{v / scale:.4g} {name}"
    if unit == "grad/s":
        return f"{v:.4g} grad/s"
    return f"{v:.4g}"


def _param_line(p, value, intervals, fitted, bw_unit: str, recentred=()) -> str:
    unit = bw_unit if p.unit == "B/s" else p.unit
    iv = intervals.get(p.name)
    if iv:
        tag = f"[{with_unit(iv[0], unit)}, {with_unit(iv[1], unit)}]"
    else:
        tag = "fitted" if p.name in fitted else "fixed"
    poor = "  (poorly identified)" if iv and iv[0] is not None and iv[0] > 0 and iv[1] / iv[0] > 100 else ""
    if p.name in recentred:
        poor = "  (poorly identified: bootstrap biased, interval re-centred)"
    return f"  {p.name:15s} {with_unit(value, unit):>13}  {tag:<27}{poor}  {p.meaning}"


def summary(m) -> str:
    from .stateff import stateff_lines

    d, q, meta = m.data, m.quality, m.meta or {}
    if m.perf is None:
        return "\n".join(["training curves only: no throughput model (predict/simulate need one; validate "
                          "checks steps to the target)"] + [f"  note: {n}" for n in meta.get("notes", [])]
                         + stateff_lines(m.stateff or {}))
    lines = [f"fitted {d['rows']} configurations" + (f" + {d['allreduce_rows']} allreduce benchmark rows"
                                                       if d.get("allreduce_rows") else "")
             + (f"; {d['held_out_rows']} held out by {d['holdout']!r}" if d.get("holdout") else "")]
    lines += [f"  in-sample MAPE {k}: {v['mape']:.1f} % over {v['n']}" for k, v in q.items()]
    lines.append("parameters (90 % bootstrap interval; fixed = pinned, see the notes):")
    fitted = set(meta.get("fitted", []))
    values = {**m.perf.compute._asdict(), **m.perf.comm._asdict(), "gamma": m.perf.gamma}
    bw_unit = "B/s" if meta.get("grad_bytes_known", True) else "grad/s"
    recentred = set(meta.get("intervals_recentred") or [])
    lines += [_param_line(p, values[p.name], m.intervals or {}, fitted, bw_unit, recentred) for p in PARAMS]
    if bw_unit == "grad/s":
        lines.append("  (gradient size unknown: bw_* are in gradients/s, i.e. M/bw is the fitted quantity)")
    lines += [f"  note: {note}" for note in meta.get("notes", [])]
    lines += stateff_lines(m.stateff or {})
    return "\n".join(lines)
