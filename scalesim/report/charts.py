"""One Altair chart builder per report chart. Each takes the frames from frames.py and returns a
chart with a title, axis units and tooltips; fitted-model layers are added only when given."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from .frames import SPLIT

W, H = 520, 300
MODEL_NOTE = "lines: fitted model; band: 5-95 % over bootstrap refits"


def _title(text: str, subtitle: str | None = None) -> alt.TitleParams:
    return alt.TitleParams(text, subtitle=subtitle or alt.Undefined, anchor="start")


def _scale_x(values, title: str) -> alt.X:
    """Scale axis with ticks at the measured scales; logarithmic when they span a factor of 4 or
    more (node counts 1, 2, 4, 8 ...)."""
    v = np.asarray(values, float)
    v = np.unique(v[np.isfinite(v)])
    log = len(v) and v.min() > 0 and v.max() / v.min() >= 4
    scale = alt.Scale(type="log", base=2) if log else alt.Scale(zero=False)
    return alt.X("x:Q", title=title, scale=scale, axis=alt.Axis(values=[float(x) for x in v], format="~g"))


def _fitted_layers(fitted, x_title, y, y_lo, y_hi, color):
    line = alt.Chart(fitted).mark_line(strokeDash=[6, 3]).encode(
        x="x:Q", y=f"{y}:Q", color=color,
        tooltip=[alt.Tooltip("x:Q", title=x_title), alt.Tooltip("local_batch:N", title="local batch"),
                 alt.Tooltip(f"{y}:Q", title=f"model {y}", format=".3~f")])
    if fitted[y_lo].isna().all():
        return [line]
    band = alt.Chart(fitted).mark_area(opacity=0.15).encode(x="x:Q", y=f"{y_lo}:Q", y2=f"{y_hi}:Q", color=color)
    return [band, line]


def _measured_tooltip(axis_title):
    return [alt.Tooltip("config:N", title="configuration"),
            alt.Tooltip("x:Q", title=axis_title),
            alt.Tooltip("global_batch:Q", title="global batch"),
            alt.Tooltip("step_time:Q", title="step time (s)", format=".4f"),
            alt.Tooltip("throughput:Q", title="throughput (samples/s)", format=",.1f"),
            alt.Tooltip("efficiency:Q", title="scaling efficiency", format=".1%")]


def throughput(summary: pd.DataFrame, axis: str, axis_title: str, fitted=None) -> alt.TopLevelMixin:
    df = summary.assign(x=summary[axis])
    color = alt.Color("local_batch:N", title="Local batch (samples/rank)")
    x = _scale_x(df.x, axis_title)
    pts = alt.Chart(df).mark_point(filled=True, size=70).encode(
        x=x, y=alt.Y("throughput:Q", title="Throughput (samples/s)"), color=color,
        tooltip=_measured_tooltip(axis_title))
    layers = [pts] if fitted is not None else [pts.mark_line(point=True, opacity=0.7)]
    if fitted is not None:
        layers = _fitted_layers(fitted, axis_title, "throughput", "thr_lo", "thr_hi", color) + layers
    sub = "points: measured (production step)" + (f"; {MODEL_NOTE}" if fitted is not None else "")
    return alt.layer(*layers).properties(width=W, height=H, title=_title(f"Throughput vs {axis_title.lower()}", sub)
                                         ).configure_legend(symbolOpacity=1)


def efficiency(summary: pd.DataFrame, axis: str, axis_title: str, fitted=None) -> alt.TopLevelMixin:
    df = summary.assign(x=summary[axis])
    color = alt.Color("local_batch:N", title="Local batch (samples/rank)")
    x = _scale_x(df.x, axis_title)
    pts = alt.Chart(df).mark_point(filled=True, size=70).encode(
        x=x, y=alt.Y("efficiency:Q", title="Scaling efficiency (fraction of linear)", axis=alt.Axis(format="%")),
        color=color, tooltip=_measured_tooltip(axis_title))
    ideal = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(color="gray", strokeDash=[2, 2]).encode(y="y:Q")
    layers = [ideal, pts] if fitted is not None else [ideal, pts.mark_line(point=True, opacity=0.7)]
    if fitted is not None:
        layers = _fitted_layers(fitted, axis_title, "efficiency", "eff_lo", "eff_hi", color) + layers
    sub = "per-rank throughput relative to the smallest scale measured at the same local batch"
    title = _title(f"Scaling efficiency vs {axis_title.lower()}", sub)
    return alt.layer(*layers).properties(width=W, height=H, title=title
                                         ).configure_legend(symbolOpacity=1)


def step_split(long: pd.DataFrame, summary: pd.DataFrame) -> alt.TopLevelMixin:
    order = list(summary["config"])
    comps = [name for _, name in SPLIT]
    df = long.assign(ms=long["seconds"] * 1e3)
    x = alt.X("config:N", title="Configuration", sort=order, axis=alt.Axis(labelAngle=-40))
    bars = alt.Chart(df).mark_bar().encode(
        x=x, y=alt.Y("sum(ms):Q", title="Time per step (ms)", stack="zero"),
        color=alt.Color("component:N", title="Component", scale=alt.Scale(domain=comps), sort=comps),
        order=alt.Order("order:Q"),
        tooltip=[alt.Tooltip("config:N", title="configuration"), alt.Tooltip("component:N"),
                 alt.Tooltip("ms:Q", title="ms per step (mean over ranks and steps)", format=".2f")])
    layers = [bars]
    prod = summary[np.isfinite(summary["step_time_production"])]
    sub = "instrumented steps, mean over ranks and steps"
    if len(prod):
        prod = prod.assign(ms=prod["step_time_production"] * 1e3)
        layers.append(alt.Chart(prod).mark_tick(color="black", thickness=2, size=24).encode(
            x=x, y="ms:Q", tooltip=[alt.Tooltip("config:N", title="configuration"),
                                    alt.Tooltip("ms:Q", title="production step (ms, median)", format=".2f")]))
        sub += "; black tick: production (fused, overlapped) step"
    return alt.layer(*layers).properties(width=max(W, 28 * len(order)), height=H,
                                         title=_title("Step-time split per configuration", sub))


def _allreduce(measured, fitted, y: str, y_title: str, title: str, scale_y: float = 1.0):
    m = measured.assign(v=measured[y] * scale_y)
    color = alt.Color("series:N", title="Placement")
    x = alt.X("size_bytes:Q", title="Message size (bytes)", scale=alt.Scale(type="log"), axis=alt.Axis(format="~s"))
    yy = alt.Y("v:Q", title=y_title, scale=alt.Scale(type="log"), axis=alt.Axis(format="~g"))
    pts = alt.Chart(m).mark_line(point=True, opacity=0.8).encode(
        x=x, y=yy, color=color,
        tooltip=[alt.Tooltip("series:N", title="placement"), alt.Tooltip("size_bytes:Q", title="bytes", format=",.0f"),
                 alt.Tooltip("time:Q", title="time per allreduce (s)", format=".3~e"),
                 alt.Tooltip("busbw_gbs:Q", title="busbw (GB/s)", format=".3~f")])
    layers, sub = [pts], "measured microbenchmark (mean per size)"
    if fitted is not None and len(fitted):
        f = fitted.assign(v=fitted[y] * scale_y)
        layers.append(alt.Chart(f).mark_line(strokeDash=[6, 3], opacity=0.9).encode(
            x="size_bytes:Q", y="v:Q", color=color,
            tooltip=[alt.Tooltip("series:N", title="placement"),
                     alt.Tooltip("size_bytes:Q", title="bytes", format=",.0f"),
                     alt.Tooltip("v:Q", title=f"model {y_title}", format=".3~g")]))
        sub += "; dashed: fitted alpha-beta model"
    return alt.layer(*layers).properties(width=W, height=H, title=_title(title, sub))


def allreduce_time(measured, fitted=None):
    return _allreduce(measured, fitted, "time", "Allreduce time (ms)", "Allreduce time vs message size", 1e3)


def allreduce_busbw(measured, fitted=None):
    return _allreduce(measured, fitted, "busbw_gbs", "Bus bandwidth (GB/s)", "Allreduce bus bandwidth vs message size")


def gradient_noise(frame: pd.DataFrame, bn: float | None = None, bn_source: str | None = None):
    vals = np.concatenate([frame["b_simple"].to_numpy(float), frame["smoothed"].to_numpy(float)])
    vals = vals[np.isfinite(vals)]
    lo, hi = (np.percentile(vals, [2, 98]) if len(vals) else (0.0, 1.0))
    if bn is not None:
        lo, hi = min(lo, bn), max(hi, bn)
    y = alt.Y("b_simple:Q", title="B_simple (samples)", scale=alt.Scale(domain=[float(lo), float(hi)], clamp=False))
    color = alt.Color("config:N", title="Configuration")
    tip = [alt.Tooltip("config:N", title="configuration"), alt.Tooltip("step:Q", title="step"),
           alt.Tooltip("b_simple:Q", title="B_simple (this step)", format=",.1f"),
           alt.Tooltip("smoothed:Q", title="B_simple (smoothed)", format=",.1f")]
    pts = alt.Chart(frame).mark_circle(size=12, opacity=0.3, clip=True).encode(
        x=alt.X("step:Q", title="Training step"), y=y, color=color, tooltip=tip)
    line = alt.Chart(frame).mark_line(clip=True).encode(x="step:Q", y="smoothed:Q", color=color, tooltip=tip)
    layers = [pts, line]
    sub = "dots: B_simple as recorded per step; line: ratio of moving averages of tr(Sigma) and |G|^2"
    if bn is not None:
        layers.append(alt.Chart(pd.DataFrame({"b": [bn], "src": [bn_source]})).mark_rule(
            color="black", strokeDash=[4, 4]).encode(
            y="b:Q", tooltip=[alt.Tooltip("b:Q", title="B_noise", format=",.1f"), alt.Tooltip("src:N", title="from")]))
        sub += f"; dashed: B_noise = {bn:,.0f} ({bn_source})"
    return alt.layer(*layers).properties(width=W, height=H, title=_title("Gradient noise scale over training", sub))


def statistical_efficiency(curve: pd.DataFrame, bn: float, bn_source: str, measured_batches=()):
    x = alt.X("global_batch:Q", title="Global batch (samples)", scale=alt.Scale(type="log", base=2),
              axis=alt.Axis(format=",d"))
    y = alt.Y("efficiency:Q", title="Statistical efficiency E_min/E(B)", axis=alt.Axis(format="%"),
              scale=alt.Scale(domain=[0, 1]))
    line = alt.Chart(curve).mark_line().encode(
        x=x, y=y, tooltip=[alt.Tooltip("global_batch:Q", title="global batch", format=",.0f"),
                           alt.Tooltip("efficiency:Q", title="statistical efficiency", format=".1%")])
    layers = [line]
    if curve["lo"].notna().any():
        layers.insert(0, alt.Chart(curve).mark_area(opacity=0.2).encode(x="global_batch:Q", y="lo:Q", y2="hi:Q"))
    rule = pd.DataFrame({"global_batch": [bn], "label": [f"B_noise = {bn:,.0f}"]})
    layers.append(alt.Chart(rule).mark_rule(color="gray", strokeDash=[4, 4]).encode(
        x="global_batch:Q", tooltip=[alt.Tooltip("label:N", title="gradient noise scale")]))
    if len(measured_batches):
        from ..model.stateff import statistical_efficiency as se

        pts = pd.DataFrame({"global_batch": sorted(set(float(b) for b in measured_batches))})
        pts["efficiency"] = se(pts["global_batch"], bn, 0.0)
        layers.append(alt.Chart(pts).mark_point(filled=True, size=60, color="black").encode(
            x="global_batch:Q", y="efficiency:Q",
            tooltip=[alt.Tooltip("global_batch:Q", title="measured global batch", format=",.0f"),
                     alt.Tooltip("efficiency:Q", title="statistical efficiency", format=".1%")]))
    sub = f"McCandlish et al. 2018: E(B) = E_min (1 + B/B_noise); B_noise from {bn_source}; dots: measured batches"
    return alt.layer(*layers).properties(width=W, height=H, title=_title("Statistical efficiency vs global batch", sub))


def _time_unit(seconds) -> tuple[float, str]:
    s = pd.Series(seconds, dtype=float).dropna()
    med = float(s.median()) if len(s) else 0.0
    return (3600.0, "h") if med >= 7200 else (60.0, "min") if med >= 120 else (1.0, "s")


def time_to_target(grid: pd.DataFrame, marks: list):
    div, unit = _time_unit(grid["time_s"])
    df = grid.assign(t=grid["time_s"] / div)
    x = alt.X("num_nodes:O", title="Node count", axis=alt.Axis(labelAngle=0))
    y = alt.Y("global_batch:O", title="Global batch (samples)", sort="descending")
    extra = [alt.Tooltip(f"{c}:Q" if pd.api.types.is_numeric_dtype(df[c]) else f"{c}:N", title=c)
             for c in df.columns if c not in ("num_nodes", "global_batch", "time_s", "t")][:8]
    tip = [alt.Tooltip("num_nodes:O", title="nodes"), alt.Tooltip("global_batch:O", title="global batch"),
           alt.Tooltip("t:Q", title=f"time to target ({unit})", format=",.2f")] + extra
    base = alt.Chart(df).mark_rect(color="#e6e6e6").encode(x=x, y=y, tooltip=tip)
    heat = alt.Chart(df[df["t"].notna()]).mark_rect().encode(
        x=x, y=y, color=alt.Color("t:Q", title=f"Time to target ({unit})",
                                  scale=alt.Scale(type="log", scheme="viridis", reverse=True)), tooltip=tip)
    layers = [base, heat]
    if len(df) <= 120:
        t = df["t"].dropna()
        mid = float(np.sqrt(t.min() * t.max())) if len(t) and t.min() > 0 else float(t.median())
        layers.append(alt.Chart(df[df["t"].notna()]).mark_text(fontSize=9).encode(
            x=x, y=y, text=alt.Text("t:Q", format=",.3~r"), tooltip=tip,
            color=alt.condition(f"datum.t < {mid}", alt.value("black"), alt.value("white"))))
    if marks:
        m = pd.DataFrame([mk[:3] for mk in marks], columns=["label", "num_nodes", "global_batch"])
        m = m.merge(df[["num_nodes", "global_batch", "t"]], on=["num_nodes", "global_batch"], how="left")
        layers.append(alt.Chart(m).mark_point(size=520, strokeWidth=3, filled=False, opacity=1).encode(
            x=x, y=y, shape=alt.Shape("label:N", title="Marked"),
            color=alt.value("#d62728"),
            tooltip=[alt.Tooltip("label:N", title="mark"), alt.Tooltip("num_nodes:O", title="nodes"),
                     alt.Tooltip("global_batch:O", title="global batch"),
                     alt.Tooltip("t:Q", title=f"time to target ({unit})", format=",.2f")]))
    sub = "predicted by `scalesim predict`; grey: does not reach the target; red: " + (
        ", ".join(sorted({str(m[0]) for m in marks})) if marks else "no recommendation in the file")
    return alt.layer(*layers).properties(width=max(W // 2, 34 * df["num_nodes"].nunique()),
                                         height=max(160, 22 * df["global_batch"].nunique()),
                                         title=_title("Time to target over node count x global batch", sub))


def _with_unit(quantity: str) -> str:
    q = str(quantity)
    unit = ("s" if q.endswith("time") or q.endswith("_s") else "samples/s" if "throughput" in q
            else "bytes/s" if "bw" in q else None)
    return f"{q} ({unit})" if unit else q


def predicted_vs_measured(val: pd.DataFrame):
    mape = val.groupby("quantity")["error_pct"].apply(lambda e: e.abs().mean())
    df = val.assign(mape=val["quantity"].map(mape), panel=val["quantity"].map(_with_unit))
    df["band_lo"] = (df["measured"] * (1 - df["mape"] / 100)).clip(lower=0)  # MAPE can exceed 100 %
    df["band_hi"] = df["measured"] * (1 + df["mape"] / 100)
    # log only when every quantity spans a decade; tight (not nice) domains keep points off the corner
    spans = df.groupby("quantity").apply(lambda g: g[["measured", "predicted"]].max().max()
                                         / g[["measured", "predicted"]].min().min(), include_groups=False)
    positive = bool((df[["measured", "predicted"]] > 0).all().all()) and bool((spans >= 10).all())
    sc = alt.Scale(type="log", nice=False) if positive else alt.Scale(zero=False, nice=False)
    x = alt.X("measured:Q", title="Measured", scale=sc)
    tip = [alt.Tooltip("config:N", title="configuration"), alt.Tooltip("quantity:N"),
           alt.Tooltip("measured:Q", format=".4~g"), alt.Tooltip("predicted:Q", format=".4~g"),
           alt.Tooltip("error_pct:Q", title="error (%)", format="+.1f"),
           alt.Tooltip("mape:Q", title="MAPE of this quantity (%)", format=".1f")]
    band = alt.Chart().mark_area(opacity=0.18, color="#4c78a8").encode(x=x, y="band_lo:Q", y2="band_hi:Q")
    ident = alt.Chart().mark_line(color="gray", strokeDash=[4, 4]).encode(x=x, y="measured:Q")
    pts = alt.Chart().mark_point(filled=True, size=60).encode(
        x=x, y=alt.Y("predicted:Q", title="Predicted", scale=sc), color=alt.Color("quantity:N", legend=None),
        tooltip=tip)
    # invisible points give each facet the same x and y domain, so the identity line is the diagonal
    same = [alt.Chart().mark_point(opacity=0).encode(x=alt.X(f"{a}:Q", scale=sc), y=alt.Y(f"{b}:Q", scale=sc))
            for a, b in (("predicted", "measured"), ("band_lo", "band_lo"), ("band_hi", "band_hi"))]
    layers = [*same, band, ident, pts]
    if {"lo", "hi"} <= set(df.columns) and df[["lo", "hi"]].notna().any().all():
        layers.append(alt.Chart().mark_rule().encode(x=x, y="lo:Q", y2="hi:Q",
                                                     color=alt.Color("quantity:N", legend=None)))
    inner = alt.layer(*layers, data=df).properties(width=280, height=280)
    return inner.facet(facet=alt.Facet("panel:N", title=None, header=alt.Header(labelFontSize=12)), columns=3).resolve_scale(
        x="independent", y="independent").properties(
        title=_title("Predicted vs measured", "dashed: perfect prediction; band: +/- the quantity's mean absolute "
                     "percentage error; points: held-out configurations from `scalesim validate`"))


def steps_to_target(curve: pd.DataFrame, measured: pd.DataFrame, st: dict):
    """Steps to the target vs global batch: the fitted S(B) with its 95 % band, and the runs' steps."""
    x = alt.X("global_batch:Q", title="Global batch (samples)", scale=alt.Scale(type="log", base=2),
              axis=alt.Axis(format=",d"))
    y = alt.Y("steps:Q", title="Optimizer steps to the target", scale=alt.Scale(type="log"))
    tip = [alt.Tooltip("global_batch:Q", title="global batch", format=",.0f"),
           alt.Tooltip("steps:Q", title="steps", format=",.0f"),
           alt.Tooltip("lo:Q", title="95 % low", format=",.0f"), alt.Tooltip("hi:Q", title="95 % high", format=",.0f")]
    layers = [alt.Chart(curve).mark_area(opacity=0.18).encode(x=x, y=alt.Y("lo:Q", scale=alt.Scale(type="log")), y2="hi:Q"),
              alt.Chart(curve).mark_line().encode(x=x, y=y, tooltip=tip)]
    if len(measured):
        layers.append(alt.Chart(measured).mark_rule(color="black").encode(x="global_batch:Q", y="lo:Q", y2="hi:Q"))
        layers.append(alt.Chart(measured).mark_point(filled=True, size=60, color="black").encode(
            x="global_batch:Q", y="steps:Q", tooltip=tip))
    bn = float(st["b_noise"])
    layers.append(alt.Chart(pd.DataFrame({"global_batch": [bn], "label": [f"B_noise = {bn:,.0f}"]})).mark_rule(
        color="gray", strokeDash=[4, 4]).encode(x="global_batch:Q", tooltip=[alt.Tooltip("label:N", title="noise scale")]))
    t = st.get("target") or {}
    what = f"{t.get('metric', 'metric')} {'>=' if t.get('higher_is_better', True) else '<='} {t.get('value', float('nan')):.4g}" \
        if t else "the fitted target"
    meas_bn = st.get("b_noise_measured")
    sub = (f"S(B) = S_min (1 + B_noise/B), S_min = {float(st['s_min']):,.0f}, B_noise = {bn:,.0f}"
           + (f" (measured {float(meas_bn):,.0f})" if meas_bn else "") + f"; target {what}; band: 95 %; dots: runs")
    return alt.layer(*layers).properties(width=W, height=H, title=_title("Steps to the target vs global batch", sub))
