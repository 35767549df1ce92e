"""The recommendation: evaluate a search space with a fitted model and pick the cheapest configuration
that meets the time budget, the fastest one, and the time/cost frontier, with bootstrap intervals and
extrapolation marks. Returns a JSON-serialisable dict (scalesim.plan.text renders it)."""
from __future__ import annotations

import math

from ..errors import DataError
from ..model.schedule import LRSchedule, describe, peak_lr
from . import search
from .spec import DEFAULT_MAX_BATCH_NO_NOISE


# --- the plan --------------------------------------------------------------------------------
def _config(table, i, *, interval, ranges, lr, target_time) -> dict:
    cfg = search.row(table, i)
    if "baseline_scaling_eff" in table:
        cfg["baseline_scaling_eff"] = float(table["baseline_scaling_eff"][i])
    s = LRSchedule(global_batch=cfg["global_batch"], ref_lr=lr["ref_lr"], ref_batch=lr["ref_batch"],
                   warmup_epochs=lr["warmup_epochs"])
    cfg["lr"] = {"peak_lr": peak_lr(s), "schedule": describe(s)}
    cfg["interval"] = interval
    cfg["extrapolation"] = search.extrapolation(ranges, table, i)
    cfg["meets_target"] = None if target_time is None else bool(cfg["time"] <= target_time)
    return cfg


def _edge_notes(table, space: search.Space, picks) -> list[str]:
    """Warn when a recommendation sits on the boundary of the searched space (the optimum may lie beyond)."""
    if len(space.local_batches):
        return []
    notes = []
    for label, i in picks:
        if i is None:
            continue
        edges = []
        if table["global_batch"][i] == table["global_batch"].min():
            edges.append("the smallest global batch searched (--min-global-batch)")
        if table["global_batch"][i] == table["global_batch"].max():
            edges.append("the largest global batch searched (--max-global-batch)")
        if len(space.num_nodes) > 1 and table["num_nodes"][i] == max(space.num_nodes):
            edges.append("the largest node count searched (--max-nodes)")
        if edges:
            notes.append(f"the {label} configuration is at {' and '.join(edges)}; a wider search may do better")
    return notes


def plan(params: search.ParamSet, space: search.Space, target: search.Target, *, target_time: float | None,
         boot=(), ranges=None, lr: dict, baseline: tuple[int, int] | None = None, frontier_rows: int = 8,
         list_all: bool = False, notes=()) -> dict:
    """Evaluate the space and pick cheapest / fastest / frontier; a JSON-serialisable dict."""
    table = search.evaluate(params, space, target)
    if baseline is not None:
        table["baseline_scaling_eff"] = search.scaling_efficiency(params, space, table, baseline)
    choice = search.choose(table, target_time)
    front = search.thin(choice.frontier, [choice.cheapest, choice.fastest], frontier_rows)
    order = sorted(range(table["time"].size), key=lambda i: (table["num_replicas"][i], table["global_batch"][i])) \
        if list_all else []
    shown = sorted({i for i in [choice.cheapest, choice.fastest, *front, *order] if i is not None})
    ivs = dict(zip(shown, search.intervals(list(boot), space, target, table, shown, target_time)))

    def cfg(i):
        c = _config(table, i, interval=ivs[i], ranges=ranges or {}, lr=lr, target_time=target_time)
        c["accuracy_at_risk"] = bool(risk[i])
        return c

    b_noise = params.b_noise if params.b_noise is not None and math.isfinite(params.b_noise) else None
    notes = list(notes)
    risk = search.at_risk(target, table["global_batch"], b_noise)
    picked_risky = sorted({int(table["global_batch"][i]) for i in [choice.cheapest, choice.fastest, *front]
                           if i is not None and risk[i]})
    if picked_risky:
        notes.append(f"accuracy at risk: global batch {', '.join(map(str, picked_risky))} exceeds the noise scale "
                     f"B_noise = {b_noise:,.0f}; at a fixed epoch budget such batches reach a worse loss (McCandlish "
                     "et al. 2018: samples needed grow as 1 + B/B_noise); give --target-metric for the steps "
                     "they need instead")
    if b_noise is None and table["global_batch"].max() > DEFAULT_MAX_BATCH_NO_NOISE:
        notes.append(f"batches above {DEFAULT_MAX_BATCH_NO_NOISE} are included but there is no noise-scale fit: "
                     "Goyal et al. 2017 showed the same epochs suffice only up to 8k on ImageNet, so times at "
                     "larger batches are optimistic")
    notes += _edge_notes(table, space, [("cheapest", choice.cheapest), ("fastest", choice.fastest)])
    out = {
        "target": {"kind": target.kind, "label": target.label, "ref_batch": target.ref_batch,
                   "b_noise": b_noise, "target_time_s": target_time, "regime": search.regime(target, b_noise)},
        "searched": int(table["time"].size),
        "space": {"num_nodes": [int(min(space.num_nodes)), int(max(space.num_nodes))],
                  "devices_per_node": [int(g) for g in space.devices_per_node],
                  "global_batch": [int(table["global_batch"].min()), int(table["global_batch"].max())],
                  "max_local_batch": space.max_local_batch},
        "feasible": choice.feasible,
        "cheapest": cfg(choice.cheapest) if choice.cheapest is not None else None,
        "fastest": cfg(choice.fastest),
        "frontier": [cfg(i) for i in front],
        "bootstrap_sets": len(boot),
        "notes": notes,
    }
    if baseline is not None:
        out["baseline"] = {"num_nodes": baseline[0], "devices_per_node": baseline[1]}
    if list_all:
        out["configs"] = [cfg(i) for i in order]
    elif len(space.global_batches):
        out["grid"] = _grid(params, space, target, target_time)
    return out


