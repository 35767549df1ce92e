"""The report's first section: the answer. Given a model and a training target, the configuration
`scalesim predict` recommends for it (through the Python API, scalesim.plan.predict, so the page and
the command cannot disagree), its 5-95 % interval and what it rests on; without a target, a summary of
what was measured and the best measured configuration. No charts: this is read before any chart."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..plan.spec import LRSpec, SpaceSpec, TargetSpec
from ..units import format_duration
from .page import Section, esc, kv_table

ANCHOR, TITLE = "answer", "The answer"
_LABEL = re.compile(r"nodes=(\d+)\s+replicas=(\d+)\s+local_batch=(\d+)")


@dataclass(frozen=True)
class AnswerRequest:
    """What the report is asked to answer; all None/empty = no target, summarise the measurements."""
    target_time: float | None = None
    target: TargetSpec = field(default_factory=TargetSpec)
    space: SpaceSpec = field(default_factory=SpaceSpec)
    lr: LRSpec = field(default_factory=LRSpec)

    @property
    def asked(self) -> bool:
        t = self.target
        return self.target_time is not None or any(v is not None for v in (t.steps, t.epochs, t.metric))


def recommend(model, req: AnswerRequest) -> dict:
    """The plan `scalesim predict` prints for the same model and target (DataError/UsageError on bad input)."""
    from ..plan.predict import predict

    return predict(model, req.target_time, target=req.target, space=req.space, lr=req.lr)


def pick(plan: dict) -> tuple[str, dict]:
    """The recommended configuration: the cheapest one meeting the time budget, else the fastest."""
    if plan["target"]["target_time_s"] is not None and plan["cheapest"] is not None:
        return "cheapest configuration that meets the time budget", plan["cheapest"]
    return "fastest configuration", plan["fastest"]


def measured_configs(model) -> list[tuple[int, int, int]]:
    """(nodes, replicas, local batch) of every configuration the model was fitted on."""
    out = []
    for label in (getattr(model, "data", None) or {}).get("fitted_configs") or []:
        m = _LABEL.search(str(label))
        if m:
            out.append(tuple(int(x) for x in m.groups()))
    return sorted(set(out))


def standing(cfg: dict, measured: list) -> str:
    """Measured, inside the measured ranges, or extrapolated (and in what)."""
    key = (int(cfg["num_nodes"]), int(cfg["num_replicas"]), int(cfg["rank_batch"]))
    if key in measured:
        return "measured: this exact configuration is in the fitting data"
    if cfg.get("extrapolation"):
        return "extrapolated: " + "; ".join(cfg["extrapolation"])
    return "interpolated: not measured itself, but inside the measured ranges of nodes, ranks and local batch"


def _decay(model_lr: dict | None) -> str:
    lr = model_lr or {}
    epochs = lr.get("decay_epochs") or []
    if epochs:
        return f"x{float(lr.get('decay_factor', 0.1)):g} at epochs {', '.join(f'{float(e):g}' for e in epochs)}"
    return "none set: eta stays at its peak after warmup (the plan's time does not depend on a decay schedule)"


def _warmup(cfg: dict, lrs: dict) -> str:
    if cfg["lr"]["peak_lr"] > lrs["ref_lr"] and lrs["warmup_epochs"] > 0:
        return f"linear {lrs['ref_lr']:g} -> {cfg['lr']['peak_lr']:.4g} over {lrs['warmup_epochs']:g} epochs"
    return f"none (the peak is not above the reference eta = {lrs['ref_lr']:g})"


def _values(cfg: dict, lrs: dict, model) -> list[tuple[str, str]]:
    """The recommended values, one per row; the keys are what tests and users grep for."""
    iv = cfg.get("interval") or {}
    rows = [("nodes", cfg["num_nodes"]), ("devices per node", cfg["devices_per_node"]),
            ("devices", cfg["num_replicas"]), ("global batch", cfg["global_batch"]),
            ("per device", f"{cfg['rank_batch']}" + ("" if cfg["accum_steps"] == 1 else
                                                     f" = {cfg['accum_steps']} x {cfg['local_batch']} accumulated")),
            ("peak learning rate eta", f"{cfg['lr']['peak_lr']:.4g}"),
            ("learning-rate schedule", cfg["lr"]["schedule"]),
            ("reference", f"eta_ref = {lrs['ref_lr']:g} at global batch {lrs['ref_batch']} (Goyal et al. 2017 linear rule)"),
            ("warmup", _warmup(cfg, lrs)),
            ("decay", _decay(getattr(model, "lr", None))),
            ("predicted time", format_duration(cfg["time"])),
            ("5-95 % interval", f"{format_duration(iv['lo'])} - {format_duration(iv['hi'])} over {iv['n']} bootstrap fits"
             if iv else "none: the model file has no bootstrap fits"),
            ("step time", f"{cfg['step_time']:.4g} s x {cfg['steps']:,.0f} steps"),
            ("throughput", f"{cfg['throughput']:,.0f} samples/s"),
            ("cost", f"{cfg['device_hours']:,.2f} device-hours")]
    if iv and "p_meet" in iv:
        rows.insert(12, ("meets the budget in", f"{100 * iv['p_meet']:.0f} % of bootstrap fits"))
    return [(k, str(v)) for k, v in rows]


def _keyed_table(rows) -> str:
    """A facts table whose value cells carry data-key (a slug of the row name) for scripts and tests."""
    body = "".join(f'<tr><th>{esc(k)}</th><td data-key="{esc(_slug(k))}">{esc(v)}</td></tr>' for k, v in rows)
    return f'<table class="facts answer-values">{body}</table>'


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _headline(label: str, cfg: dict, plan: dict) -> str:
    t = plan["target"]
    iv = cfg.get("interval")
    budget = f" within {format_duration(t['target_time_s'])}" if t["target_time_s"] is not None else ""
    if t["target_time_s"] is not None and plan["cheapest"] is None:
        lead = f"No configuration reaches {t['label']}{budget}; the fastest is"
    else:
        lead = f"To reach {t['label']}{budget}, use"
    where = (f"{cfg['num_nodes']} node{'s' if cfg['num_nodes'] != 1 else ''} x {cfg['devices_per_node']} "
             f"device{'s' if cfg['devices_per_node'] != 1 else ''} per node")
    span = f" (5-95 %: {format_duration(iv['lo'])} - {format_duration(iv['hi'])})" if iv else " (no interval)"
    caution = (["extrapolated beyond the measurements"] if cfg.get("extrapolation") else []) + \
        (["accuracy at risk (global batch above the noise scale)"] if cfg.get("accuracy_at_risk") else [])
    warn = f" <strong class=\"caution\">Caution: {esc('; '.join(caution))}.</strong>" if caution else ""
    return (f"<p class=\"answer\">{esc(lead)} <strong>{esc(where)}</strong>, global batch "
            f"<strong>{esc(cfg['global_batch'])}</strong>, learning rate <strong>{esc(cfg['lr']['schedule'])}</strong>: "
            f"predicted {esc(format_duration(cfg['time']))}{esc(span)}. <span class=\"note\">({esc(label)}, by "
            f"`scalesim predict`)</span>{warn}</p>")


def rests_on(cfg: dict, plan: dict, model) -> list[str]:
    """What the recommendation rests on: what was measured, and what the data did not pin."""
    meas = measured_configs(model)
    data = getattr(model, "data", None) or {}
    meta = getattr(model, "meta", None) or {}
    out = [f"This configuration is {standing(cfg, meas)}."]
    if meas:
        shown = ", ".join(f"{n}x{r // max(n, 1)} b={b}" for n, r, b in meas[:16]) + (" ..." if len(meas) > 16 else "")
        out.append(f"Measured (fitted): {len(meas)} configurations (nodes x ranks per node, local batch): {shown}"
                   + (f"; {data['held_out_rows']} held out ({data.get('holdout')})" if data.get("held_out_rows") else ""))
    out += [f"Not pinned by the data: {n}" for n in plan.get("rests_on") or []]
    if meta.get("unidentified"):
        out.append(f"Unidentified by the data: {', '.join(meta['unidentified'])} (no measurement could fit them; "
                   "configurations that need them were not searched)")
    out += [f"Plan note: {n}" for n in plan.get("notes") or []]
    if cfg.get("accuracy_at_risk"):
        out.append("Accuracy at risk: this global batch exceeds the noise scale B_noise at a fixed epoch budget.")
    return out


def _plan_text(cfg: dict) -> str:
    from ..plan.text import describe_config

    return "<pre class=\"plan\">" + esc("\n".join(describe_config(cfg, indent=""))) + "</pre>"


def with_target(model, req: AnswerRequest) -> Section:
    from ..plan.spec import lr_settings

    plan = recommend(model, req)
    label, cfg = pick(plan)
    lrs = lr_settings(req.lr, getattr(model, "lr", None))
    rest = "".join(f"<li>{esc(s)}</li>" for s in rests_on(cfg, plan, model))
    html = (_headline(label, cfg, plan) + _keyed_table(_values(cfg, lrs, model))
            + f"<h3>What it rests on</h3><ul class=\"rests\">{rest}</ul>"
            + "<h3>As <code>scalesim predict</code> prints it</h3>" + _plan_text(cfg))
    return Section(ANCHOR, TITLE, [], [], html)


def _measured_sentence(summary, manifests) -> str:
    n_runs = len(manifests)
    nodes = sorted({int(x) for x in summary["num_nodes"]})
    reps = sorted({int(x) for x in summary["num_replicas"]})
    batches = sorted({int(x) for x in summary["local_batch"]})
    best = summary.loc[summary["throughput"].idxmax()]
    eff = _efficiency(summary, best)
    eff_s = f", scaling efficiency {100 * eff:.0f} % of linear" if eff is not None and math.isfinite(eff) else ""
    return (f"Measured {len(summary)} configurations in {n_runs} run{'s' if n_runs != 1 else ''}: "
            f"node count {_span(nodes)}; ranks in all {_span(reps)}; local batch "
            f"{', '.join(map(str, batches))}. Best measured: {best['config']} at {best['throughput']:,.1f} samples/s "
            f"(step time {best['step_time']:.4g} s, global batch {int(best['global_batch'])}{eff_s}).")


def _efficiency(summary, best) -> float | None:
    """Per-rank throughput of `best` relative to the fewest ranks measured at its local batch, across runs
    (a run per node count is common on clusters, so per-run efficiency would always say 100 %)."""
    same = summary[summary["local_batch"] == best["local_batch"]]
    ref = same[same["num_replicas"] == same["num_replicas"].min()]
    if best["num_replicas"] == ref["num_replicas"].iloc[0]:
        return None
    return float((best["throughput"] / best["num_replicas"]) / (ref["throughput"] / ref["num_replicas"]).mean())


def _span(v: list) -> str:
    return str(v[0]) if len(v) == 1 else ", ".join(map(str, v)) if len(v) <= 5 else f"{v[0]}-{v[-1]}"


def summary_only(summary, manifests, model, lead=()) -> Section:
    """No target: one paragraph on what was measured and its best configuration (after `lead`,
    what the report's sweeps found)."""
    parts = list(lead)
    if summary is not None and not summary.empty:
        parts.append(_measured_sentence(summary, manifests))
    elif manifests and not lead:
        parts.append(f"{len(manifests)} run director{'ies' if len(manifests) != 1 else 'y'} given, but no usable "
                     "steps table: nothing measured to summarise yet.")
    if model is not None and getattr(model, "perf", None) is None:
        parts.append("The model was fitted on training curves alone: it predicts steps to the target, not step times.")
    elif model is not None:
        meas = measured_configs(model)
        q = (getattr(model, "quality", None) or {}).get("step_time")
        parts.append(f"The model was fitted on {len(meas) or 'an unrecorded number of'} configurations"
                     + (f" (step-time MAPE {q['mape']:.1f} % over {q.get('n', '?')})"
                        if isinstance(q, dict) and isinstance(q.get("mape"), (int, float)) else "") + ".")
    parts.append("For a recommendation (node count, devices per node, global batch, learning rate), give --model "
                 "and a target, e.g. --target-time 1h --target-epochs 90 --dataset-size 1.28M.")
    return Section(ANCHOR, TITLE, [], [], "<p class=\"answer\">" + esc(" ".join(parts)) + "</p>")


def section(req: AnswerRequest, model, summary, manifests, lead=()) -> Section:
    if req.asked:
        return with_target(model, req)
    return summary_only(summary, manifests, model, lead)
