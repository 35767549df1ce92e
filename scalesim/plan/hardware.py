"""A cluster you do not own, for `simulate`: hardware profiles, the network (flags > profile > model)
as CommParams, and the per-device compute speed (stated, fitted, or calibrated on a published baseline).

Compute per device comes from a fitted model (--model), a stated per-device speed (--device-speed),
or a published baseline (--baseline "8 devices took 29h for 90 epochs of 1.28M images"): the
per-device compute time is solved so that the step-time model reproduces the baseline exactly,
allreduce included. The network is alpha-beta (scalesim.model.perf) with these conventions:
  --inter-bw is the bandwidth of ONE node's network link. A flat ring crosses each node boundary
  once, so it gets the full link; hierarchical (per-shard rings across nodes) and recursive
  halving-doubling (every rank of a node exchanges across the link at once) share it between the
  node's devices, so they get inter_bw / devices_per_node per rank.
  Tensor fusion: a gradient of M bytes sent in k = ceil(M / fusion_bytes) allreduce calls costs k
  times the latency and the same bandwidth time, i.e. alpha -> k * alpha (exact for the linear
  alpha-beta costs of ring, hierarchical and rhd).
Named hardware profiles (scalesim/profiles/*.json) supply defaults, with their sources.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, UsageError
from ..model.perf import CommParams, ComputeParams, Placement, sync_time
from ..units import format_duration, parse_count, positive_duration

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
HARDWARE_KEYS = ("devices_per_node", "intra_bw", "intra_latency", "inter_bw", "inter_latency", "algorithm",
                 "fusion_bytes", "gamma")


@dataclass(frozen=True)
class NetworkSpec:
    """The gradient and the network as given (SI values; None = from the profile or the model)."""
    grad_bytes: float | None = None
    params: float | None = None          # or trainable parameters x bytes_per_param
    bytes_per_param: float = 4.0
    intra_bw: float | None = None        # B/s between devices of a node
    intra_latency: float | None = None   # s per allreduce step inside a node
    inter_bw: float | None = None        # B/s of ONE node's network link
    inter_latency: float | None = None
    algorithm: str | None = None
    fusion_bytes: float | None = None    # tensor-fusion buffer; 0 = one call per tensor
    num_tensors: int | None = None
    gamma: float | None = None           # compute/communication overlap (1 = none)


@dataclass(frozen=True)
class ComputeSpec:
    """Where the per-device speed comes from: at most one of device_speed and baseline (else the model)."""
    device_speed: float | None = None    # samples/s of one device computing alone
    baseline: str | None = None          # "8 devices took 29h for 90 epochs of 1.28M images"
    baseline_local_batch: int | None = None


# --- profiles --------------------------------------------------------------------------------------
def profile_names() -> list[str]:
    return sorted(f.stem for f in PROFILE_DIR.glob("*.json"))


def load_profile(name: str) -> dict:
    path = PROFILE_DIR / f"{name}.json"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not path.is_file():
        raise UsageError(f"unknown profile {name!r}; available: {', '.join(profile_names()) or 'none'}")
    try:
        prof = json.loads(path.read_text())
        hw = prof["hardware"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{path}: malformed profile ({e})")
    unknown = set(hw) - set(HARDWARE_KEYS)
    if unknown:
        raise DataError(f"{path}: unknown hardware keys {sorted(unknown)}")
    return prof


# --- baseline --------------------------------------------------------------------------------------
_BASELINE_RE = re.compile(
    r"\s*(?P<devices>\d+)\s+(?:devices?|gpus?|ranks?|workers?|accelerators?)\s+took\s+(?P<time>.+?)\s+"
    r"for\s+(?P<epochs>\d+(?:\.\d*)?)\s+epochs?\s+of\s+(?P<size>[\d.]+(?:e\d+)?\s*[kKmMgG]?)\s*"
    r"(?:images|samples|examples)?\s*", re.IGNORECASE)


def parse_baseline(text: str) -> dict:
    """'8 devices took 29h for 90 epochs of 1.28M images' -> devices, seconds, epochs, dataset_size."""
    m = _BASELINE_RE.fullmatch(text or "")
    if not m:
        raise UsageError(f"cannot read --baseline {text!r}; write e.g. \"8 devices took 29h for 90 epochs of "
                         f"1.28M images\"")
    out = {"devices": int(m.group("devices")), "time": positive_duration(m.group("time"), "baseline time"),
           "epochs": float(m.group("epochs")), "dataset_size": parse_count(m.group("size"), "baseline dataset size")}
    if out["devices"] < 1 or out["epochs"] <= 0:
        raise UsageError(f"--baseline {text!r}: need at least one device and a positive number of epochs")
    return out


def calibrate(baseline: dict, local_batch: int, comm_for, gamma: float, devices_per_node: int) -> dict:
    """Per-device compute time per sample so that the model reproduces the baseline's step time."""
    d = baseline["devices"]
    g = min(d, devices_per_node)
    if d % g:
        raise UsageError(f"baseline of {d} devices does not fill nodes of {devices_per_node} devices")
    placement = Placement(d // g, g)
    throughput = baseline["epochs"] * baseline["dataset_size"] / baseline["time"]
    t_step = d * local_batch / throughput
    t_sync = float(sync_time(comm_for(g), placement))
    if t_sync >= t_step:
        raise UsageError(f"the baseline's step ({t_step:.3g} s) is shorter than its own allreduce by this network "
                         f"model ({t_sync:.3g} s): check the bandwidth, gradient size and --gamma")
    t_compute = (t_step ** gamma - t_sync ** gamma) ** (1.0 / gamma)
    return {"beta_c": t_compute / local_batch, "placement": (d // g, g), "step_time": t_step,
            "sync_time": t_sync, "compute_time": t_compute, "throughput": throughput}


# --- assembling the cluster ----------------------------------------------------------------------------
def _pick(given, prof_hw, key, fallback=None):
    if given is not None:
        return given
    if prof_hw.get(key) is not None:
        return prof_hw[key]
    return fallback


def _grad_bytes(spec: NetworkSpec, model, net_given: bool) -> float:
    mc = model.perf.comm if model is not None else None
    if not spec.bytes_per_param > 0:
        raise UsageError("--bytes-per-param must be positive")
    if spec.grad_bytes is not None and spec.params is not None:
        raise UsageError("give --grad-bytes or --params, not both")
    if spec.grad_bytes is not None:
        return spec.grad_bytes
    if spec.params is not None:
        return spec.params * spec.bytes_per_param
    if mc is not None:
        if net_given and (model.meta or {}).get("grad_bytes_known") is False:
            raise UsageError("the model's gradient size is unknown (its network was fitted in gradients/s); "
                             "give --grad-bytes or --params with a stated network")
        return mc.grad_bytes
    raise UsageError("give the gradient size: --grad-bytes or --params (or --model)")


def _calls(spec: NetworkSpec, grad: float, fusion) -> int:
    if spec.num_tensors is not None and spec.num_tensors < 1:
        raise UsageError("--num-tensors must be at least 1")
    if fusion is not None and fusion > 0:
        return max(1, math.ceil(grad / fusion))
    if fusion is not None:  # fusion disabled: one allreduce per gradient tensor
        if not spec.num_tensors:
            raise UsageError("--fusion-bytes 0 (no fusion) needs --num-tensors")
        return spec.num_tensors
    return spec.num_tensors or 1


def network(spec: NetworkSpec, hw: dict, model) -> dict:
    """Network settings from flags > profile > model; returns a dict of SI values."""
    mc = model.perf.comm if model is not None else None
    net_given = any(v is not None for v in (spec.intra_bw, spec.inter_bw, spec.algorithm)) or bool(hw)
    grad = _grad_bytes(spec, model, net_given)
    if mc is not None and not net_given:
        net = {"intra_bw": mc.bw_intra, "intra_latency": mc.alpha_intra, "inter_bw": mc.bw_inter,
               "inter_latency": mc.alpha_inter, "algorithm": mc.algorithm, "from_model": True}
    else:
        net = {"intra_bw": _pick(spec.intra_bw, hw, "intra_bw"),
               "intra_latency": _pick(spec.intra_latency, hw, "intra_latency", 0.0),
               "inter_bw": _pick(spec.inter_bw, hw, "inter_bw"),
               "inter_latency": _pick(spec.inter_latency, hw, "inter_latency", 0.0),
               "algorithm": spec.algorithm or hw.get("algorithm") or "ring", "from_model": False}
    fusion = _pick(spec.fusion_bytes, hw, "fusion_bytes")
    gamma = spec.gamma if spec.gamma is not None else hw.get("gamma") or (model.perf.gamma if model else 1.0)
    if not gamma >= 1:
        raise UsageError("--gamma must be >= 1 (1 = no overlap)")
    net.update(grad_bytes=grad, fusion_bytes=fusion, calls=_calls(spec, grad, fusion), gamma=float(gamma))
    return net


def comm_factory(net: dict, base: CommParams | None = None):
    """devices_per_node -> CommParams, applying the shared-link and tensor-fusion conventions. base: the
    fitted model's CommParams when the network comes from it; its per-step overheads, pair sharing and
    jitter are kept (only latency, bandwidth and algorithm come from `net`)."""
    def comm_for(g: int) -> CommParams:
        missing = [flag for flag, key, need in (("--inter-bw", "inter_bw", True), ("--intra-bw", "intra_bw", g > 1))
                   if need and not net[key]]
        if missing:
            raise UsageError(f"the network needs {' and '.join(missing)} (or a --profile)")
        share = g if (net["algorithm"] in ("hierarchical", "rhd") and not net["from_model"]) else 1
        k = net["calls"]
        comm = CommParams(k * net["intra_latency"], net["intra_bw"] or math.inf, k * net["inter_latency"],
                          net["inter_bw"] / share, net["grad_bytes"], net["algorithm"])
        if base is not None and net["from_model"]:
            comm = base._replace(**{f: getattr(comm, f) for f in ("alpha_intra", "bw_intra", "alpha_inter",
                                                                   "bw_inter", "grad_bytes", "algorithm")})
        return comm
    return comm_for


def compute_source(spec: ComputeSpec, model, net, comm_for, devices_per_node: int, local_batch=None):
    """ComputeParams and a description of where the per-device speed came from."""
    if spec.device_speed is not None and spec.baseline is not None:
        raise UsageError("give one of --device-speed and --baseline")
    if spec.device_speed is not None:
        if not spec.device_speed > 0:
            raise UsageError("--device-speed must be positive")
        return ComputeParams(0.0, 1.0 / spec.device_speed, 0.0), {"source": "stated", "speed": spec.device_speed}
    if spec.baseline is not None:
        base = parse_baseline(spec.baseline)
        if spec.baseline_local_batch is not None and spec.baseline_local_batch < 1:
            raise UsageError("--baseline-local-batch must be at least 1")
        b0 = spec.baseline_local_batch or (local_batch[0] if local_batch else None)
        if not b0:
            raise UsageError("--baseline needs --baseline-local-batch (samples per device per step)")
        cal = calibrate(base, b0, comm_for, net["gamma"], devices_per_node)
        info = {"source": "baseline", "baseline": base, "local_batch": b0, "speed": 1.0 / cal["beta_c"],
                **{k: cal[k] for k in ("placement", "step_time", "sync_time", "compute_time", "throughput")}}
        return ComputeParams(0.0, cal["beta_c"], 0.0), info
    if model is not None:
        return model.perf.compute, {"source": "model", "speed": 1.0 / model.perf.compute.beta_c
                                    if model.perf.compute.beta_c > 0 else math.inf}
    raise UsageError("give the compute speed: --device-speed, --baseline or --model")


def describe_cluster(name, net, info, devices) -> list[str]:
    def bw(x):
        return "-" if not x or not math.isfinite(x) else f"{x / 1e9:.3g} GB/s ({8 * x / 1e9:.3g} Gbit/s)"
    lines = [f"Simulated cluster{' (profile ' + name + ')' if name else ''}: {','.join(map(str, devices))} devices/node; "
             f"{net['algorithm']} allreduce" + (" (network from the model fit)" if net["from_model"] else ""),
             f"  intra-node {bw(net['intra_bw'])}, {net['intra_latency'] * 1e6:.3g} us; "
             f"inter-node {bw(net['inter_bw'])} per node, {net['inter_latency'] * 1e6:.3g} us",
             f"  gradient {net['grad_bytes'] / 1e6:,.1f} MB in {net['calls']} allreduce call(s) per step"
             + (f" (fusion buffer {net['fusion_bytes'] / 2 ** 20:.3g} MiB)" if net["fusion_bytes"] else "")
             + f"; overlap gamma {net['gamma']:g}" + (" (none)" if net["gamma"] == 1 else "")]
    if info["source"] == "baseline":
        b = info["baseline"]
        lines.append(f"Compute: {info['speed']:,.1f} samples/s per device at local batch {info['local_batch']}, "
                     f"calibrated on the baseline ({b['devices']} devices, {format_duration(b['time'])} for "
                     f"{b['epochs']:g} epochs of {b['dataset_size']:,.0f}: step {info['step_time']:.4g} s = compute "
                     f"{info['compute_time']:.4g} s + allreduce {info['sync_time']:.4g} s)")
    else:
        lines.append(f"Compute: {info['speed']:,.1f} samples/s per device ({info['source']})")
    return lines
