"""Multi-node figures (shown only when some input spans several nodes): allreduce bus bandwidth vs
message size per node count with the configured link rate drawn, throughput vs node count with
ideal (linear) scaling, and measured vs predicted step time on node counts the fit did not see.

busbw (nccl-tests): algbw x 2(n-1)/n for a ring allreduce of n ranks, algbw = bytes / time; with
one rank per node every byte of a ring step crosses a node link, so busbw is bounded by the link rate."""
from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from .charts import H, W, _title
from .page import Section, add_chart, grid_table

ANCHOR, TITLE = "multinode", "Multi-node scaling"


# --- frames ------------------------------------------------------------------------------------
def link_rate_bps(manifest: dict) -> float | None:
    """The configured node link rate (bits/s) an emulated campaign recorded, or None (unshaped, real hosts)."""
    em = (manifest.get("config") or {}).get("emulated") or {}
    rate = em.get("link_bps")
    for c in manifest.get("clusters") or []:  # one per session; the last one is what ran last
        rate = c.get("link_rate_bps") or rate
    return float(rate) if rate and math.isfinite(float(rate)) and float(rate) > 0 else None


def _rate_text(bps: float) -> str:
    from ..cluster.plan import format_rate

    return format_rate(bps)


def links(manifests) -> dict:
    """run_id -> configured link label ('200mbit', or 'link not recorded')."""
    return {run: (_rate_text(r) if (r := link_rate_bps(m)) else "link not recorded") for run, _, m in manifests}


def busbw_frame(table: pd.DataFrame, link_of: dict) -> pd.DataFrame:
    need = {"run_id", "num_nodes", "num_replicas", "size_bytes", "time"}
    if table.empty or not need <= set(table.columns):
        return pd.DataFrame()
    df = table[(table["num_nodes"] > 1) & (table["num_replicas"] > 1) & (table["time"] > 0)]
    if df.empty:
        return pd.DataFrame()
    df = df.assign(link=df["run_id"].map(link_of).fillna("link not recorded"))
    g = df.groupby(["link", "num_nodes", "num_replicas", "size_bytes"]).agg(time=("time", "median")).reset_index()
    n = g["num_replicas"]
    g["busbw_mbs"] = g["size_bytes"] / g["time"] * 2 * (n - 1) / n / 1e6
    several = g["link"].nunique() > 1
    g["series"] = [f"{a} nodes x {r // a}" + (f" @ {lk}" if several else "")
                   for a, r, lk in zip(g.num_nodes, g.num_replicas, g.link)]
    return g


def link_rules(manifests) -> pd.DataFrame:
    rates = sorted({r for _, _, m in manifests if (r := link_rate_bps(m))})
    return pd.DataFrame({"mbs": [r / 8e6 for r in rates], "label": [f"configured link {_rate_text(r)}" for r in rates]})


