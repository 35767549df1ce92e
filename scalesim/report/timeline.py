"""A report section for Horovod Timeline files (`--timeline-filename`) from a user's own job: the
per-tensor allreduce table of scalesim.measure.timeline (algbw and busbw as nccl-tests define them)."""
from __future__ import annotations

from pathlib import Path

from .page import Section, esc, grid_table


def split_timelines(paths) -> tuple[list, list]:
    """(timeline files, other paths) from the report's positional arguments."""
    from ..measure.timeline import is_timeline

    paths = list(paths or [])
    tl = [p for p in paths if Path(p).suffix.lower() == ".json" and is_timeline(p)]
    return tl, [p for p in paths if p not in tl]


def section(paths) -> Section:
    from ..measure.timeline import read_allreduce

    html, notes = [], []
    for p in paths:
        t = read_allreduce(p)
        n = t["num_replicas"].iloc[0] if len(t) else None
        rows = []
        for r in t.sort_values("total_time", ascending=False).itertuples():
            busbw = r.algbw * 2 * (n - 1) / n if n and n > 1 else float("nan")
            rows.append((r.tensor, r.calls, f"{r.size_bytes:,.0f}", f"{r.negotiate_time * 1e3:.3f}",
                         f"{r.allreduce_time * 1e3:.3f}", f"{r.total_time * 1e3:.1f}",
                         f"{r.algbw / 1e6:.2f}", f"{busbw / 1e6:.2f}"))
        html.append(f"<h3>{esc(p)} ({esc(n or '?')} ranks)</h3>" + grid_table(
            ["tensor", "calls", "bytes", "negotiate ms", "allreduce ms", "total ms", "algbw MB/s", "busbw MB/s"], rows))
    notes.append("Tensors fused into one buffer share one allreduce span, so their per-tensor algbw understates "
                 "the link; busbw = algbw x 2(n-1)/n (nccl-tests).")
    return Section("timeline", "Horovod Timeline: allreduce per tensor", [], notes, "".join(html))
