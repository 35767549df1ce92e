"""The run directory: the one on-disk schema that `measure` and `train` write and `fit`,
`validate` and `report` read. No TensorFlow here.

    data/runs/<run_id>/
      manifest.json          run facts (see Manifest keys below), rewritten atomically
      <table>/<part>.parquet one Parquet file per completed configuration; a table is the
                             concatenation of its parts

Tables and their columns (SI units: seconds, bytes, bytes/s):
  steps      config_id, num_nodes, num_replicas, local_batch, global_batch, rank, step,
             mode ('instrumented' | 'production'), data_time, compute_time, allreduce_time,
             update_time, step_time, bytes_reduced, ranks_per_host, threads_per_rank,
             cores_per_host
             (production rows carry step_time only; the split columns are NaN there. step_time
             of both modes includes fetching the batch; instrumented step_time = sum of the split.
             num_nodes = hosts the ranks ran on, num_replicas = Horovod ranks; ranks_per_host x
             threads_per_rank / cores_per_host > 1 means ranks share cores)
  allreduce  num_nodes, num_replicas, size_bytes, iters, time (mean s per allreduce),
             algbw, busbw   (nccl-tests definitions: algbw = S/t, busbw = algbw * 2(n-1)/n)
  noise      config_id, num_replicas, local_batch, step, local_sqnorm, global_sqnorm,
             grad_sqr, grad_var, b_simple   (McCandlish et al. 2018, App. A.1),
             ema_grad_sqr, ema_grad_var (bias-corrected EMAs; b_simple = their ratio),
             b_small, b_big (the batch sizes of local_sqnorm and global_sqnorm: b and n*b, or
             b/2 and b with one rank, where the batch is split in halves)
  epochs     epoch, lr, train_loss, train_acc, test_loss, test_acc, images_per_sec,
             elapsed, steps   (training runs)
  timeline   num_replicas, tensor, activity, depth, count, total_time, mean_time, size_bytes
             (optional: parsed Horovod Timeline, `measure --timeline`)

Manifest keys: schema, run_id, kind ('measure' | 'train'), created, config (full CLI config),
hosts [{hostname, ranks, cores}], threads_per_rank, versions {python, tensorflow, keras,
horovod, scalesim, git_commit}, model {name, params, grad_bytes}, configs [{config_id,
num_nodes, num_replicas, local_batch, status ('pending'|'done'|'failed'), error}].
Measure runs add: cores_per_host, configs[].{global_batch, ranks_per_host, threads_per_rank,
summary {step_time, images_per_sec, data_time, compute_time, allreduce_time, update_time,
instrumented_step_time, b_simple, noise_skipped, steps}}, allreduce_benchmarks [{num_replicas,
status, error}], launch_hosts {num_replicas: hosts}, noise_nonfinite_skipped,
sessions [{started, elapsed (s), resume}].
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import DataError

SCHEMA = "scalesim.run/1"
_UMASK = os.umask(0o022)
os.umask(_UMASK)

TABLES = ("steps", "allreduce", "noise", "epochs", "timeline")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results should be readable like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file, never half
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


_atomic_write_bytes = atomic_write_bytes  # the name other modules imported first


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Strict JSON (NaN/inf become null, so any JSON reader can open the file), written atomically."""
    text = json.dumps(_finite(obj), indent=2, sort_keys=False, default=_jsonable, allow_nan=False)
    atomic_write_bytes(Path(path), (text + "\n").encode())


def _finite(o):
    import math

    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if hasattr(o, "dtype") and getattr(o, "shape", None) == ():  # numpy scalar
        return _finite(o.item())
    if hasattr(o, "tolist") and hasattr(o, "dtype"):  # numpy array
        return _finite(o.tolist())
    return o


def _jsonable(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})")


class RunDir:
    """A run directory. Writes are per part and atomic, so a crash never loses completed parts."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    # manifest -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict:
        if not self.exists():
            raise DataError(f"{self.path}: not a scalesim run directory (no manifest.json)")
        m = read_json(self.manifest_path)
        if m.get("schema") != SCHEMA:
            raise DataError(f"{self.path}: unknown schema {m.get('schema')!r} (expected {SCHEMA})")
        return m

    def write_manifest(self, manifest: dict) -> None:
        manifest = {"schema": SCHEMA, **{k: v for k, v in manifest.items() if k != "schema"}}
        write_json(self.manifest_path, manifest)

    def update_manifest(self, **changes) -> dict:
        m = self.read_manifest()
        m.update(changes)
        self.write_manifest(m)
        return m

    def set_config_status(self, config_id: str, status: str, error: str | None = None) -> None:
        m = self.read_manifest()
        for c in m.get("configs", []):
            if c["config_id"] == config_id:
                c["status"], c["error"] = status, error
        self.write_manifest(m)

    # tables -------------------------------------------------------------------------------
    def write_part(self, table: str, part: str, df) -> Path:
        """Write one part of a table (e.g. one configuration) atomically."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        out = self.path / table / f"{_safe(part)}.parquet"
        atomic_write_bytes(out, buf.getvalue())
        return out

    def has_table(self, table: str) -> bool:
        return any((self.path / table).glob("*.parquet"))

    def read_table(self, table: str):
        """The whole table (all parts), or an empty DataFrame if no part was written."""
        import pandas as pd

        parts = sorted((self.path / table).glob("*.parquet"))
        if not parts:
            return pd.DataFrame()
        return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in str(name))


def open_run(path: str | os.PathLike) -> RunDir:
    """Open an existing run directory, with a one-line error when it is not one."""
    rd = RunDir(path)
    rd.read_manifest()
    return rd
