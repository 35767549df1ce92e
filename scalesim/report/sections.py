"""The report's sections, each drawn only from the inputs it needs; when an input is missing the
section says which one and how to produce it, and the others still render."""
from __future__ import annotations

import json
import math

import numpy as np

from . import charts, frames
from .page import Section, add_chart, esc, grid_table, kv_table


def scaling(summary, model, boots, host) -> Section:
    out, notes = [], []
    if summary.empty:
        notes.append("No usable steps table in the run directories (config, scale, step and step_time columns): "
                     "throughput and scaling efficiency need a `scalesim measure` run.")
        return Section("scaling", "Throughput and scaling efficiency", out, notes)
    axis, axis_title = frames.scale_axis(summary)
    fitted = None
    if model is None:
        notes.append("No model file (--model): measured points only, no fitted line or interval.")
    else:
        if not boots:
            notes.append("The model file has no bootstrap parameter sets: fitted lines without an interval band.")
        try:
            fitted = frames.model_scaling(model, boots, summary, axis, host)
        except Exception as e:  # noqa: BLE001
            notes.append(f"Could not evaluate the fitted model: {type(e).__name__}: {e}")
    add_chart(out, notes, "throughput", "the throughput chart", lambda: charts.throughput(summary, axis, axis_title, fitted))
    add_chart(out, notes, "scaling-efficiency", "the scaling-efficiency chart",
         lambda: charts.efficiency(summary, axis, axis_title, fitted))
    return Section("scaling", "Throughput and scaling efficiency", out, notes)


def split(summary) -> Section:
    out, notes = [], []
    long = frames.step_split(summary) if not summary.empty else None
    if long is None:
        notes.append("No usable steps table: no step-time split.")
    elif long.empty:
        notes.append("No instrumented steps (data / compute / allreduce / update columns) in the steps table: "
                     "no step-time split.")
    else:
        add_chart(out, notes, "step-split", "the step-time split", lambda: charts.step_split(long, summary))
    return Section("split", "Step-time split", out, notes)


def allreduce(table, model) -> Section:
    out, notes = [], []
    measured = frames.allreduce_measured(table)
    if measured.empty:
        notes.append("No allreduce table with more than one rank in the run directories: run the allreduce "
                      "microbenchmark (part of `scalesim measure`).")
        return Section("allreduce", "Allreduce time and bus bandwidth", out, notes)
    fitted = None
    if model is None:
        notes.append("No model file (--model): no fitted alpha-beta lines.")
    else:
        try:
            fitted = frames.allreduce_fitted(model, measured)
        except Exception as e:  # noqa: BLE001
            notes.append(f"Could not evaluate the fitted communication model: {type(e).__name__}: {e}")
    add_chart(out, notes, "allreduce-time", "the allreduce-time chart", lambda: charts.allreduce_time(measured, fitted))
    add_chart(out, notes, "allreduce-busbw", "the bus-bandwidth chart", lambda: charts.allreduce_busbw(measured, fitted))
    return Section("allreduce", "Allreduce time and bus bandwidth", out, notes)


def noise(table, model, summary) -> Section:
    out, notes = [], []
    frame = frames.noise_frame(table)
    bn, source, boots = frames.b_noise(model, table)
    if frame.empty:
        notes.append("No noise table (gradient noise per step) in the run directories: no B_simple curve.")
    else:
        add_chart(out, notes, "gradient-noise", "the gradient-noise chart", lambda: charts.gradient_noise(frame, bn, source))
    if bn is None:
        notes.append("No gradient noise scale B_noise (neither a model with stateff.b_noise nor |G|^2 and "
                     "tr(Sigma) in a noise table): no statistical-efficiency curve.")
    else:
        batches = summary["global_batch"].to_numpy(float) if not summary.empty else np.array([])
        curve = frames.stateff_curve(bn, boots, batches)
        add_chart(out, notes, "statistical-efficiency", "the statistical-efficiency curve",
             lambda: charts.statistical_efficiency(curve, bn, source, batches))
    st = getattr(model, "stateff", None) or {}
    steps_curve, steps_meas = frames.steps_to_target_curve(st)
    if not steps_curve.empty:
        add_chart(out, notes, "steps-to-target", "the steps-to-target chart",
             lambda: charts.steps_to_target(steps_curve, steps_meas, st))
    notes += [f"Statistical-efficiency fit: {w}" for w in st.get("warnings") or []]
    return Section("noise", "Gradient noise and statistical efficiency", out, notes)


def time_to_target(pred) -> Section:
    out, notes, extra = [], [], ""
    if pred is None:
        notes.append("No prediction file (--prediction): run `scalesim predict ... --json > prediction.json` "
                     "for the time-to-target map.")
    elif pred.grid.empty or pred.grid["time_s"].notna().sum() == 0:
        notes.append("The prediction file has no time-to-target grid with times; showing its recommendation only.")
    else:
        add_chart(out, notes, "time-to-target", "the time-to-target map",
             lambda: charts.time_to_target(pred.grid, pred.marks))
    if pred is not None:
        rows = [(label, detail) for label, _, _, detail in pred.marks]
        rows += [(k, v) for k, v in pred.facts.items()]
        extra = kv_table(rows) if rows else ""
    return Section("time-to-target", "Time to target", out, notes, extra)


