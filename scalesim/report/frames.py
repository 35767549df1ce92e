"""The tables the charts draw: measured summaries per configuration and fitted-model curves with
bootstrap bands (5th-95th percentile over the model file's bootstrap parameter sets)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..schema import slowest_step_median
from ..model import perf, stateff

SPLIT = (("data_time", "data"), ("compute_time", "compute"),
         ("allreduce_time", "exposed allreduce"), ("update_time", "update"))
BAND = (5, 95)
_KEYS = ["run_id", "config_id", "num_nodes", "num_replicas", "local_batch", "global_batch"]


def _where(nodes, replicas, multi_node: bool) -> str:
    """'4 ranks' on one host; 'N nodes x R' (ranks per node) when the runs span several hosts."""
    nodes, replicas = int(nodes), int(replicas)
    if not multi_node:
        return f"{replicas} rank" + ("s" if replicas != 1 else "")
    return f"{nodes} node{'s' if nodes != 1 else ''} x {replicas // max(nodes, 1)}"


def config_summary(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration. The step time users care about is the production (fused,
    overlapped) one when measured; a synchronous step lasts as long as its slowest rank."""
    need = set(_KEYS) | {"step", "step_time"}
    if steps.empty or not need <= set(steps.columns):
        return pd.DataFrame()
    df = steps.copy()
    if "mode" not in df:
        df["mode"] = "instrumented"
    med = slowest_step_median(df, _KEYS + ["mode"]).unstack("mode")
    out = pd.DataFrame(index=med.index)
    out["step_time_production"] = med.get("production", np.nan)
    out["step_time_instrumented"] = med.get("instrumented", np.nan)
    inst = df[df["mode"] == "instrumented"]
    for col, _ in SPLIT:
        out[col] = inst.groupby(_KEYS, dropna=False)[col].mean() if col in inst else np.nan
    out = out.reset_index()
    out["step_time"] = out["step_time_production"].fillna(out["step_time_instrumented"])
    out = out[np.isfinite(out["step_time"]) & (out["step_time"] > 0)].copy()
    out["throughput"] = out["global_batch"] / out["step_time"]
    multi_run, multi_node = out["run_id"].nunique() > 1, out["num_nodes"].nunique() > 1
    out["config"] = [(f"{run}: " if multi_run else "") + f"{_where(n, r, multi_node)}, b={int(b)}"
                     for n, r, b, run in zip(out.num_nodes, out.num_replicas, out.local_batch, out.run_id)]
    out["efficiency"] = np.nan
    for _, g in out.groupby(["run_id", "local_batch"]):
        ref = g.loc[g["num_replicas"].idxmin()]
        out.loc[g.index, "efficiency"] = (g["throughput"] / g["num_replicas"]) / (ref.throughput / ref.num_replicas)
    return out.sort_values(["run_id", "num_nodes", "num_replicas", "local_batch"]).reset_index(drop=True)


def scale_axis(summary: pd.DataFrame) -> tuple[str, str]:
    """Node count when the runs span several hosts; ranks on one host otherwise (this is what a
    single-machine campaign varies)."""
    if summary["num_nodes"].nunique() > 1:
        return "num_nodes", "Node count"
    return "num_replicas", "Ranks (one host)"


def host_facts(model, manifests) -> tuple[float, float]:
    """cores_per_host, threads_per_rank: from the model file, else the first run's manifest."""
    h = dict(getattr(model, "host", None) or {})
    if "cores_per_host" not in h:
        for _, _, m in manifests:
            hosts = m.get("hosts") or []
            if hosts and hosts[0].get("cores"):
                h.setdefault("cores_per_host", hosts[0]["cores"])
                h.setdefault("threads_per_rank", m.get("threads_per_rank", 1))
                break
    cores = float(h.get("cores_per_host") or math.inf)
    return cores, float(h.get("threads_per_rank") or 1.0)


def _band(values: list) -> tuple:
    if not values:
        return None, None
    arr = np.vstack(values)
    return np.percentile(arr, BAND[0], axis=0), np.percentile(arr, BAND[1], axis=0)


