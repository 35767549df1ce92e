"""Read the report's inputs. Every reader raises DataError with one line on unusable input and
is tolerant of optional columns/keys, because validate and predict outputs may grow fields."""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from ..errors import DataError
from ..schema import TABLES, RunDir, read_json


CHARTED = ("steps", "allreduce", "noise")


class Runs(NamedTuple):
    manifests: list          # [(run_id, path, manifest dict)]
    tables: dict             # charted table name -> DataFrame of all runs, with a run_id column
    rows: dict               # run_id -> {table: row count} for every schema table (0 = missing)


def _row_count(rd, table: str) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted((rd.path / table).glob("*.parquet")))


def load_runs(paths) -> Runs:
    import pandas as pd

    manifests, frames, rows = [], {t: [] for t in CHARTED}, {}
    for p in paths:
        rd = RunDir(p)
        m = rd.read_manifest()
        run_id = str(m.get("run_id") or rd.run_id)
        manifests.append((run_id, str(rd.path), m))
        counts = rows[run_id] = {}
        try:
            for t in TABLES:
                if t not in CHARTED:  # counted from the Parquet footers, not read
                    counts[t] = _row_count(rd, t)
                    continue
                df = rd.read_table(t)
                counts[t] = len(df)
                if not df.empty:
                    frames[t].append(df.assign(run_id=run_id))
        except Exception as e:  # noqa: BLE001 - a corrupt part: one line naming the run, not a traceback
            first = (str(e).splitlines() or [""])[0]
            raise DataError(f"{rd.path}: unreadable table part ({type(e).__name__}: {first})")
    tables = {t: (pd.concat(fs, ignore_index=True) if fs else pd.DataFrame()) for t, fs in frames.items()}
    return Runs(manifests, tables, rows)


def load_model(path):
    from .. import modelfile

    return modelfile.load(path)


def bootstrap_perfs(model) -> list:
    """The bootstrap parameter sets that parse; a malformed one is skipped, not fatal."""
    from ..modelfile import perf_from_dict

    out = []
    for b in getattr(model, "bootstrap", None) or []:
        try:
            out.append(perf_from_dict(b) if isinstance(b, dict) else b)
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _first(columns, *names):
    low = {str(c).strip().lower(): c for c in columns}
    for n in names:
        if n in low:
            return low[n]
    return None


def load_validation(path):
    """Any CSV with `measured` and `predicted` columns; quantity/config/lo/hi are optional."""
    import numpy as np
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    try:
        raw = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: not a readable CSV ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
    cols = raw.columns
    meas, pred = _first(cols, "measured"), _first(cols, "predicted")
    if meas is None or pred is None:
        have = ", ".join(str(c)[:30] for c in cols[:8]) + (", ..." if len(cols) > 8 else "")
        raise DataError(f"{p}: validation CSV needs 'measured' and 'predicted' columns (has {have})")
    df = pd.DataFrame({
        "measured": pd.to_numeric(raw[meas], errors="coerce"),
        "predicted": pd.to_numeric(raw[pred], errors="coerce"),
    })
    q = _first(cols, "quantity", "metric", "target")
    df["quantity"] = raw[q].astype(str) if q is not None else "value"
    lab = _first(cols, "config", "label", "config_id", "configuration", "placement")
    df["config"] = raw[lab].astype(str) if lab is not None else [f"row {i + 1}" for i in range(len(raw))]
    for name, aliases in (("lo", ("predicted_lo", "lo", "lower")), ("hi", ("predicted_hi", "hi", "upper"))):
        c = _first(cols, *aliases)
        if c is not None:
            df[name] = pd.to_numeric(raw[c], errors="coerce")
    _placement_columns(df, raw, cols)
    df = df[np.isfinite(df["measured"]) & np.isfinite(df["predicted"]) & (df["measured"] != 0)]
    if df.empty:
        raise DataError(f"{p}: no rows with finite measured and predicted values")
    df["error_pct"] = 100.0 * (df["predicted"] - df["measured"]) / df["measured"].abs()
    return df.reset_index(drop=True)