def validation(val) -> Section:
    out, notes, extra = [], [], ""
    if val is None:
        notes.append("No validation file (--validation): run `scalesim validate --out validation.csv` for "
                     "predicted vs measured.")
    else:
        add_chart(out, notes, "predicted-vs-measured", "predicted vs measured", lambda: charts.predicted_vs_measured(val))
        per_q = val.groupby("quantity")["error_pct"].agg(lambda e: e.abs().mean())
        counts = val.groupby("quantity").size()
        extra = grid_table(["quantity", "MAPE (%)", "configurations"],
                           [(q, f"{per_q[q]:.1f}", int(counts[q])) for q in per_q.index])
    return Section("validation", "Predicted vs measured", out, notes, extra)


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if v.is_integer():
            return str(int(v))
        return f"{v:.4g}"
    return str(v)


def _round(v):
    if isinstance(v, float):
        return v if not math.isfinite(v) or v.is_integer() else float(f"{v:.4g}")
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_round(x) for x in v]
    return v


def _value(v) -> str:
    """A fact for a table cell: numbers to 4 significant digits, containers as compact JSON."""
    return json.dumps(_round(v)) if isinstance(v, (dict, list, tuple)) else _fmt(v)


def model_facts(model, path) -> Section:
    if model is None:
        return Section("model", "Fitted model", [], ["No model file (--model)."])
    p = model.perf
    rows = [("file", path)]
    if p is None:
        rows += [("throughput model", "none (fitted on training curves alone)")]
    else:
        rows += [(f"compute.{k}", _fmt(v)) for k, v in p.compute._asdict().items()]
        rows += [(f"comm.{k}", _fmt(v)) for k, v in p.comm._asdict().items()]
        rows += [("gamma (overlap)", _fmt(p.gamma))]
    if model.stateff:
        rows += [(f"stateff.{k}", _value(v))
                 for k, v in model.stateff.items()]
    rows += [(f"90 % interval: {k}", f"[{_fmt(v[0])}, {_fmt(v[1])}]") for k, v in (model.intervals or {}).items()
             if isinstance(v, (list, tuple)) and len(v) == 2]
    rows += [(f"fitted range: {k}", _value(v)) for k, v in (model.ranges or {}).items()]
    rows += [(f"quality: {k}", f"MAPE {v['mape']:.1f} % over {v.get('n', '?')}"
              if isinstance(v, dict) and isinstance(v.get("mape"), (int, float)) else _value(v))
             for k, v in (model.quality or {}).items()]
    rows += [("bootstrap sets", len(model.bootstrap or []))]
    return Section("model", "Fitted model", [], [], kv_table(rows))


def _flat(prefix: str, d, out: list):
    if isinstance(d, dict):
        for k, v in d.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append((prefix, _value(d)))
    return out


def run_facts(manifests, rows_by_run) -> Section:
    if not manifests:
        return Section("facts", "Run facts", [], ["No run directories given."])
    parts = []
    for run_id, path, m in manifests:
        hosts = "; ".join(f"{h.get('hostname')} ({h.get('ranks')} ranks, {h.get('cores')} cores)"
                          for h in m.get("hosts") or [])
        rows = [("run", run_id), ("path", path), ("kind", m.get("kind")), ("created", m.get("created")),
                ("hosts", hosts or "not recorded"), ("threads per rank", m.get("threads_per_rank"))]
        rows += _flat("versions", m.get("versions") or {}, [])
        rows += _flat("model", m.get("model") or {}, [])
        rows += _flat("config", m.get("config") or {}, [])
        shown = {"schema", "run_id", "kind", "created", "hosts", "threads_per_rank", "versions", "model",
                 "config", "configs"}
        rows += [(k, _value(v)) for k, v in m.items() if k not in shown]
        for t, n in rows_by_run.get(run_id, {}).items():
            rows.append((f"table {t}", f"{n} rows" if n else "missing"))
        parts.append(f"<h3>{esc(run_id)}</h3>" + kv_table(rows))
        cfgs = m.get("configs") or []
        if cfgs:
            parts.append(grid_table(["config", "nodes", "ranks", "local batch", "status", "error"],
                                    [(c.get("config_id"), c.get("num_nodes"), c.get("num_replicas"),
                                      c.get("local_batch"), c.get("status"), c.get("error") or "") for c in cfgs]))
    return Section("facts", "Run facts", [], [], "\n".join(parts))


def all_sections(runs, model, model_path, val, pred) -> list:
    from .inputs import bootstrap_perfs

    summary = frames.config_summary(runs.tables["steps"])
    # a model fitted on training curves alone has no throughput part: only its statistical efficiency is drawn
    perf_model = model if model is not None and model.perf is not None else None
    boots = bootstrap_perfs(perf_model) if perf_model is not None else []
    host = frames.host_facts(perf_model, runs.manifests)
    from . import multinode

    multi = multinode.section(runs, summary, val, perf_model)  # None unless an input spans several nodes
    return [scaling(summary, perf_model, boots, host), *([multi] if multi else []), split(summary),
            allreduce(runs.tables["allreduce"], perf_model),
            noise(runs.tables["noise"], model, summary), time_to_target(pred), validation(val),
            model_facts(model, model_path), run_facts(runs.manifests, runs.rows)]
