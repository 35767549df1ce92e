"""`scalesim simulate`: the figures of `predict` for a cluster you do not own.

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
Named hardware profiles (scalesim/profiles/*.json) supply defaults, with their sources."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from ..errors import DataError, UsageError
from ..model.perf import ALGORITHMS, CommParams, ComputeParams, PerfParams, Placement, sync_time
from . import predict, search
from .durations import (format_duration, parse_bytes, parse_count, parse_duration, parse_int_list,
                        parse_rate, positive_duration)

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
HARDWARE_KEYS = ("devices_per_node", "intra_bw", "intra_latency", "inter_bw", "inter_latency", "algorithm",
                 "fusion_bytes", "gamma")


def add_arguments(p) -> None:
    p.add_argument("--profile", metavar="NAME", help="hardware profile from scalesim/profiles (see --list-profiles)")
    p.add_argument("--list-profiles", action="store_true", help="list the shipped hardware profiles and exit")
    c = p.add_argument_group("compute per device (one of)")
    c.add_argument("--model", metavar="FILE", help="fitted model JSON: compute (and, unless overridden, network, "
                                                   "noise scale and bootstrap intervals)")
    c.add_argument("--baseline", metavar="TEXT",
                   help='a measured run, e.g. "8 devices took 29h for 90 epochs of 1.28M images"')
    c.add_argument("--baseline-local-batch", type=int, metavar="b",
                   help="samples per device per step in the baseline (default: the first --local-batch)")
    c.add_argument("--device-speed", type=float, metavar="S",
                   help="samples/s of one device computing alone (no communication)")
    n = p.add_argument_group("gradient and network")
    n.add_argument("--grad-bytes", metavar="SIZE", help="bytes allreduced per step, e.g. 102MB")
    n.add_argument("--params", metavar="COUNT", help="or: trainable parameters, e.g. 25.6M")
    n.add_argument("--bytes-per-param", type=float, default=4.0, help="4 for float32 gradients (default)")
    n.add_argument("--intra-bw", metavar="RATE", help="bandwidth between devices of a node, e.g. 20GB/s")
    n.add_argument("--intra-latency", metavar="TIME", help="latency per allreduce step inside a node, e.g. 5us")
    n.add_argument("--inter-bw", metavar="RATE", help="bandwidth of one node's network link, e.g. 50Gbit")
    n.add_argument("--inter-latency", metavar="TIME", help="latency per allreduce step between nodes, e.g. 20us")
    n.add_argument("--algorithm", choices=ALGORITHMS, help="allreduce algorithm")
    n.add_argument("--fusion-bytes", metavar="SIZE",
                   help="tensor-fusion buffer (Horovod default 64MiB); 0 = one call per tensor (needs --num-tensors)")
    n.add_argument("--num-tensors", type=int, metavar="K", help="gradient tensors (allreduce calls without fusion)")
    n.add_argument("--gamma", type=float, metavar="G",
                   help="compute/communication overlap: 1 = none (default), larger = more overlap")
    n.add_argument("--b-noise", type=float, metavar="B",
                   help="gradient noise scale; without it the samples to reach the target do not depend on the batch")
    predict.add_target_arguments(p, time_required=False)
    predict.add_space_arguments(p)
    predict.add_lr_arguments(p)
    predict.add_output_arguments(p)


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
def _pick(flag, parse, prof_hw, key, fallback=None):
    if flag is not None:
        return parse(flag)
    if prof_hw.get(key) is not None:
        return prof_hw[key]
    return fallback


def network(args, hw: dict, model) -> dict:
    """Network settings from flags > profile > model; returns a dict of SI values."""
    mc = model.perf.comm if model is not None else None
    net_given = any(v is not None for v in (args.intra_bw, args.inter_bw, args.algorithm)) or bool(hw)
    if not args.bytes_per_param > 0:
        raise UsageError("--bytes-per-param must be positive")
    if args.grad_bytes and args.params:
        raise UsageError("give --grad-bytes or --params, not both")
    if args.grad_bytes:
        grad = parse_bytes(args.grad_bytes, "--grad-bytes")
    elif args.params:
        grad = parse_count(args.params, "--params") * args.bytes_per_param
    elif mc is not None:
        if net_given and (model.meta or {}).get("grad_bytes_known") is False:
            raise UsageError("the model's gradient size is unknown (its network was fitted in gradients/s); "
                             "give --grad-bytes or --params with a stated network")
        grad = mc.grad_bytes
    else:
        raise UsageError("give the gradient size: --grad-bytes or --params (or --model)")
    if mc is not None and not net_given:
        net = {"intra_bw": mc.bw_intra, "intra_latency": mc.alpha_intra, "inter_bw": mc.bw_inter,
               "inter_latency": mc.alpha_inter, "algorithm": mc.algorithm, "from_model": True}
    else:
        net = {"intra_bw": _pick(args.intra_bw, lambda s: parse_rate(s, "--intra-bw"), hw, "intra_bw"),
               "intra_latency": _pick(args.intra_latency, lambda s: parse_duration(s, "--intra-latency"), hw,
                                      "intra_latency", 0.0),
               "inter_bw": _pick(args.inter_bw, lambda s: parse_rate(s, "--inter-bw"), hw, "inter_bw"),
               "inter_latency": _pick(args.inter_latency, lambda s: parse_duration(s, "--inter-latency"), hw,
                                      "inter_latency", 0.0),
               "algorithm": args.algorithm or hw.get("algorithm") or "ring", "from_model": False}
    fusion = _pick(args.fusion_bytes, lambda s: parse_bytes(s, "--fusion-bytes"), hw, "fusion_bytes")
    if args.num_tensors is not None and args.num_tensors < 1:
        raise UsageError("--num-tensors must be at least 1")
    if fusion is not None and fusion > 0:
        calls = max(1, math.ceil(grad / fusion))
    elif fusion is not None:  # fusion disabled: one allreduce per gradient tensor
        if not args.num_tensors:
            raise UsageError("--fusion-bytes 0 (no fusion) needs --num-tensors")
        calls = args.num_tensors
    else:
        calls = args.num_tensors or 1
    gamma = args.gamma if args.gamma is not None else hw.get("gamma") or (model.perf.gamma if model else 1.0)
    if not gamma >= 1:
        raise UsageError("--gamma must be >= 1 (1 = no overlap)")
    net.update(grad_bytes=grad, fusion_bytes=fusion, calls=calls, gamma=float(gamma))
    return net


def comm_factory(net: dict):
    """devices_per_node -> CommParams, applying the shared-link and tensor-fusion conventions."""
    def comm_for(g: int) -> CommParams:
        missing = [k for k, need in (("--inter-bw", True), ("--intra-bw", g > 1)) if need and
                   not net["inter_bw" if k == "--inter-bw" else "intra_bw"]]
        if missing:
            raise UsageError(f"the network needs {' and '.join(missing)} (or a --profile)")
        share = g if (net["algorithm"] in ("hierarchical", "rhd") and not net["from_model"]) else 1
        k = net["calls"]
        return CommParams(k * net["intra_latency"], net["intra_bw"] or math.inf, k * net["inter_latency"],
                          net["inter_bw"] / share, net["grad_bytes"], net["algorithm"])
    return comm_for


def compute_source(args, model, net, comm_for, devices_per_node: int):
    """ComputeParams and a description of where the per-device speed came from."""
    given = [n for n, v in (("--device-speed", args.device_speed), ("--baseline", args.baseline)) if v is not None]
    if len(given) > 1:
        raise UsageError("give one of --device-speed and --baseline")
    if args.device_speed is not None:
        if not args.device_speed > 0:
            raise UsageError("--device-speed must be positive")
        return ComputeParams(0.0, 1.0 / args.device_speed, 0.0), {"source": "stated", "speed": args.device_speed}
    if args.baseline is not None:
        base = parse_baseline(args.baseline)
        if args.baseline_local_batch is not None and args.baseline_local_batch < 1:
            raise UsageError("--baseline-local-batch must be at least 1")
        b0 = args.baseline_local_batch or (parse_int_list(args.local_batch, "--local-batch")[0] if args.local_batch else None)
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


def run(args) -> int:
    if args.list_profiles:
        for name in profile_names():
            prof = load_profile(name)
            print(f"{name}: {prof.get('title', '')}")
        return 0
    prof = load_profile(args.profile) if args.profile else {}
    hw = prof.get("hardware", {})
    model = predict.load_model(args.model) if args.model else None
    lr = predict.lr_settings(args, model.lr if model else None)
    net = network(args, hw, model)
    comm_for = comm_factory(net)
    default_dpn = int(hw.get("devices_per_node") or 1)
    devices = parse_int_list(args.devices_per_node, "--devices-per-node") if args.devices_per_node else [default_dpn]
    compute, info = compute_source(args, model, net, comm_for, devices[0])

    def perf_for(g: int) -> PerfParams:
        return PerfParams(compute, comm_for(g), net["gamma"])

    if args.b_noise is not None and not 0 < args.b_noise < math.inf:
        raise UsageError("--b-noise must be positive")
    b_noise = args.b_noise if args.b_noise is not None else (
        float(model.stateff["b_noise"]) if model and model.stateff and model.stateff.get("b_noise") else None)
    params = search.ParamSet(perf_for, b_noise)
    boot = []
    if model is not None and info["source"] == "model" and net["from_model"]:
        boot = predict.model_params(model)[1]
    dataset = info["baseline"]["dataset_size"] if info["source"] == "baseline" else None
    if args.target_steps is None and args.target_epochs is None and info["source"] == "baseline":
        args.target_epochs = info["baseline"]["epochs"]
    target = predict.build_target(args, model.stateff if model else None, lr["ref_batch"], dataset)
    target_time = positive_duration(args.target_time, "--target-time") if args.target_time else None
    space = predict.build_space(args, default_devices=devices, b_noise=b_noise)
    notes = []
    if model is not None and net["from_model"]:
        space, notes = predict.predictable_space(model, space, explicit_nodes=bool(args.nodes or args.max_nodes))
    baseline = tuple(info["placement"]) if info["source"] == "baseline" else None
    p = predict.plan(params, space, target, target_time=target_time, boot=boot,
                     ranges=model.ranges if model and info["source"] == "model" else None, lr=lr,
                     baseline=baseline, frontier_rows=args.frontier_rows, notes=notes,
                     list_all=len(space.num_nodes) * len(space.devices_per_node) *
                     max(len(space.local_batches), len(space.global_batches)) <= 40)
    p["cluster"] = {"profile": args.profile, **{k: v for k, v in net.items()}, "devices_per_node": devices}
    p["compute"] = info
    if args.json:
        predict.emit(p, True)
    else:
        print("\n".join(describe_cluster(args.profile, net, info, devices)))
        print(predict.render(p))
    return 0