def model_scaling(model, boots, summary, axis: str, host) -> pd.DataFrame:
    """Fitted throughput and scaling efficiency over the measured scale range, per local batch."""
    cores, threads = host
    xs_meas = summary[axis].to_numpy(float)
    lo, hi = xs_meas.min(), xs_meas.max()
    xs = np.unique(np.concatenate([np.round(np.geomspace(lo, hi, 40)), xs_meas])) if hi > lo else np.array([lo])
    rpn = int(max(1, round((summary.num_replicas / summary.num_nodes).median())))

    def placement(x):
        return (perf.Placement(int(x), rpn, cores, threads) if axis == "num_nodes"
                else perf.Placement(1, int(x), cores, threads))

    rows = []
    for b in sorted(summary["local_batch"].unique()):
        i_ref = int(np.searchsorted(xs, summary.loc[summary.local_batch == b, axis].min()))

        def curve(p):
            # efficiency relative to the smallest scale measured at this local batch, like the points
            thr = np.array([float(perf.throughput(p, placement(x), b)) for x in xs])
            reps = np.array([placement(x).num_replicas for x in xs], float)
            return thr, (thr / reps) / (thr[i_ref] / reps[i_ref])

        thr, eff = curve(model.perf)
        (tlo, thi), (elo, ehi) = [_band(v) for v in zip(*[curve(p) for p in boots])] if boots else ((None, None),) * 2
        rows.append(pd.DataFrame({"x": xs, "local_batch": int(b), "throughput": thr, "efficiency": eff,
                                  "thr_lo": tlo, "thr_hi": thi, "eff_lo": elo, "eff_hi": ehi}))
    return pd.concat(rows, ignore_index=True)


def step_split(summary: pd.DataFrame) -> pd.DataFrame:
    """Long format for stacked bars; configurations without an instrumented split are dropped."""
    rows = []
    for order, (col, name) in enumerate(SPLIT):
        part = summary[["config", "num_replicas", "local_batch", "step_time", col]].rename(columns={col: "seconds"})
        rows.append(part.assign(component=name, order=order))
    long = pd.concat(rows, ignore_index=True)
    return long[np.isfinite(long["seconds"])].reset_index(drop=True)


def allreduce_measured(table: pd.DataFrame) -> pd.DataFrame:
    need = {"num_nodes", "num_replicas", "size_bytes", "time"}
    if table.empty or not need <= set(table.columns):
        return pd.DataFrame()
    df = table[table["num_replicas"] > 1]
    g = df.groupby(["num_nodes", "num_replicas", "size_bytes"]).agg(time=("time", "mean")).reset_index()
    n = g["num_replicas"]
    g["busbw_gbs"] = g["size_bytes"] / g["time"] * 2 * (n - 1) / n / 1e9
    multi_node = g["num_nodes"].nunique() > 1
    g["series"] = [_where(a, b, multi_node) for a, b in zip(g.num_nodes, g.num_replicas)]
    return g[np.isfinite(g["time"]) & (g["time"] > 0)].reset_index(drop=True)


