"""Readers for measurements made by other systems (formats documented in docs/formats.md).

Throughput trace (CSV, one row per measured configuration):
    num_nodes, num_replicas, local_bsz, step_time [, sync_time]
or  placement, local_bsz, step_time [, sync_time]      placement "1344" = 4 hosts with 1, 3, 4, 4 ranks
`local_batch` is accepted for `local_bsz`. Seconds per optimizer step; sync_time = gradient
synchronisation not hidden behind the backward pass (AdaptDL's definition).

Training curve (CSV, one file per global batch size; AdaptDL publishes `validation-<batch>.csv`):
    iteration, metric [, grad_sqr, grad_var [, grad_var_batch]]
grad_sqr = |G|^2, grad_var = tr(Sigma) per example (McCandlish et al.), so B_simple = grad_var / grad_sqr;
give grad_var_batch when grad_var is the variance of a mean over that many examples (AdaptDL logs the
variance of a mean over the job's initial batch; with its `progress` column this is detected, see
scalesim.fit.curves). The batch size comes from a `batch_size` column, an explicit --batch-size, or
the exact file name `validation-<B>.csv` / `<workload>.validation-<B>.csv` (nothing else is guessed).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pathlib import Path

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:  # pandas is imported lazily: the CLI parser imports this module
    import pandas as pd

TRACE_COLUMNS = ("num_nodes", "num_replicas", "replicas_per_node", "placement", "local_batch", "step_time",
                 "sync_time")


def parse_placement(text) -> tuple[int, ...]:
    """"1344" -> (1, 3, 4, 4): ranks per host, one digit per host."""
    s = str(text).strip()
    if s.endswith(".0"):  # a placement column read as floats
        s = s[:-2]
    if not s.isdigit() or "0" in s:
        raise ValueError(f"placement {text!r} is not a string of digits 1-9 (ranks per host)")
    return tuple(int(c) for c in s)


def _read_csv(path: Path, **kw):
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return pd.read_csv(path, **kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV file ({str(e).splitlines()[0]})")


def _numeric(df, col: str, path: Path, positive: bool = True, allow_nan: bool = False):
    import pandas as pd

    v = pd.to_numeric(df[col], errors="coerce")
    bad = v.isna() & (df[col].notna() if allow_nan else True)
    if positive:
        bad |= v.notna() & ~(v > 0)
    bad |= v.notna() & ~np.isfinite(v)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(f"{path}: row {i + 2}: column {col} must be a positive number, got {df[col].iloc[i]!r}")
    return v.astype(float)


def is_throughput_trace(columns) -> bool:
    return "step_time" in columns


def read_throughput_trace(path) -> "pd.DataFrame":
    """Normalised trace: TRACE_COLUMNS, one row per configuration (placement is None without it)."""
    import pandas as pd

    path = Path(path)
    df = _read_csv(path, dtype={"placement": str})
    df.columns = [c.strip() for c in df.columns]
    if "local_batch" in df and "local_bsz" not in df:
        df = df.rename(columns={"local_batch": "local_bsz"})
    have_split = {"num_nodes", "num_replicas"} <= set(df.columns)
    need = ["local_bsz", "step_time"] + ([] if have_split else ["placement"])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; a throughput trace needs "
                        "num_nodes,num_replicas (or placement),local_bsz,step_time[,sync_time]")
    if df.empty:
        raise DataError(f"{path}: no rows")
    out = pd.DataFrame({"local_batch": _numeric(df, "local_bsz", path),
                        "step_time": _numeric(df, "step_time", path)})
    if "sync_time" in df:
        sync = _numeric(df, "sync_time", path, positive=False, allow_nan=True)
        if (sync < 0).any():
            i = int(np.argmax((sync < 0).to_numpy()))
            raise DataError(f"{path}: row {i + 2}: sync_time must be >= 0")
        if (sync > out["step_time"]).any():
            i = int(np.argmax((sync > out["step_time"]).to_numpy()))
            raise DataError(f"{path}: row {i + 2}: sync_time exceeds step_time")
        out["sync_time"] = sync
    else:
        out["sync_time"] = np.nan
    if have_split:
        nodes, reps = _numeric(df, "num_nodes", path), _numeric(df, "num_replicas", path)
        if ((nodes % 1) != 0).any() or ((reps % 1) != 0).any() or (nodes > reps).any():
            i = int(np.argmax((((nodes % 1) != 0) | ((reps % 1) != 0) | (nodes > reps)).to_numpy()))
            raise DataError(f"{path}: row {i + 2}: num_nodes and num_replicas must be whole numbers with "
                            "num_nodes <= num_replicas")
        out["num_nodes"], out["num_replicas"] = nodes.astype(int), reps.astype(int)
        # Without the per-host counts, assume ranks spread as evenly as possible.
        out["replicas_per_node"] = -(-out["num_replicas"] // out["num_nodes"])
        out["placement"] = df["placement"].astype(str) if "placement" in df else None
    else:
        counts = []
        for i, p in enumerate(df["placement"]):
            try:
                counts.append(parse_placement(p))
            except ValueError as e:
                raise DataError(f"{path}: row {i + 2}: {e}")
        out["num_nodes"] = [len(c) for c in counts]
        out["num_replicas"] = [sum(c) for c in counts]
        out["replicas_per_node"] = [max(c) for c in counts]
        out["placement"] = ["".join(map(str, c)) for c in counts]
    return out[list(TRACE_COLUMNS)]
