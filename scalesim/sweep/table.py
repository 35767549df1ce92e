"""The table of trials: one row per trial, rewritten atomically (Parquet and CSV) after every trial,
so a crash or a kill leaves the last complete table. No TensorFlow here.

    <sweep>/sweep.json       the sweep's spec and sessions (see driver)
    <sweep>/trials.parquet   the table (same rows as trials.csv)
    <sweep>/runs/t0003/      trial 3's run directory (a `scalesim train` run);
    <sweep>/runs/t0003-a2/   ... its second attempt after a failure (the first is kept)

Columns: trial_id, status ('pending'|'running'|'done'|'failed'), objective, <one column per
parameter>, arm, params (JSON of the trial's parameters), test_error, test_loss, train_loss,
epochs_done, wall_time (s, dispatch to result on the driver), worker_time (s, inside the
worker: data, model, training), train_seconds (s, the epochs' own timers), started, finished,
attempts, error, run_dir (relative to the sweep), engine, worker_pid."""
from __future__ import annotations

import io
import json
from pathlib import Path

from ..schema import atomic_write_bytes

TABLE, CSV = "trials.parquet", "trials.csv"
STATUSES = ("pending", "running", "done", "failed")
LEAD = ["trial_id", "status", "objective"]
TAIL = ["arm", "params", "test_error", "test_loss", "train_loss", "epochs_done", "wall_time",
        "worker_time", "train_seconds",
        "started", "finished", "attempts", "error", "run_dir", "engine", "worker_pid"]


def new_row(trial_id: int, params: dict) -> dict:
    from .space import arm

    nan = float("nan")
    scalar = {k: v for k, v in params.items() if not isinstance(v, (list, tuple))}   # lists live in params
    return {"trial_id": trial_id, "status": "pending", "objective": nan, **scalar, "arm": arm(params),
            "params": json.dumps(params, sort_keys=True), "test_error": nan, "test_loss": nan, "train_loss": nan,
            "epochs_done": 0, "wall_time": nan, "worker_time": nan, "train_seconds": nan, "started": None,
            "finished": None, "attempts": 0, "error": None, "run_dir": None, "engine": None, "worker_pid": None}


def params_of(row: dict) -> dict:
    return json.loads(row["params"])


def frame(rows: list[dict]):
    import pandas as pd

    df = pd.DataFrame(sorted(rows, key=lambda r: r["trial_id"]))
    if df.empty:
        return pd.DataFrame(columns=LEAD + TAIL)
    middle = [c for c in df.columns if c not in LEAD and c not in TAIL]
    df = df[LEAD + middle + TAIL]
    for c in ("worker_pid", "epochs_done", "attempts"):
        df[c] = df[c].astype("Int64")
    return df


def write(sweep_dir: Path, rows: list[dict]) -> None:
    """Both files atomically; the Parquet is the source of truth, the CSV is for people."""
    df = frame(rows)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(Path(sweep_dir) / TABLE, buf.getvalue())
    atomic_write_bytes(Path(sweep_dir) / CSV, df.to_csv(index=False).encode())


def read(sweep_dir: Path) -> list[dict]:
    """The rows as dicts ([] when the sweep has no table yet)."""
    import pandas as pd

    p = Path(sweep_dir) / TABLE
    if not p.is_file():
        return []
    df = pd.read_parquet(p).astype(object)
    return [{k: (None if _missing(v) else v) if k in ("error", "run_dir", "started", "finished", "engine",
                                                        "worker_pid") else v
             for k, v in r.items()} for r in df.to_dict("records")]


def _missing(v) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def unfinished(rows: list[dict]) -> list[dict]:
    """Rows a resume runs again: everything not done (failed, pending, or 'running' when the
    driver itself died mid-trial)."""
    return [r for r in rows if r["status"] != "done"]