def _grid(params, space, target, target_time) -> list[dict]:
    """The coarse node count x global batch grid the report's time-to-target chart draws."""
    g = search.coarse_grid(params, space, target)
    return [{"num_nodes": int(g["num_nodes"][i]), "global_batch": int(g["global_batch"][i]),
             "devices_per_node": int(g["devices_per_node"][i]), "time": float(g["time"][i]),
             "device_hours": float(g["device_hours"][i]),
             "meets_target": None if target_time is None else bool(g["time"][i] <= target_time)}
            for i in range(len(g.get("time", ())))]



# --- what a fitted model brings -------------------------------------------------------------
def default_devices(model) -> list[int]:
    r = model.ranges or {}
    candidates = [(model.host or {}).get("replicas_per_node")]
    if r.get("replicas_per_node"):
        candidates.append(r["replicas_per_node"][1])
    elif r.get("num_replicas") and r.get("num_nodes"):
        candidates.append(float(r["num_replicas"][1]) / max(1.0, float(r["num_nodes"][1])))
    per_node = max([1] + [int(round(float(c))) for c in candidates if c])
    return sorted({2 ** k for k in range(per_node.bit_length()) if 2 ** k <= per_node} | {per_node})


def model_params(model):
    """The model's point estimate and bootstrap parameter sets as search.ParamSet."""
    from ..modelfile import perf_from_dict

    b_noise = float(model.stateff["b_noise"]) if model.stateff and model.stateff.get("b_noise") else None
    boot = []
    try:
        for b in model.bootstrap:
            perf = perf_from_dict(b) if isinstance(b, dict) and "compute" in b else model.perf
            bn = b.get("b_noise", b_noise) if isinstance(b, dict) else b_noise
            boot.append(search.ParamSet(perf, None if bn is None else float(bn)))
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"malformed bootstrap entry in the model file ({e})")
    return search.ParamSet(model.perf, b_noise), boot


def predictable_space(model, space: search.Space, explicit_nodes: bool):
    """Drop multi-host placements when the fit could not identify the inter-host link and the user did
    not ask for node counts explicitly; otherwise let modelfile.check_predictable refuse."""
    from ..modelfile import check_predictable

    def grid(nodes):
        pairs = [(h, h * g) for h in nodes for g in space.devices_per_node]
        return [h for h, _ in pairs], [n for _, n in pairs]

    try:
        check_predictable(model, *grid(space.num_nodes))
        return space, []
    except DataError:
        if explicit_nodes or 1 not in space.num_nodes:
            raise
        check_predictable(model, *grid([1]))
        return space._replace(num_nodes=[1]), ["the model's data identified no inter-host link, so only "
                                               "single-node configurations were searched"]
