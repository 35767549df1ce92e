"""What-if on a fitted model: replace one network input (e.g. the inter-node link rate) and keep
everything else the fit found - per-step overheads, pair sharing, jitter, overlap gamma, compute - in
the point estimate AND in every bootstrap replicate, so intervals survive the change. Pure: no I/O.

Used by `simulate --model M --link 1gbit` and by experiments/multinode (fit at one link rate,
predict another, measure there)."""
from __future__ import annotations

from ..modelfile import FittedModel, perf_from_dict, perf_to_dict
from ..model.perf import PerfParams

# simulate's network inputs -> the CommParams field they replace
FIELDS = {"inter_bw": "bw_inter", "inter_latency": "alpha_inter", "intra_bw": "bw_intra",
          "intra_latency": "alpha_intra", "algorithm": "algorithm"}


def _apply(p: PerfParams, comm: dict, gamma: float | None) -> PerfParams:
    return PerfParams(p.compute, p.comm._replace(**comm), p.gamma if gamma is None else gamma)


def override(model: FittedModel, gamma: float | None = None, **given) -> FittedModel:
    """model with the given network inputs (simulate's names: inter_bw, inter_latency, intra_bw,
    intra_latency, algorithm; SI units) replaced; None values are ignored."""
    comm = {FIELDS[k]: v for k, v in given.items() if v is not None}
    if not comm and gamma is None:
        return model
    boot = [perf_to_dict(_apply(perf_from_dict(b) if isinstance(b, dict) else b, comm, gamma))
            for b in model.bootstrap]
    replaced = sorted(comm) + (["gamma"] if gamma is not None else [])
    meta = dict(model.meta or {})
    meta["what_if"] = {**comm, **({"gamma": gamma} if gamma is not None else {})}
    # A replaced parameter is no longer unknown, nor pinned, nor an interval of the fit.
    meta["unidentified"] = [k for k in meta.get("unidentified", []) if k not in replaced]
    ivs = {k: v for k, v in (model.intervals or {}).items() if k not in replaced}
    return model._replace(perf=_apply(model.perf, comm, gamma), bootstrap=boot, intervals=ivs, meta=meta)


def unpinned_assumptions(model: FittedModel, num_nodes, num_replicas) -> list[str]:
    """The parameters a prediction at these placements rests on that the data did not pin down:
    pinned to an assumed value (fit notes), or outside what was measured. One line each."""
    import numpy as np

    meta = model.meta or {}
    nn, nr = np.asarray(num_nodes, float), np.asarray(num_replicas, float)
    # intra: some placement has two or more ranks on a host (one host with n > 1 is such a placement)
    multi, intra = bool((nn > 1).any()), bool(((nr / np.maximum(nn, 1)) > 1).any())
    used = {"alpha_c", "beta_c", "kappa", "colocation", "cv", "gamma"}
    if multi:
        used |= {"overhead_inter", "alpha_inter", "bw_inter", "pair_sharing", "jitter"}
    if intra:
        used |= {"overhead_intra", "alpha_intra", "bw_intra", "jitter"}
    what_if = meta.get("what_if") or {}
    out = []
    for note in meta.get("notes", []):
        name = note.split(" ", 1)[0].rstrip(",")
        if name in used and name not in what_if:
            out.append(note)
    for k, v in what_if.items():
        out.append(f"{k} = {v:g}: given (what-if), not measured")
    r = model.ranges or {}
    for col, vals in (("num_nodes", nn), ("num_replicas", nr)):
        if col in r and vals.size and vals.max() > r[col][1]:
            out.append(f"{col} up to {vals.max():g}, measured only up to {r[col][1]:g}: extrapolated")
    return out


def rests_on(model, p: dict) -> list[str]:
    """What the shown configurations rest on that the model's data did not pin."""
    shown = [c for c in [p.get("cheapest"), p.get("fastest"), *p.get("frontier", []), *p.get("configs", [])] if c]
    return unpinned_assumptions(model, [c["num_nodes"] for c in shown], [c["num_replicas"] for c in shown])