def _placement_columns(df, raw, cols) -> None:
    """num_nodes (and seen, when written) for the multi-node figures: from columns, else from validate's
    configuration labels ('nodes=4 replicas=4 local_batch=64')."""
    import pandas as pd

    c = _first(cols, "num_nodes", "nodes")
    if c is not None:
        df["num_nodes"] = pd.to_numeric(raw[c], errors="coerce")
    else:
        df["num_nodes"] = pd.to_numeric(df["config"].str.extract(r"nodes=(\d+)", expand=False), errors="coerce")
    s = _first(cols, "seen")
    if s is not None:
        df["seen"] = raw[s].astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


class Prediction(NamedTuple):
    grid: object            # DataFrame: num_nodes, global_batch, time_s, plus any scalar fields
    marks: list             # [(label, num_nodes, global_batch, detail)]
    facts: dict             # top-level scalars, one level of nested scalars, lists of strings


_NODES = ("num_nodes", "nodes", "n_nodes")
_BATCH = ("global_batch", "batch", "global_bsz", "batch_size")
_TIME = ("time_to_target", "predicted_time", "time_s", "time", "seconds", "time_to_target_s", "predicted_time_s")
_MARKS = ("recommendation", "recommended", "best", "cheapest", "fastest")


def _num(v):
    """A number from a scalar or an interval dict ({median|mid|value|p50, lo, hi})."""
    if isinstance(v, dict):
        for k in ("median", "mid", "value", "p50", "mean"):
            if k in v:
                return _num(v[k])
        return None
    if isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x


def _pick(d: dict, names):
    for n in names:
        if n in d:
            return d[n]
    return None


def _is_cell(d) -> bool:
    return isinstance(d, dict) and _pick(d, _NODES) is not None and _pick(d, _BATCH) is not None


def _cell_lists(obj, found):
    """All lists of configuration records anywhere in the JSON (the grid is the longest)."""
    if isinstance(obj, list):
        if obj and all(_is_cell(x) for x in obj):
            found.append(obj)
        for x in obj:
            _cell_lists(x, found)
    elif isinstance(obj, dict):
        for v in obj.values():
            _cell_lists(v, found)
    return found


def _detail(rec: dict) -> str:
    """One line for a marked configuration: its scalar fields, time first."""
    t = _num(_pick(rec, _TIME))
    parts = [f"time to target {t / 3600:.3g} h"] if t is not None and math.isfinite(t) else []
    parts += [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in rec.items()
              if k not in _TIME and not isinstance(v, (dict, list))]
    return ", ".join(parts)


def load_prediction(path) -> Prediction:
    import pandas as pd

    obj = read_json(path)
    lists = _cell_lists(obj, [])
    rows = []
    for rec in max(lists, key=len) if lists else []:
        t = _num(_pick(rec, _TIME))
        row = {"num_nodes": _num(_pick(rec, _NODES)), "global_batch": _num(_pick(rec, _BATCH)),
               "time_s": t if t is not None and math.isfinite(t) else None}
        for k, v in rec.items():
            if k not in row and not isinstance(v, (dict, list)) and k not in _NODES + _BATCH + _TIME:
                row[k] = v
        rows.append(row)
    grid = pd.DataFrame(rows)
    marks, facts = [], {}
    if isinstance(obj, dict):
        for key in _MARKS:
            rec = obj.get(key)
            if _is_cell(rec):
                marks.append((key, _num(_pick(rec, _NODES)), _num(_pick(rec, _BATCH)), _detail(rec)))
        for k, v in obj.items():
            if isinstance(v, dict) and k not in _MARKS:
                facts.update({f"{k}.{kk}": vv for kk, vv in v.items() if not isinstance(vv, (dict, list))})
            elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):
                facts[k] = "; ".join(v)
            elif not isinstance(v, (dict, list)):
                facts[k] = v
    if grid.empty and not marks:
        raise DataError(f"{path}: no time-to-target grid or recommendation found "
                        f"(expected records with num_nodes and global_batch)")
    return Prediction(grid, marks, facts)
