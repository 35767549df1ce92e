"""Shared by the bad-input suites: good inputs made once per session (a run directory written
through the real schema, a throughput trace, fitted model files, a validation CSV and a prediction
JSON), a way to corrupt copies of them, and the check every bad input must pass: exit code 2, one
line on stderr, no traceback, and every input byte-identical afterwards. The CLI runs in-process."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

import fit_synth as fs
from scalesim import procs
from scalesim.cli import main

PLACEMENTS = ((1, 1), (1, 2), (1, 4), (2, 1), (2, 2))
BATCHES = (16, 64)


class Inputs:
    """Paths of good inputs under root/good (never modified by a case)."""

    def __init__(self, root: Path):
        self.root = root
        g = root / "good"
        g.mkdir(parents=True)
        self.run = g / "run"
        rd = fs.make_run(self.run, placements=PLACEMENTS, batches=BATCHES, steps=4, seed=1)
        # As `scalesim measure` records them: the microbenchmark of every multi-rank count is done.
        m = rd.read_manifest()
        m["allreduce_benchmarks"] = [{"num_replicas": n, "status": "done", "error": None}
                                     for n in sorted({h * g for h, g in PLACEMENTS if h * g > 1})]
        rd.write_manifest(m)
        self.trace = fs.write_trace(g / "trace.csv", placements=("1", "2", "4", "11", "22", "12"), batches=(16, 64))
        self.model = g / "model.json"
        self.trace_model = g / "trace-model.json"
        for src, out in ((self.run, self.model), (self.trace, self.trace_model)):
            rc, err = run_cli(["fit", str(src), "--out", str(out), "--bootstrap", "4", "--starts", "1"])
            assert rc == 0, err
        self.validation = g / "validation.csv"
        rc, err = run_cli(["validate", str(self.run), "--model", str(self.model), "--out", str(self.validation)])
        assert rc == 0, err
        self.prediction = g / "prediction.json"
        with contextlib.redirect_stdout(io.StringIO()) as out:
            rc, err = run_cli(["predict", "--model", str(self.model), "--target-time", "1h", "--target-steps",
                               "1000", "--json"], capture_stdout=False)
        assert rc == 0, err
        self.prediction.write_text(out.getvalue())
        self.file = g / "plain.txt"
        self.file.write_text("not a directory\n")

    def copy_run(self, dest: Path) -> Path:
        shutil.copytree(self.run, dest)
        return dest


def run_cli(argv: list[str], capture_stdout: bool = True) -> tuple[int | str, str]:
    """(exit code, stderr) of `scalesim argv` run in this process; ('traceback', text) if an
    exception escaped main()."""
    err = io.StringIO()
    out = io.StringIO() if capture_stdout else None
    real_launch = procs.launch
    procs.launch = _no_launch   # bad input must be refused before any rank starts
    try:
        with contextlib.redirect_stderr(err), (contextlib.redirect_stdout(out) if out else contextlib.nullcontext()):
            rc = main([str(a) for a in argv])
    except Launched as e:
        return "launched", str(e)
    except SystemExit as e:  # typer/click may exit directly
        rc = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 - this is what the suite counts
        return "traceback", traceback.format_exc()
    finally:
        procs.launch = real_launch
    return rc, err.getvalue()


class Launched(BaseException):
    """Raised instead of starting horovodrun: the input was accepted."""


def _no_launch(cmd, *a, **kw):
    raise Launched("accepted: would launch " + " ".join(map(str, cmd[:8])))


def digest_tree(paths) -> dict:
    """sha256 of every file under the given paths (files or directories)."""
    out = {}
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = None
    return out


def assert_rejected(argv, inputs, expect: str | None = None):
    """The contract for bad input. `inputs` are the files/directories the case must leave as they were."""
    before = digest_tree(inputs)
    rc, err = run_cli(argv)
    assert rc != "traceback", f"traceback:\n{err}"
    assert rc != "launched", err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2, f"exit {rc} (silently accepted?) stderr={err!r}"
    assert len(lines) == 1, f"stderr is not one line: {err!r}"
    assert "Traceback" not in err
    if expect:
        assert expect.lower() in err.lower(), err
    assert digest_tree(inputs) == before, "an input was modified"
    return lines[0]


# --- corruptions of a run directory --------------------------------------------------------------
def first_part(run: Path, table: str = "steps") -> Path:
    return sorted((run / table).glob("*.parquet"))[0]


def _rewrite_part(run: Path, fn, table="steps"):
    p = first_part(run, table)
    df = pd.read_parquet(p)
    fn(df).to_parquet(p, index=False)


def _set_col(col, value):
    def f(df):
        df[col] = value
        return df
    return f


def _manifest(run: Path, fn):
    p = run / "manifest.json"
    m = json.loads(p.read_text())
    p.write_text(json.dumps(fn(m)))


def _cfg0(key, value):
    def f(m):
        m["configs"][0][key] = value
        return m
    return f


RUN_CORRUPTIONS = {
    # parts
    "part-truncated": lambda r: first_part(r).write_bytes(first_part(r).read_bytes()[:200]),
    "part-empty": lambda r: first_part(r).write_bytes(b""),
    "part-random-bytes": lambda r: first_part(r).write_bytes(np.random.default_rng(0).bytes(4096)),
    "part-text": lambda r: first_part(r).write_text("config_id,step_time\nx,1\n"),
    "part-wrong-columns": lambda r: _rewrite_part(r, lambda df: df[["rank", "step"]]),
    "part-no-step-time": lambda r: _rewrite_part(r, lambda df: df.drop(columns=["step_time"])),
    "part-is-directory": lambda r: (first_part(r).unlink(), first_part_path(r).mkdir()),
    "part-zero-rows": lambda r: _rewrite_part(r, lambda df: df.iloc[:0]),
    "step-time-all-nan": lambda r: _rewrite_part(r, _set_col("step_time", np.nan)),
    "step-time-negative": lambda r: _rewrite_part(r, _set_col("step_time", -0.5)),
    "step-time-zero": lambda r: _rewrite_part(r, _set_col("step_time", 0.0)),
    "step-time-inf": lambda r: _rewrite_part(r, _set_col("step_time", np.inf)),
    "step-time-strings": lambda r: _rewrite_part(r, _set_col("step_time", "fast")),
    "num-replicas-zero": lambda r: _rewrite_part(r, _set_col("num_replicas", 0)),
    "num-replicas-negative": lambda r: _rewrite_part(r, _set_col("num_replicas", -2)),
    "local-batch-zero": lambda r: _rewrite_part(r, _set_col("local_batch", 0)),
    "compute-time-negative": lambda r: _rewrite_part(r, lambda df: df.assign(
        compute_time=np.where(df["mode"] == "instrumented", -1.0, np.nan))),
    "allreduce-time-negative": lambda r: _rewrite_part(r, _set_col("time", -1.0), "allreduce"),
    "allreduce-size-nan": lambda r: _rewrite_part(r, _set_col("size_bytes", np.nan), "allreduce"),
    "allreduce-part-random": lambda r: first_part(r, "allreduce").write_bytes(b"PAR1" + b"\x07" * 300),
    "steps-folder-missing": lambda r: shutil.rmtree(r / "steps"),
    "allreduce-folder-missing": lambda r: shutil.rmtree(r / "allreduce"),
    "done-config-part-missing": lambda r: first_part(r).unlink(),
    # manifest
    "manifest-missing": lambda r: (r / "manifest.json").unlink(),
    "manifest-empty": lambda r: (r / "manifest.json").write_bytes(b""),
    "manifest-binary": lambda r: (r / "manifest.json").write_bytes(b"\xff\xfe\x00\x81" * 64),
    "manifest-deep": lambda r: (r / "manifest.json").write_text("[" * 100000 + "]" * 100000),
    "manifest-list": lambda r: (r / "manifest.json").write_text("[1, 2]"),
    "manifest-string": lambda r: (r / "manifest.json").write_text('"run"'),
    "manifest-truncated": lambda r: (r / "manifest.json").write_text((r / "manifest.json").read_text()[:50]),
    "manifest-is-directory": lambda r: ((r / "manifest.json").unlink(), (r / "manifest.json").mkdir()),
    "manifest-configs-string": lambda r: _manifest(r, lambda m: {**m, "configs": "all"}),
    "manifest-configs-missing": lambda r: _manifest(r, lambda m: {k: v for k, v in m.items() if k != "configs"}),
    "manifest-config-not-object": lambda r: _manifest(r, lambda m: {**m, "configs": [1, 2, 3]}),
    "manifest-num-replicas-zero": lambda r: _manifest(r, _cfg0("num_replicas", 0)),
    "manifest-num-replicas-string": lambda r: _manifest(r, _cfg0("num_replicas", "four")),
    "manifest-local-batch-nan": lambda r: (r / "manifest.json").write_text(
        (r / "manifest.json").read_text().replace('"local_batch": 16', '"local_batch": NaN', 1)),
    "manifest-status-unknown": lambda r: _manifest(r, _cfg0("status", "finished-ish")),
    "manifest-config-id-missing": lambda r: _manifest(r, lambda m: (m["configs"][0].pop("config_id"), m)[1]),
    "manifest-hosts-string": lambda r: _manifest(r, lambda m: {**m, "hosts": "h1"}),
    "manifest-cores-negative": lambda r: _manifest(r, lambda m: {**m, "hosts": [{"hostname": "h", "ranks": 1,
                                                                                  "cores": -4}]}),
    "manifest-model-list": lambda r: _manifest(r, lambda m: {**m, "model": [1]}),
    "manifest-grad-bytes-string": lambda r: _manifest(r, lambda m: {**m, "model": {"name": "x",
                                                                                    "grad_bytes": "4MB"}}),
    "manifest-wrong-schema": lambda r: _manifest(r, lambda m: {**m, "schema": "other/9"}),
    "manifest-kind-unknown": lambda r: _manifest(r, lambda m: {**m, "kind": "mystery"}),
}


def first_part_path(run: Path) -> Path:
    # the name the first part had (after it was removed)
    return run / "steps" / "h1-g1-b16.parquet"


# --- corruptions of a model file -------------------------------------------------------------------
def _model_edit(fn):
    def f(src: Path, dst: Path):
        d = json.loads(src.read_text())
        dst.write_text(json.dumps(fn(d)))
    return f


def _raw(text_or_bytes):
    def f(src: Path, dst: Path):
        (dst.write_bytes if isinstance(text_or_bytes, bytes) else dst.write_text)(text_or_bytes)
    return f


def _replace_text(old, new):
    def f(src: Path, dst: Path):
        t = src.read_text()
        assert old in t, old
        dst.write_text(t.replace(old, new, 1))
    return f


def _perf(group, key, value):
    def fn(d):
        d["perf"][group][key] = value
        return d
    return _model_edit(fn)


MODEL_CORRUPTIONS = {
    "empty": _raw(b""),
    "binary": _raw(b"\x89PNG\r\n\x1a\n" + b"\xff" * 100),
    "deep": _raw("{\"a\":" * 100000 + "1" + "}" * 100000),
    "list": _raw("[1, 2, 3]"),
    "number": _raw("42"),
    "truncated": lambda s, d: d.write_text(s.read_text()[:100]),
    "wrong-schema": _model_edit(lambda d: {**d, "schema": "scalesim.model/99"}),
    "no-perf": _model_edit(lambda d: {k: v for k, v in d.items() if k != "perf"}),
    "perf-list": _model_edit(lambda d: {**d, "perf": [1, 2]}),
    "compute-string": _model_edit(lambda d: {**d, "perf": {**d["perf"], "compute": "fast"}}),
    "alpha-string": _perf("compute", "alpha_c", "0.1"),
    "alpha-negative": _perf("compute", "alpha_c", -1.0),
    "beta-negative": _perf("compute", "beta_c", -0.01),
    "alpha-nan-token": lambda s, d: d.write_text(s.read_text().replace('"alpha_c": ', '"alpha_c": NaN, "x_": ', 1)),
    "beta-infinity-token": lambda s, d: d.write_text(s.read_text().replace('"beta_c": ', '"beta_c": Infinity, "y_": ', 1)),
    "bw-zero": _perf("comm", "bw_intra", 0.0),
    "bw-negative": _perf("comm", "bw_inter", -5.0),
    "grad-bytes-negative": _perf("comm", "grad_bytes", -1.0),
    "alpha-null": _perf("compute", "alpha_c", None),
    "algorithm-unknown": _perf("comm", "algorithm", "telepathy"),
    "gamma-negative": _model_edit(lambda d: {**d, "perf": {**d["perf"], "gamma": -2.0}}),
    "gamma-string": _model_edit(lambda d: {**d, "perf": {**d["perf"], "gamma": "high"}}),
    "bootstrap-string": _model_edit(lambda d: {**d, "bootstrap": "many"}),
    "bootstrap-bad-entry": _model_edit(lambda d: {**d, "bootstrap": [{"compute": 1}]}),
    "intervals-short": _model_edit(lambda d: {**d, "intervals": {"alpha_c": [1.0]}}),
    "ranges-string": _model_edit(lambda d: {**d, "ranges": "wide"}),
    "host-cores-string": _model_edit(lambda d: {**d, "host": {**(d.get("host") or {}), "cores_per_host": "four"}}),
    "host-cores-zero": _model_edit(lambda d: {**d, "host": {**(d.get("host") or {}), "cores_per_host": 0}}),
    "lr-ref-lr-negative": _model_edit(lambda d: {**d, "lr": {**(d.get("lr") or {}), "ref_lr": -1}}),
    "stateff-list": _model_edit(lambda d: {**d, "stateff": [1]}),
    "stateff-bnoise-negative": _model_edit(lambda d: {**d, "stateff": {"b_noise": -5, "s_min": 100}}),
    "extra-compute-key": _perf("compute", "warp_factor", 9),
    "utf16": lambda s, d: d.write_bytes(s.read_text().encode("utf-16")),
}