def allreduce_fitted(model, measured: pd.DataFrame) -> pd.DataFrame:
    """The fitted alpha-beta time for each measured node/rank combination over its size range."""
    rows = []
    for series, g in measured.groupby("series"):
        nodes, reps = int(g["num_nodes"].iloc[0]), int(g["num_replicas"].iloc[0])
        sizes = np.geomspace(g["size_bytes"].min(), g["size_bytes"].max(), 40)
        t = perf.allreduce_time(model.perf.comm, sizes, nodes, reps // nodes)
        rows.append(pd.DataFrame({"size_bytes": sizes, "time": t, "series": series,
                                  "busbw_gbs": sizes / t * 2 * (reps - 1) / reps / 1e9}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def noise_frame(noise: pd.DataFrame, max_points: int = 1500) -> pd.DataFrame:
    """Per-step B_simple and a smoothed curve: the ratio of moving averages of tr(Sigma) and |G|^2,
    which is less biased than averaging the noisy per-step ratio (McCandlish et al., App. A.1)."""
    if noise.empty or not {"step", "b_simple"} <= set(noise.columns):
        return pd.DataFrame()
    df = noise.copy()
    if "config_id" not in df:
        df["config_id"] = "all"
    multi = df["run_id"].nunique() > 1
    out = []
    for (run, cid), g in df.groupby(["run_id", "config_id"], sort=False):
        g = g.groupby("step", as_index=False).mean(numeric_only=True).sort_values("step")
        win = max(5, len(g) // 10)
        if {"grad_var", "grad_sqr"} <= set(g.columns):
            smooth = (g["grad_var"].rolling(win, min_periods=1).mean()
                      / g["grad_sqr"].rolling(win, min_periods=1).mean())
        else:
            smooth = g["b_simple"].rolling(win, min_periods=1).median()
        g = g.assign(smoothed=smooth.to_numpy(), config=f"{run}: {cid}" if multi else str(cid))
        g = g[np.isfinite(g["b_simple"])]
        stride = max(1, len(g) // max_points)
        out.append(g.iloc[::stride][["config", "step", "b_simple", "smoothed"]])
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def b_noise(model, noise: pd.DataFrame):
    """(B_noise, where it came from, bootstrap values): the fitted one, else the ratio of the
    mean tr(Sigma) to the mean |G|^2 over the second half of each noise series."""
    st = getattr(model, "stateff", None) or {}
    if st.get("b_noise"):
        boots = [float(b["b_noise"]) for b in (model.bootstrap or [])
                 if isinstance(b, dict) and b.get("b_noise")]
        return float(st["b_noise"]), "fitted model", boots
    if not noise.empty and {"grad_var", "grad_sqr", "step"} <= set(noise.columns):
        late = noise[noise["step"] >= noise["step"].median()]
        late = late[np.isfinite(late["grad_var"]) & np.isfinite(late["grad_sqr"])]
        if len(late) and late["grad_sqr"].mean() > 0 and late["grad_var"].mean() > 0:
            return float(late["grad_var"].mean() / late["grad_sqr"].mean()), "noise table (second half of training)", []
    return None, None, []


def stateff_curve(bn: float, boots: list, batches) -> pd.DataFrame:
    """E_min / E(B) = B_noise / (B_noise + B): the fraction of small-batch sample efficiency
    left at global batch B (McCandlish et al. 2018, Eq. 2.11)."""
    batches = [b for b in batches if b > 0]
    lo = min([bn / 20] + batches) if batches else bn / 20
    hi = max([bn * 20] + batches) if batches else bn * 20
    B = np.geomspace(max(lo, 1.0), hi, 80)
    eff = stateff.statistical_efficiency(B, bn, 0.0)
    blo, bhi = _band([stateff.statistical_efficiency(B, b, 0.0) for b in boots]) if boots else (None, None)
    return pd.DataFrame({"global_batch": B, "efficiency": eff, "lo": blo, "hi": bhi})


def steps_to_target_curve(st: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fitted S(B) with its 95 % band, measured steps per batch) from a model's stateff fit
    (McCandlish et al. 2018: S(B) = S_min (1 + B_noise/B)); empty frames without one."""
    if not st or not st.get("s_min") or not st.get("b_noise"):
        return pd.DataFrame(), pd.DataFrame()
    from ..fit.stateff import predicted_steps

    meas = {float(b): float(v) for b, v in (st.get("steps_to_target") or {}).items() if v and math.isfinite(float(v))}
    sd = {float(b): float(v) for b, v in (st.get("steps_log_sd") or {}).items() if v is not None}
    bn = float(st["b_noise"])
    lo = min([bn / 30] + list(meas)) if meas else bn / 30
    hi = max([bn * 30] + list(meas)) if meas else bn * 30
    B = np.geomspace(max(lo, 1.0), hi, 80)
    S, s_lo, s_hi = predicted_steps(st, B)
    curve = pd.DataFrame({"global_batch": B, "steps": S, "lo": s_lo, "hi": s_hi})
    pts = pd.DataFrame({"global_batch": list(meas), "steps": list(meas.values())})
    if len(pts):
        f = np.exp(1.96 * np.array([sd.get(b, 0.0) for b in meas]))
        pts["lo"], pts["hi"] = pts["steps"] / f, pts["steps"] * f
    return curve, pts
