"""Horovod Timeline (HOROVOD_TIMELINE, Chrome trace format) -> per-tensor activity table.

Horovod writes one trace "process" per tensor (metadata event `process_name`), and nested
B/E duration events per phase: NEGOTIATE_ALLREDUCE (waiting for every rank to be ready),
ALLREDUCE, and inside it e.g. MEMCPY_IN_FUSION_BUFFER, GLOO_ALLREDUCE, MEMCPY_OUT_FUSION_BUFFER.
A killed job leaves the JSON array unterminated, so events are decoded one by one.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ..errors import DataError

_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int32": 4, "int64": 8,
                "int8": 1, "uint8": 1, "bool": 1}
COLUMNS = ["tensor", "activity", "depth", "count", "total_time", "mean_time", "size_bytes"]


def read_events(path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such timeline file")
    text = p.read_text()
    dec, i, out = json.JSONDecoder(), text.find("["), []
    if i < 0:
        raise DataError(f"{p}: not a Horovod timeline (no JSON array)")
    i += 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            break
        try:
            ev, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            break  # truncated tail of a killed job: keep what was complete
        if isinstance(ev, dict):
            out.append(ev)
    return out


def _size_bytes(args: dict) -> int | None:
    shape, dtype = args.get("shape"), args.get("dtype")
    if shape is None or dtype not in _DTYPE_BYTES:
        return None
    try:
        dims = [int(d) for d in str(shape).strip("[]").split(",") if d.strip()]
    except ValueError:
        return None
    n = 1
    for d in dims:
        n *= d
    return n * _DTYPE_BYTES[dtype]


def per_tensor(events: list[dict]):
    """DataFrame with one row per (tensor, activity): count, total and mean seconds, and the
    tensor's size in bytes when Horovod recorded its shape and dtype."""
    import pandas as pd

    names: dict = {}
    stacks: dict = defaultdict(list)
    acc: dict = defaultdict(lambda: [0, 0.0])
    sizes: dict = {}
    for ev in events:
        pid, ph = ev.get("pid"), ev.get("ph")
        if ph == "M" and ev.get("name") == "process_name" and "name" in ev.get("args", {}):
            names[pid] = ev["args"]["name"]
        elif ph == "B":
            stacks[pid].append((ev.get("name", "?"), float(ev.get("ts", 0))))
        elif ph == "E" and stacks[pid]:
            name, t0 = stacks[pid].pop()
            key = (names.get(pid, str(pid)), name, len(stacks[pid]))
            acc[key][0] += 1
            acc[key][1] += (float(ev.get("ts", t0)) - t0) * 1e-6  # trace timestamps are microseconds
            size = _size_bytes(ev.get("args", {}))
            if size is not None:
                sizes[key[0]] = size
    rows = [{"tensor": t, "activity": a, "depth": d, "count": c, "total_time": tot,
             "mean_time": tot / c, "size_bytes": sizes.get(t)} for (t, a, d), (c, tot) in acc.items()]
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.sort_values(["total_time"], ascending=False, ignore_index=True)


def parse(path):
    return per_tensor(read_events(path))


# --- a user's own job: `horovodrun --timeline-filename FILE` / HOROVOD_TIMELINE=FILE --------------
ALLREDUCE_COLUMNS = ["tensor", "calls", "size_bytes", "negotiate_time", "allreduce_time", "total_time", "algbw"]


def is_timeline(path) -> bool:
    """True for a Horovod Timeline file (a JSON array of trace events starting with Horovod's
    metadata), by its first bytes: how fit/report tell it from other .json inputs (model files)."""
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as f:
        head = f.read(400).decode("utf-8", "replace").lstrip()
    return head.startswith("[") and '"ph"' in head and ('"process_name"' in head or '"ts"' in head)


def allreduce_table(per_tensor_df):
    """Per-tensor allreduce table from `per_tensor`: one row per allreduced tensor (a Horovod
    grouped/fused allreduce is one 'tensor'), with
        calls           times it was allreduced
        size_bytes      its size (from the shape/dtype Horovod recorded; NaN if not recorded)
        negotiate_time  mean s in NEGOTIATE_ALLREDUCE: waiting until every rank submitted it
                        (the straggler / load-imbalance part)
        allreduce_time  mean s in ALLREDUCE: the data movement itself (fusion-buffer copies included)
        total_time      calls * (negotiate_time + allreduce_time)
        algbw           size_bytes / allreduce_time (nccl-tests' algorithm bandwidth, bytes/s;
                        busbw = algbw * 2(n-1)/n needs the rank count n)"""
    import numpy as np
    import pandas as pd

    top = per_tensor_df[per_tensor_df["depth"] == 0]
    rows = []
    for tensor, g in top.groupby("tensor", sort=False):
        acts = dict(zip(g["activity"], zip(g["count"], g["mean_time"])))
        if "ALLREDUCE" not in acts:
            continue
        calls, ar = acts["ALLREDUCE"]
        neg = acts.get("NEGOTIATE_ALLREDUCE", (0, 0.0))[1]
        size = g["size_bytes"].dropna()
        size = float(size.iloc[0]) if len(size) else np.nan
        rows.append({"tensor": tensor, "calls": int(calls), "size_bytes": size, "negotiate_time": float(neg),
                     "allreduce_time": float(ar), "total_time": float(calls * (neg + ar)),
                     "algbw": size / ar if ar > 0 and np.isfinite(size) else np.nan})
    df = pd.DataFrame(rows, columns=ALLREDUCE_COLUMNS)
    return df.sort_values("total_time", ascending=False, ignore_index=True)


def num_ranks(events: list[dict]) -> int | None:
    """Ranks of the job: Horovod marks each rank's readiness inside NEGOTIATE_* with an instant
    event named by the rank number (only rank 0 writes the file)."""
    ranks, inside = set(), defaultdict(int)
    for ev in events:
        pid, ph = ev.get("pid"), ev.get("ph")
        if ph == "B":
            inside[pid] += str(ev.get("name", "")).startswith("NEGOTIATE")
        elif ph == "E" and inside[pid]:
            inside[pid] -= 1
        elif ph == "X" and inside[pid] and str(ev.get("name", "")).isdigit():
            ranks.add(int(ev["name"]))
    return len(ranks) or None


def read_allreduce(path):
    """A Horovod Timeline file -> its per-tensor allreduce table (DataError if it is not one), with a
    num_replicas column (the job's rank count, from the negotiation marks)."""
    events = read_events(path)
    df = allreduce_table(per_tensor(events))
    df.insert(0, "num_replicas", num_ranks(events))
    return df
