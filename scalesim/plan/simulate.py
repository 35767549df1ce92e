"""`simulate`: the figures of `predict` for a cluster you do not own (scalesim.plan.hardware builds the
cluster). The Python API behind `scalesim simulate`."""
from __future__ import annotations

import dataclasses
import math

from ..errors import UsageError
from ..model.perf import PerfParams
from . import hardware, recommend, search
from .whatif import rests_on
from ..modelfile import as_model
from .spec import LRSpec, SpaceSpec, TargetSpec, build_space, build_target, lr_settings

LIST_ALL_LIMIT = 40  # spaces this small are printed in full


def _b_noise(given: float | None, model) -> float | None:
    if given is not None and not 0 < given < math.inf:
        raise UsageError("--b-noise must be positive")
    if given is not None:
        return given
    return float(model.stateff["b_noise"]) if model and model.stateff and model.stateff.get("b_noise") else None


def simulate(*, network: hardware.NetworkSpec = hardware.NetworkSpec(),
             compute: hardware.ComputeSpec = hardware.ComputeSpec(), model=None, profile: str | None = None,
             b_noise: float | None = None, target_time: float | None = None, target: TargetSpec = TargetSpec(),
             space: SpaceSpec = SpaceSpec(), lr: LRSpec = LRSpec(), frontier_rows: int = 8) -> dict:
    prof = hardware.load_profile(profile) if profile else {}
    hw = prof.get("hardware", {})
    model = as_model(model) if model is not None else None
    stateff_only = None
    if model is not None and model.perf is None:
        # fitted on training curves alone: its S(B) is used, the hardware comes from the other options
        stateff_only, model = model, None
    if model is not None and model.perf is not None and not hw:
        # One input changed (e.g. --link 1gbit): the model with just that replaced, in its point estimate
        # and every bootstrap replicate; its fitted overheads, gamma and compute stay.
        model, network = _what_if(model, network)
    lrs = lr_settings(lr, model.lr if model else None)
    net = hardware.network(network, hw, model)
    comm_for = hardware.comm_factory(net, model.perf.comm if model is not None and model.perf is not None else None)
    devices = list(space.devices_per_node or [int(hw.get("devices_per_node") or 1)])
    comp, info = hardware.compute_source(compute, model, net, comm_for, devices[0], space.local_batch)

    def perf_for(g: int) -> PerfParams:
        return PerfParams(comp, comm_for(g), net["gamma"])

    bn = _b_noise(b_noise, model or stateff_only)
    params = search.ParamSet(perf_for, bn)
    from_fit = model is not None and info["source"] == "model" and net["from_model"]
    boot = recommend.model_params(model)[1] if from_fit else []
    dataset = None
    if info["source"] == "baseline":
        dataset = info["baseline"]["dataset_size"]
        if target.steps is None and target.epochs is None and target.metric is None:  # the baseline's own epochs
            target = dataclasses.replace(target, epochs=info["baseline"]["epochs"])
    tgt = build_target(target, (model or stateff_only).stateff if (model or stateff_only) else None,
                       lrs["ref_batch"], dataset)
    host = (model.host or {}) if model is not None and info["source"] == "model" else {}
    # Compute from the fit runs on the fit's hosts: their cores and threads per rank (as predict does),
    # so a rank sharing a fractional core (emulated nodes) keeps its measured contention.
    sp = build_space(space, default_devices=devices, b_noise=bn,
                     cores_per_host=float(host.get("cores_per_host") or math.inf),
                     threads_per_rank=float(host.get("threads_per_rank") or 1.0))
    notes = []
    if model is not None and net["from_model"]:
        sp, notes = recommend.predictable_space(model, sp, explicit_nodes=bool(space.nodes or space.max_nodes))
    size = len(sp.num_nodes) * len(sp.devices_per_node) * max(len(sp.local_batches), len(sp.global_batches))
    p = recommend.plan(params, sp, tgt, target_time=target_time, boot=boot,
                       ranges=model.ranges if model and info["source"] == "model" else None, lr=lrs,
                       baseline=tuple(info["placement"]) if info["source"] == "baseline" else None,
                       frontier_rows=frontier_rows, notes=notes, list_all=size <= LIST_ALL_LIMIT)
    p["cluster"] = {"profile": profile, **net, "devices_per_node": devices}
    p["compute"] = info
    if model is not None and model.perf is not None and info["source"] == "model":
        p["rests_on"] = rests_on(model, p)
    return p


def _what_if(model, network: hardware.NetworkSpec):
    from . import whatif

    given = {"inter_bw": network.inter_bw, "inter_latency": network.inter_latency, "intra_bw": network.intra_bw,
             "intra_latency": network.intra_latency, "algorithm": network.algorithm}
    if all(v is None for v in given.values()) and network.gamma is None:
        return model, network
    model = whatif.override(model, gamma=network.gamma, **given)
    return model, dataclasses.replace(network, inter_bw=None, inter_latency=None, intra_bw=None,
                                      intra_latency=None, algorithm=None, gamma=None)


def describe(p: dict) -> str:
    """The cluster lines printed above the plan."""
    c = p["cluster"]
    net = {k: v for k, v in c.items() if k not in ("profile", "devices_per_node")}
    return "\n".join(hardware.describe_cluster(c["profile"], net, p["compute"], c["devices_per_node"]))
