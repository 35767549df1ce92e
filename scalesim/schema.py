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


class WriteError(DataError, OSError):
    """Writing an output failed (disk full, read-only, a file where a directory should be): one line
    naming the file. Also an OSError, for callers that handle those."""

    def __init__(self, path, err: OSError):
        OSError.__init__(self, err.errno, err.strerror or str(err), str(path))

    def __str__(self) -> str:
        return f"{self.filename}: cannot write ({self.strerror})"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half of it."""
    path = Path(path)
    try:
        _atomic_write(path, data)
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(path, e) from None


def _atomic_write(path: Path, data: bytes) -> None:
    if path.is_dir():
        raise IsADirectoryError(21, "it is a directory", str(path))
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


def read_json(path: str | os.PathLike) -> Any:
    """Parsed strict JSON, or a DataError naming the file: missing, a directory, unreadable, not
    UTF-8, not JSON, NaN/Infinity tokens (scalesim writes null), or nested too deeply to parse."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a directory, not a JSON file")
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise DataError(f"{p}: not a JSON file (not UTF-8 text)") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except ValueError as e:   # _no_constant
        raise DataError(f"{p}: not valid JSON ({e})") from None
    except RecursionError:
        raise DataError(f"{p}: not a usable JSON file (nested too deeply)") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number; write null for an unknown value")


_POS_INT = {"type": "integer", "minimum": 1}
_POS_INT_OR_NULL = {"type": ["integer", "null"], "minimum": 1}
_STATUS = {"enum": ["pending", "running", "done", "failed"]}
# A host's cores may be a share: an emulated node's (or a container's) CPU quota, e.g. 0.25.
_CORES = {"type": "number", "exclusiveMinimum": 0}
MANIFEST_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "scalesim run manifest", "type": "object", "required": ["schema", "kind", "configs"],
    "properties": {
        "schema": {"const": SCHEMA},
        "run_id": {"type": "string"},
        "kind": {"enum": ["measure", "train"]},
        "config": {"type": ["object", "null"]},
        "status": _STATUS,
        "hosts": {"type": "array", "items": {
            "type": "object",
            "properties": {"hostname": {"type": "string"}, "ranks": {"type": "integer", "minimum": 0},
                           "cores": _CORES}}},
        "cores_per_host": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "threads_per_rank": {"type": ["integer", "string", "null"], "minimum": 1},
        "model": {"type": ["object", "null"], "properties": {
            "name": {"type": ["string", "null"]},
            "params": {"type": ["integer", "null"], "minimum": 0},
            "grad_bytes": {"type": ["number", "null"], "exclusiveMinimum": 0}}},
        "configs": {"type": "array", "items": {
            "type": "object", "required": ["config_id", "num_replicas", "status"],
            "properties": {"config_id": {"type": "string", "minLength": 1},
                           "num_nodes": _POS_INT_OR_NULL, "num_replicas": _POS_INT,
                           "local_batch": _POS_INT_OR_NULL, "global_batch": _POS_INT_OR_NULL,
                           "ranks_per_host": _POS_INT_OR_NULL, "status": _STATUS,
                           "error": {"type": ["string", "null"]}, "summary": {"type": ["object", "null"]}}}},
        "allreduce_benchmarks": {"type": "array", "items": {
            "type": "object", "required": ["num_replicas", "status"],
            "properties": {"num_replicas": _POS_INT, "status": _STATUS}}},
        "sessions": {"type": "array"},
        "versions": {"type": ["object", "null"]},
    },
}


def check_manifest(m, path) -> dict:
    """The manifest by MANIFEST_SCHEMA, or a DataError naming the file and the first problem."""
    if not isinstance(m, dict):
        raise DataError(f"{path}: not a run manifest (a JSON {type(m).__name__}, expected an object)")
    if m.get("schema") != SCHEMA:
        raise DataError(f"{Path(path).parent}: unknown schema {m.get('schema')!r} (expected {SCHEMA})")
    import jsonschema  # lazy, like pandas

    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(MANIFEST_SCHEMA).iter_errors(m))
    if err is not None:
        where = "/".join(map(str, err.absolute_path)) or "top level"
        raise DataError(f"{path}: malformed run manifest ({where}: {err.message})")
    return m


def check_output(out, inputs=(), flag: str = "--out") -> Path:
    """Refuse an output path that is (or would overwrite part of) an input, that is a directory, or
    that lies under a file; call it before any work is done."""
    o = Path(out)
    r = o.resolve()
    for i in inputs:
        if i is None:
            continue
        ip = Path(i).resolve()
        inside = ip.is_dir() and ip in r.parents
        if r == ip or (inside and (r.exists() or r.parent != ip or r.name == "manifest.json")):
            raise DataError(f"{flag} {out} would overwrite the input {i}; choose another path")
    if o.is_dir():
        raise DataError(f"{flag} {out} is a directory; give a file name")
    for parent in r.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(f"{flag} {out}: {parent} is a file, not a directory")
            break
    return o


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
        return check_manifest(read_json(self.manifest_path), self.manifest_path)

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
        """The whole table (all parts), or an empty DataFrame if no part was written. Every part is
        checked like a CSV trace (required columns, types, finite and in range: TABLE_CHECKS), and
        a configuration the manifest says is done must have rows: else one DataError naming the file."""
        import pandas as pd

        parts = sorted((self.path / table).glob("*.parquet"))
        frames = [read_part(p, table) for p in parts]
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if self.exists():
            _check_complete(self, table, df)
        return df