def scaling_frame(summary: pd.DataFrame, link_of: dict) -> pd.DataFrame:
    """Measured throughput per (link, ranks per node, local batch) over node counts, with the ideal:
    the smallest node count's throughput times nodes / that count."""
    if summary.empty or summary["num_nodes"].nunique() < 2:
        return pd.DataFrame()
    s = summary.assign(link=summary["run_id"].map(link_of).fillna("link not recorded"),
                       per_node=(summary["num_replicas"] // summary["num_nodes"]).astype(int))
    g = s.groupby(["link", "per_node", "local_batch", "num_nodes"], as_index=False)["throughput"].mean()
    out = []
    for _, part in g.groupby(["link", "per_node", "local_batch"]):
        if part["num_nodes"].nunique() < 2:
            continue
        ref = part.loc[part["num_nodes"].idxmin()]
        out.append(part.assign(ideal=ref.throughput * part["num_nodes"] / ref.num_nodes,
                               efficiency=lambda d: d["throughput"] / d["ideal"]))
    if not out:
        return pd.DataFrame()
    df = pd.concat(out, ignore_index=True)
    several = df["link"].nunique() > 1 or df["per_node"].nunique() > 1
    df["series"] = [f"b={int(b)}" + (f", {p}/node @ {lk}" if several else "")
                    for b, p, lk in zip(df.local_batch, df.per_node, df.link)]
    return df


def heldout_frame(val, model) -> pd.DataFrame:
    """Validation rows with a node count; held_out = the node count is not among the fitted configurations."""
    if val is None or "num_nodes" not in val or val["num_nodes"].notna().sum() == 0:
        return pd.DataFrame()
    from .answer import measured_configs

    fitted = {n for n, _, _ in measured_configs(model)} if model is not None else set()
    if not fitted and "seen" in val:
        fitted = set(val.loc[val["seen"].astype(bool), "num_nodes"].dropna().astype(int))
    df = val[val["num_nodes"].notna() & (val["quantity"] == "step_time")].copy()
    if df.empty or df["num_nodes"].max() <= 1:
        return pd.DataFrame()
    df["num_nodes"] = df["num_nodes"].astype(int)
    df["held_out"] = ~df["num_nodes"].isin(fitted)
    return df.reset_index(drop=True)


# --- charts ------------------------------------------------------------------------------------
def _nodes_x(values, title="Node count", padding=0):
    v = sorted({float(x) for x in values})
    return alt.X("num_nodes:Q", title=title, scale=alt.Scale(type="log", base=2, padding=padding),
                 axis=alt.Axis(values=v, format="~g"))


def busbw_chart(df: pd.DataFrame, rules: pd.DataFrame):
    color = alt.Color("series:N", title="Placement")
    x = alt.X("size_bytes:Q", title="Message size (bytes)", scale=alt.Scale(type="log", nice=False),
              axis=alt.Axis(format="~s"))
    top = max(df["busbw_mbs"].max(), rules["mbs"].max() if len(rules) else 0) * 1.3
    y = alt.Y("busbw_mbs:Q", title="Bus bandwidth (MB/s)", scale=alt.Scale(type="log", domainMax=float(top)),
              axis=alt.Axis(format="~g"))
    layers = [alt.Chart(df).mark_line(point=True).encode(
        x=x, y=y, color=color,
        tooltip=[alt.Tooltip("series:N", title="placement"), alt.Tooltip("size_bytes:Q", title="bytes", format=",.0f"),
                 alt.Tooltip("time:Q", title="median time (s)", format=".3~e"),
                 alt.Tooltip("busbw_mbs:Q", title="busbw (MB/s)", format=".3~f")])]
    sub = "measured allreduce microbenchmark (median per size); busbw = bytes/time x 2(n-1)/n"
    if len(rules):
        layers.append(alt.Chart(rules).mark_rule(color="black", strokeDash=[6, 3]).encode(
            y="mbs:Q", tooltip=[alt.Tooltip("label:N", title="link"), alt.Tooltip("mbs:Q", title="MB/s", format=".4g")]))
        layers.append(alt.Chart(rules).mark_text(align="left", dx=4, dy=-6, fontSize=11).encode(
            x=alt.value(4), y="mbs:Q", text="label:N"))
        sub += "; dashed: the configured link rate (the ceiling for one rank per node)"
    else:
        sub += "; no link rate recorded in the manifests (real hosts or an unshaped link)"
    return alt.layer(*layers).properties(width=W, height=H, title=_title("Bus bandwidth across nodes", sub))


def scaling_chart(df: pd.DataFrame):
    color = alt.Color("series:N", title="Local batch")
    x = _nodes_x(df["num_nodes"])
    tip = [alt.Tooltip("series:N", title="series"), alt.Tooltip("num_nodes:Q", title="nodes"),
           alt.Tooltip("throughput:Q", title="measured (samples/s)", format=",.1f"),
           alt.Tooltip("ideal:Q", title="ideal (samples/s)", format=",.1f"),
           alt.Tooltip("efficiency:Q", title="of ideal", format=".0%")]
    ideal = alt.Chart(df).mark_line(strokeDash=[4, 4], opacity=0.7).encode(x=x, y="ideal:Q", color=color, tooltip=tip)
    meas = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(filled=True, size=70)).encode(
        x=x, y=alt.Y("throughput:Q", title="Throughput (samples/s)"), color=color, tooltip=tip)
    sub = "solid: measured (production step); dashed: ideal, the smallest node count's throughput x nodes"
    return alt.layer(ideal, meas).properties(width=W, height=H, title=_title("Throughput vs node count", sub))


def heldout_chart(df: pd.DataFrame):
    b = df["config"].astype(str).str.extract(r"local_batch=(\d+)", expand=False)
    base = df.assign(batch=("b=" + b).fillna(df["config"].astype(str)),
                     node_count=np.where(df["held_out"], "held out", "fitted"))
    long = pd.concat([base.assign(kind="measured", step_time=base["measured"]),
                      base.assign(kind="predicted", step_time=base["predicted"])], ignore_index=True)
    x = _nodes_x(long["num_nodes"], padding=40)
    v = long["step_time"].to_numpy(float)
    y = alt.Y("step_time:Q", title="Step time (s)",
              scale=alt.Scale(type="log", nice=False, domain=[float(v.min()) / 1.3, float(v.max()) * 1.3]))
    color = alt.Color("batch:N", title="Local batch")
    tip = [alt.Tooltip("config:N", title="configuration"), alt.Tooltip("node_count:N", title="node count"),
           alt.Tooltip("measured:Q", title="measured (s)", format=".4g"),
           alt.Tooltip("predicted:Q", title="predicted (s)", format=".4g"),
           alt.Tooltip("error_pct:Q", title="error (%)", format="+.1f")]
    pts = alt.Chart(long).mark_point(size=110, strokeWidth=2).encode(
        x=x, y=y, color=color, tooltip=tip,
        shape=alt.Shape("kind:N", title="", scale=alt.Scale(domain=["measured", "predicted"], range=["circle", "diamond"])),
        fill=alt.condition("datum.kind == 'measured'", alt.Fill("batch:N", legend=None), alt.value("transparent")))
    gap = alt.Chart(base).mark_rule(opacity=0.5).encode(x=x, y="measured:Q", y2="predicted:Q", color=color)
    layers = [gap, pts]
    if {"lo", "hi"} <= set(base.columns) and base[["lo", "hi"]].notna().all().all():
        layers.insert(0, alt.Chart(base).mark_rule(strokeWidth=4, opacity=0.25).encode(
            x=x, y="lo:Q", y2="hi:Q", color=color))
    held = sorted(set(base.loc[base["held_out"], "num_nodes"]))
    sub = ("filled: measured; hollow diamond: predicted by the fitted model (`scalesim validate`); node counts the "
           "fit did not see: " + (", ".join(map(str, held)) if held else "none"))
    return alt.layer(*layers).properties(width=W, height=H, title=_title(
        "Measured vs predicted step time by node count", sub))


# --- section -----------------------------------------------------------------------------------
def _mape_rows(df: pd.DataFrame) -> list:
    rows = []
    for n, g in df.groupby("num_nodes"):
        rows.append((int(n), "held out" if g["held_out"].iloc[0] else "fitted", f"{g['error_pct'].abs().mean():.1f}",
                     f"{g['error_pct'].min():+.1f} .. {g['error_pct'].max():+.1f}", len(g)))
    return rows


def section(runs, summary, val, model) -> Section | None:
    """None when no input spans more than one node (single-host reports stay as they were)."""
    link_of = links(runs.manifests)
    bw = busbw_frame(runs.tables["allreduce"], link_of)
    sc = scaling_frame(summary, link_of)
    ho = heldout_frame(val, model)
    if bw.empty and sc.empty and ho.empty:
        return None
    out, notes, extra = [], [], ""
    if not bw.empty:
        rules = link_rules(runs.manifests)
        add_chart(out, notes, "multinode-busbw", "the multi-node bus-bandwidth chart", lambda: busbw_chart(bw, rules))
    if not sc.empty:
        add_chart(out, notes, "throughput-vs-nodes", "the throughput-vs-nodes chart", lambda: scaling_chart(sc))
    if not ho.empty:
        add_chart(out, notes, "heldout-nodes", "measured vs predicted by node count", lambda: heldout_chart(ho))
        extra = grid_table(["nodes", "node count was", "step-time MAPE (%)", "error range (%)", "configurations"],
                           _mape_rows(ho))
        if not ho["held_out"].any():
            notes.append("Every node count in the validation file was also fitted: no held-out node count.")
    return Section(ANCHOR, TITLE, out, notes, extra)
