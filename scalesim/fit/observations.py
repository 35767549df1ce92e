"""Everything `fit` and `validate` read, from scalesim run directories and external traces, in one shape.

    steps      one row per measured configuration: source, config, num_nodes, num_replicas,
               replicas_per_node (busiest host), placement, local_batch, step_time, compute_time
               (everything but the allreduce: data + forward/backward + update; run dirs), allreduce_time
               (run dirs, instrumented), sync_time (traces: sync not hidden by backward),
               cores_per_host, threads_per_rank
    allreduce  microbenchmark: num_nodes, num_replicas, replicas_per_node, size_bytes, time
    curves     training curves: source, global_batch, iteration, metric, higher_is_better, metric_name
               [, progress (AdaptDL's curves)]
    noise      gradient noise: source, global_batch, step, grad_sqr, grad_var (per example, except
               curve files: see scalesim.fit.curves), smoothed (True: logged interval averages of
               curve files; False: scalesim's raw per-step estimates)
Run directories give per-rank, per-step rows; a configuration's value is the median over steps of the
per-step value, where a step lasts as long as its slowest rank.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import DataError, UsageError
from ..schema import RunDir, slowest_step_median
from . import traces

if TYPE_CHECKING:  # pandas is imported lazily: the CLI parser imports this module
    import pandas as pd

STEP_COLUMNS = ("source", "config", "num_nodes", "num_replicas", "replicas_per_node", "placement", "local_batch",
                "step_time", "compute_time", "allreduce_time", "sync_time", "cores_per_host", "threads_per_rank")


class Observations(NamedTuple):
    steps: "pd.DataFrame"
    allreduce: "pd.DataFrame"
    curves: "pd.DataFrame"
    noise: "pd.DataFrame"
    grad_bytes: float | None       # None when unknown (external traces)
    host: dict
    sources: list


def config_key(row) -> str:
    p = row.get("placement") if hasattr(row, "get") else None
    where = f"placement={p}" if isinstance(p, str) and p else \
        f"nodes={int(row['num_nodes'])} replicas={int(row['num_replicas'])}"
    return f"{where} local_batch={float(row['local_batch']):g}"


def _frame(rows=None, columns=()):
    import pandas as pd

    return pd.DataFrame(rows if rows is not None else [], columns=list(columns) if rows is None else None)


# --- run directories ---------------------------------------------------------------------------
def _per_config(steps, source: str):
    """Median over steps of (max over ranks of step_time, mean over ranks of the split)."""
    if "mode" not in steps:
        steps = steps.assign(mode="production")
    step_time = slowest_step_median(steps, ["config_id", "mode"])
    rows = []
    for cid, g in steps.groupby("config_id", sort=False):
        first = g.iloc[0]
        row = {"source": source, "num_nodes": int(first["num_nodes"]), "num_replicas": int(first["num_replicas"]),
               "replicas_per_node": int(first.get("ranks_per_host", -(-first["num_replicas"] // first["num_nodes"]))),
               "placement": None, "local_batch": float(first["local_batch"]),
               "cores_per_host": float(first.get("cores_per_host", math.inf)),
               "threads_per_rank": float(first.get("threads_per_rank", 1.0)),
               "step_time": np.nan, "compute_time": np.nan, "allreduce_time": np.nan, "sync_time": np.nan}
        prod, ins = g[g["mode"] == "production"], g[g["mode"] == "instrumented"]
        if len(prod):
            row["step_time"] = float(step_time[(cid, "production")])
        # The split comes from instrumented steps (measure); runs of the training core or a user's
        # recorder time it inside the production step itself and have no instrumented rows.
        timed = ins if len(ins) else prod if "compute_time" in prod and prod["compute_time"].notna().any() else ins
        if len(timed):
            split = timed[[c for c in ("data_time", "compute_time", "update_time") if c in timed]].sum(axis=1, min_count=1)
            row["compute_time"] = float(split.groupby(timed["step"]).mean().median())
            if "allreduce_time" in timed:
                row["allreduce_time"] = float(timed.groupby("step")["allreduce_time"].mean().median())
            if not len(prod):  # no production steps: the serial instrumented step is all we have
                row["step_time"] = float(step_time[(cid, "instrumented")])
        if row["num_replicas"] == 1:
            row["allreduce_time"] = np.nan
        rows.append(row)
    return rows


def _run_curves(rd: RunDir, m: dict, source: str):
    ep = rd.read_table("epochs")
    if ep.empty or "steps" not in ep:
        return []
    cfg = m.get("config") or {}
    batch = cfg.get("batch")
    if not batch and m.get("configs"):
        c = m["configs"][0]
        batch = (c.get("num_replicas") or 1) * (c.get("local_batch") or 0)
    if not batch:
        return []
    ep = ep.sort_values("epoch")
    it = ep["steps"].astype(float).cumsum().to_numpy()
    metric, higher = ("test_acc", True) if ep.get("test_acc") is not None and ep["test_acc"].notna().any() \
        else ("train_loss", False)
    return [{"source": source, "global_batch": float(batch), "iteration": i, "metric": float(v),
             "higher_is_better": higher, "metric_name": metric} for i, v in zip(it, ep[metric])]


def read_run(path) -> Observations:
    rd = RunDir(path)
    m = rd.read_manifest()
    source = str(rd.path)
    steps = rd.read_table("steps")
    rows = _per_config(steps, source) if not steps.empty else []
    ar = rd.read_table("allreduce")
    if not ar.empty:
        need = {"num_replicas", "size_bytes", "time"}
        if not need <= set(ar.columns):
            raise DataError(f"{source}: allreduce table lacks {', '.join(sorted(need - set(ar.columns)))}")
        if "num_nodes" not in ar:
            ar["num_nodes"] = 1
        ar = ar[["num_nodes", "num_replicas", "size_bytes", "time"]].astype(float)
        ar["replicas_per_node"] = np.ceil(ar["num_replicas"] / ar["num_nodes"])
        ar = ar[(ar["num_replicas"] > 1) & (ar["time"] > 0)]
    noise = rd.read_table("noise")
    if not noise.empty and {"grad_sqr", "grad_var"} <= set(noise.columns):
        noise = noise.assign(source=source, global_batch=noise["num_replicas"] * noise["local_batch"])
        # scalesim's own rows: raw per-step estimates, per example (pooled in windows by the fit)
        noise = noise[["source", "global_batch", "step", "grad_sqr", "grad_var"]].assign(smoothed=False)
    else:
        noise = _frame(columns=("source", "global_batch", "step", "grad_sqr", "grad_var"))
    hosts = m.get("hosts") or []
    host = {"cores_per_host": min((h.get("cores") or math.inf) for h in hosts) if hosts else m.get("cores_per_host"),
            "threads_per_rank": m.get("threads_per_rank")}
    grad_bytes = (m.get("model") or {}).get("grad_bytes")
    return Observations(_frame(rows), ar if not ar.empty else _frame(), _frame(_run_curves(rd, m, source)), noise,
                        float(grad_bytes) if grad_bytes else None, host, [source])


# --- external files ----------------------------------------------------------------------------
def read_trace(path) -> Observations:
    df = traces.read_throughput_trace(path)
    df.insert(0, "source", str(path))
    df["compute_time"] = df["allreduce_time"] = np.nan
    df["cores_per_host"], df["threads_per_rank"] = math.inf, 1.0
    return Observations(df, _frame(), _frame(), _frame(), None, {}, [str(path)])


def read_curve(path, batch_size: float | None = None) -> Observations:
    from .curves import read_curve as read

    c, noise = read(path, batch_size)
    # Loss-like metrics fall during training, accuracy-like ones rise (AdaptDL's simulator decides alike).
    c["higher_is_better"] = bool(c["metric"].iloc[-1] > c["metric"].iloc[0])
    c["metric_name"] = "metric"
    return Observations(_frame(), _frame(), c, noise, None, {}, [str(path)])


def read_timeline(path) -> Observations:
    """A Horovod Timeline (`--timeline-filename`) from a user's own job: its per-tensor allreduces as
    allreduce observations (size_bytes, time). The file records no placement: its ranks are taken as
    one node, so it informs the intra-node link only."""
    from ..measure import timeline

    if not timeline.is_timeline(path):
        raise DataError(f"{path}: a .json input must be a Horovod Timeline file (a JSON array of trace events)")
    t = timeline.read_allreduce(path)
    n = t["num_replicas"].iloc[0] if len(t) else None
    if not n or n < 2:
        raise DataError(f"{path}: the timeline shows no allreduce across 2 or more ranks")
    t = t[np.isfinite(t["size_bytes"].astype(float)) & (t["allreduce_time"].astype(float) > 0)]
    if t.empty:
        raise DataError(f"{path}: no allreduce in the timeline records its tensor size and time")
    import pandas as pd

    # Tensors fused into one buffer share one ALLREDUCE span: per tensor, each would look like a tiny
    # message taking the whole fused time. Spans within 2 % of each other are one message of their summed size.
    t = t.sort_values("allreduce_time")
    times = t["allreduce_time"].astype(float).to_numpy()
    group = np.concatenate([[0], np.cumsum(times[1:] > times[:-1] * 1.02)])
    fused = t.assign(group=group).groupby("group").agg(size_bytes=("size_bytes", "sum"), time=("allreduce_time", "mean"))
    ar = pd.DataFrame({"num_nodes": 1.0, "num_replicas": float(n), "replicas_per_node": float(n),
                       "size_bytes": fused["size_bytes"].astype(float).to_numpy(),
                       "time": fused["time"].astype(float).to_numpy()})
    return Observations(_frame(), ar, _frame(), _frame(), None, {}, [str(path)])


def read_source(path, batch_size: float | None = None) -> Observations:
    """batch_size: the global batch of training-curve files that have no batch_size column and no
    exact validation-<B>.csv name."""
    p = Path(path)
    if p.is_dir():
        if not (p / "manifest.json").is_file():
            raise DataError(f"{p}: not a scalesim run directory (no manifest.json)")
        return read_run(p)
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    if p.suffix.lower() == ".json":
        return read_timeline(p)
    if p.suffix.lower() != ".csv":
        raise DataError(f"{p}: expected a run directory, a .csv trace or a Horovod Timeline .json")
    head = traces._read_csv(p, nrows=0).columns
    cols = {c.strip() for c in head}
    if traces.is_throughput_trace(cols):
        return read_trace(p)
    if {"iteration", "metric"} <= cols:
        return read_curve(p, batch_size)
    raise DataError(f"{p}: neither a throughput trace (needs step_time) nor a training curve (needs "
                    f"iteration, metric); columns are {', '.join(sorted(cols)) or 'none'}")


def merge(parts: list[Observations]) -> Observations:
    import pandas as pd

    def cat(frames):
        frames = [f for f in frames if f is not None and not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    sizes = {o.grad_bytes for o in parts if o.grad_bytes}
    unknown = [s for o in parts if not o.grad_bytes and not o.steps.empty for s in o.sources]
    if sizes and unknown:
        raise DataError(f"{unknown[0]} has no gradient size but the run directories do; a throughput trace "
                        "and scalesim runs describe different systems: fit them separately")
    if len(sizes) > 1:
        raise DataError(f"the sources train models of different gradient sizes ({', '.join(f'{s:,.0f}' for s in sorted(sizes))} "
                        "bytes); fit one model at a time")
    steps = cat([o.steps for o in parts])
    if not steps.empty:
        steps = steps.reindex(columns=list(STEP_COLUMNS))
        steps["config"] = [config_key(r) for r in steps.to_dict("records")]
    host = {}
    for o in parts:
        host.update({k: v for k, v in o.host.items() if v is not None})
    return Observations(steps, cat([o.allreduce for o in parts]), cat([o.curves for o in parts]),
                        cat([o.noise for o in parts]), sizes.pop() if sizes else None, host,
                        [s for o in parts for s in o.sources])


def load(sources, batch_size: float | None = None) -> Observations:
    if isinstance(sources, Observations):
        return sources
    if isinstance(sources, (str, Path)):
        sources = [sources]
    if not sources:
        raise UsageError("no data: give run directories or trace CSV files")
    return merge([read_source(s, batch_size) for s in sources])


# --- holdout expressions -----------------------------------------------------------------------
_CLAUSE = re.compile(r"^\s*([A-Za-z_]+)\s*(<=|>=|==|!=|<|>|=)\s*([-+0-9.eE]+|'[^']*'|\"[^\"]*\"|\w+)\s*$")
HOLDOUT_COLUMNS = ("num_nodes", "num_replicas", "replicas_per_node", "local_batch", "global_batch", "placement")


def holdout_mask(steps, expr: str | None):
    """Rows matching e.g. 'num_replicas>4', 'num_nodes>=2 and local_batch<64', "placement=='44'"."""
    if not expr:
        return np.zeros(len(steps), bool)
    import operator

    ops = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
           "=": operator.eq, "!=": operator.ne}
    tokens = re.split(r"\s+(and|or)\s+|\s*(&&|\|\||&|\|)\s*", expr.strip())
    tokens = [t for t in tokens if t is not None and t != ""]
    mask, pending = None, None
    for t in tokens:
        if t in ("and", "&&", "&", "or", "||", "|"):
            pending = "and" if t in ("and", "&&", "&") else "or"
            continue
        m = _CLAUSE.match(t)
        if not m:
            raise UsageError(f"holdout: cannot parse {t!r}; write clauses like num_replicas>4 joined by and/or")
        col, op, val = m.groups()
        if col not in HOLDOUT_COLUMNS:
            raise UsageError(f"holdout: unknown column {col!r}; use one of {', '.join(HOLDOUT_COLUMNS)}")
        data = steps["num_replicas"] * steps["local_batch"] if col == "global_batch" else steps[col]
        if col == "placement":
            value = val.strip("'\"")
            data = data.astype(str)
        else:
            try:
                value = float(val)
            except ValueError:
                raise UsageError(f"holdout: {col} needs a number, got {val!r}")
        cur = np.asarray(ops[op](data, value), bool)
        mask = cur if mask is None else (mask & cur if pending == "and" else mask | cur)
        pending = None
    if mask is None or pending is not None:
        raise UsageError(f"holdout: incomplete expression {expr!r}")
    return mask