# Row checks of run-directory tables, the same as for CSV traces (scalesim.fit.traces):
# column -> (required, rule). Rules: pos = finite > 0; nonneg = finite >= 0 (one rank's allreduce
# takes ~0 s); int+ = whole number >= 1; int0 = whole number >= 0; nonneg? = NaN or finite >= 0; str = text.
_SPLIT = ("data_time", "compute_time", "allreduce_time", "update_time", "bytes_reduced")
TABLE_CHECKS = {
    "steps": {"config_id": (True, "str"), "num_replicas": (True, "int+"), "local_batch": (True, "int+"),
              "num_nodes": (False, "int+"), "global_batch": (False, "int+"), "rank": (True, "int0"),
              "step": (True, "int0"), "mode": (False, "str"), "step_time": (True, "pos"),
              **{c: (False, "nonneg?") for c in _SPLIT}, "ranks_per_host": (False, "int+"),
              "threads_per_rank": (False, "int+"), "cores_per_host": (False, "pos")},
    "allreduce": {"num_replicas": (True, "int+"), "num_nodes": (False, "int+"), "size_bytes": (True, "pos"),
                  "time": (True, "nonneg"), "iters": (False, "int+"), "algbw": (False, "nonneg?"),
                  "busbw": (False, "nonneg?")},
    "noise": {"config_id": (True, "str"), "num_replicas": (True, "int+"), "local_batch": (True, "int+"),
              "step": (True, "int0"), "local_sqnorm": (False, "nonneg?"), "global_sqnorm": (False, "nonneg?")},
    "epochs": {"epoch": (True, "int0"), "lr": (False, "nonneg?"), "elapsed": (False, "nonneg?"),
               "images_per_sec": (False, "nonneg?")},
    "timeline": {"num_replicas": (True, "int+")},
}
_RULE_TEXT = {"pos": "a positive number", "nonneg": "a number >= 0", "int+": "a whole number >= 1", "int0": "a whole number >= 0",
              "nonneg?": "a number >= 0 (or empty)", "str": "text"}


def read_part(path: Path, table: str):
    """One Parquet part, checked by TABLE_CHECKS[table]; any problem is a DataError naming it."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: not a file (a {table} table part should be a Parquet file)")
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises many kinds; each means "unreadable"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"{path}: not a readable Parquet file ({first})") from None
    check_table(df, table, path)
    return df


def check_table(df, table: str, path) -> None:
    import numpy as np
    import pandas as pd

    if df.empty:
        raise DataError(f"{path}: no rows")
    checks = TABLE_CHECKS.get(table, {})
    missing = [c for c, (required, _) in checks.items() if required and c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} of the {table} table "
                        f"(has {', '.join(map(str, df.columns[:12]))})")
    for col, (_, rule) in checks.items():
        if col not in df.columns:
            continue
        v = df[col]
        if rule == "str":
            bad = ~v.map(lambda x: isinstance(x, str) and x != "")
        else:
            x = pd.to_numeric(v, errors="coerce").astype(float)
            num_ok = pd.to_numeric(v, errors="coerce").notna() | v.isna()
            if rule == "pos":
                bad = ~(np.isfinite(x) & (x > 0))
            elif rule == "nonneg":
                bad = ~(np.isfinite(x) & (x >= 0))
            elif rule == "nonneg?":
                bad = ~num_ok | (x.notna() & ~(np.isfinite(x) & (x >= 0)))
            else:
                lo = 1 if rule == "int+" else 0
                bad = ~(np.isfinite(x) & (x >= lo) & (x % 1 == 0))
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise DataError(f"{path}: row {i + 1}: column {col} must be {_RULE_TEXT[rule]}, got {v.iloc[i]!r}")


def _finite_number(v) -> bool:
    import math

    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_complete(rd: "RunDir", table: str, df) -> None:
    """A measurement the manifest calls done must have rows in its table (a lost or damaged part
    must not silently drop a configuration from a fit)."""
    m = rd.read_manifest()
    if m.get("kind") != "measure":
        return
    if table in ("steps", "noise"):
        done = [c for c in m["configs"] if c.get("status") == "done"]
        if table == "noise":   # rows exist only where the worker could estimate the noise scale
            done = [c for c in done if _finite_number((c.get("summary") or {}).get("b_simple"))]
        want = [c["config_id"] for c in done]
        have = set(df["config_id"]) if "config_id" in df else set()
        col, label = "config_id", "configuration"
    elif table == "allreduce":
        want = [a["num_replicas"] for a in m.get("allreduce_benchmarks", []) if a.get("status") == "done"]
        have = set(df["num_replicas"].astype(int)) if "num_replicas" in df else set()
        col, label = "num_replicas", "allreduce benchmark of num_replicas"
    else:
        return
    lost = [w for w in want if w not in have]
    if lost:
        where = rd.path / table
        raise DataError(f"{where}: the manifest says {label} {lost[0]} is done, but the {table} table has no "
                        f"rows for it ({len(lost)} missing; a part was lost or damaged: re-measure with "
                        f"`scalesim measure --resume` after setting its status to pending)")


# A synchronous step lasts as long as its slowest rank: the one definition that the measure worker,
# fit and report share (pandas is passed in, so this module stays import-light).
def slowest_step_median(steps, by):
    """Median over steps of the slowest rank's step_time, per group of the `by` columns of a steps
    table: a synchronous step lasts as long as its slowest rank."""
    by = list(by)
    per_step = steps.groupby(by + ["step"], dropna=False)["step_time"].max()
    return per_step.groupby(level=by, dropna=False).median()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in str(name))


def open_run(path: str | os.PathLike) -> RunDir:
    """Open an existing run directory, with a one-line error when it is not one."""
    rd = RunDir(path)
    rd.read_manifest()
    return rd
