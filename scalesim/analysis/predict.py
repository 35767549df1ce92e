"""`scalesim predict`: which node count, devices per node and global batch reach the training target
within a time budget, by the fitted model (see scalesim.analysis.search for the search itself).

Also home of the pieces `simulate` shares: target/space/LR flags, the plan (cheapest, fastest,
frontier with bootstrap intervals and extrapolation marks) and its text rendering."""
from __future__ import annotations

import argparse
import json
import math
import sys

from ..errors import DataError, UsageError
from ..model.schedule import LRSchedule, describe, peak_lr, validate
from . import search
from .durations import format_duration, parse_count, parse_int_list, positive_duration

DEFAULT_MAX_NODES = 64
MAX_NODES = 65536
# Goyal et al. 2017 matched small-batch ImageNet accuracy up to 8k; without a noise-scale fit we do
# not recommend batches beyond what has been shown to train well.
DEFAULT_MAX_BATCH_NO_NOISE = 8192
DEFAULT_MAX_BATCH_NOISE = 65536


# --- shared flags ------------------------------------------------------------------------------
def add_target_arguments(p: argparse.ArgumentParser, time_required: bool) -> None:
    g = p.add_argument_group("target")
    g.add_argument("--target-time", required=time_required, metavar="DURATION",
                   help="time budget, e.g. 45m, 1h30m, 3600s, 2h")
    ex = g.add_mutually_exclusive_group()
    ex.add_argument("--target-steps", type=float, metavar="S",
                    help="train for S optimizer steps at the reference global batch (--ref-batch)")
    ex.add_argument("--target-epochs", type=float, metavar="E",
                    help="train for E epochs (needs --dataset-size unless the model records it)")
    g.add_argument("--dataset-size", metavar="N", help="samples per epoch, e.g. 1281167 or 1.28M")


def add_space_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search space")
    g.add_argument("--nodes", metavar="LIST", help="node counts to consider, e.g. 1,2,4 or 1-64")
    g.add_argument("--max-nodes", type=int, metavar="N", help=f"consider 1..N nodes (default {DEFAULT_MAX_NODES})")
    g.add_argument("--devices-per-node", metavar="LIST", help="devices (ranks) per node, e.g. 8 or 1,2,4,8")
    g.add_argument("--global-batch", metavar="LIST", help="global batch sizes to consider, e.g. 256,8192")
    g.add_argument("--local-batch", metavar="LIST",
                   help="fixed samples per device per step instead (weak scaling: B = devices x b)")
    g.add_argument("--min-global-batch", type=int, default=16, metavar="B")
    g.add_argument("--max-global-batch", type=int, metavar="B",
                   help=f"default {DEFAULT_MAX_BATCH_NOISE} with a noise-scale fit, else {DEFAULT_MAX_BATCH_NO_NOISE}")
    g.add_argument("--batch-sizes", type=int, default=64, metavar="K",
                   help="number of global batches between min and max, log-spaced (default 64)")
    g.add_argument("--max-local-batch", type=int, metavar="b",
                   help="largest micro-batch that fits in device memory; larger per-device batches use "
                        "gradient accumulation")


def add_lr_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("learning rate (Goyal et al. 2017)")
    g.add_argument("--ref-lr", type=float, metavar="ETA", help="reference learning rate (default model's or 0.1)")
    g.add_argument("--ref-batch", type=int, metavar="B", help="reference global batch (default model's or 256)")
    g.add_argument("--warmup-epochs", type=float, metavar="K", help="linear warmup epochs (default model's or 5)")


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--frontier-rows", type=int, default=8, metavar="N", help="rows of the frontier table")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="FILE", help="model JSON written by `scalesim fit`")
    add_target_arguments(p, time_required=True)
    add_space_arguments(p)
    p.add_argument("--cores-per-host", type=float, metavar="C", help="override the model's cores per host")
    add_lr_arguments(p)
    add_output_arguments(p)


# --- building the inputs -------------------------------------------------------------------------
def load_model(path):
    from .modelfile import load

    try:
        return load(path)
    except AttributeError:  # valid JSON that is not an object
        raise DataError(f"{path}: not a scalesim model file")


def lr_settings(args, lr: dict | None) -> dict:
    lr = lr or {}
    out = {"ref_lr": args.ref_lr if args.ref_lr is not None else float(lr.get("ref_lr", 0.1)),
           "ref_batch": args.ref_batch if args.ref_batch is not None else int(lr.get("ref_batch", 256)),
           "warmup_epochs": args.warmup_epochs if args.warmup_epochs is not None else float(lr.get("warmup_epochs", 5.0))}
    validate(LRSchedule(global_batch=out["ref_batch"], ref_lr=out["ref_lr"], ref_batch=out["ref_batch"],
                        warmup_epochs=out["warmup_epochs"]))
    return out


def build_target(args, stateff: dict | None, ref_batch: int, dataset_size: float | None = None) -> search.Target:
    if args.target_steps is not None:
        if not 0 < args.target_steps < math.inf:
            raise UsageError("--target-steps must be positive")
        return search.Target("samples", args.target_steps * ref_batch, ref_batch,
                             f"{args.target_steps:g} steps at global batch {ref_batch}")
    if args.target_epochs is not None:
        if not 0 < args.target_epochs < math.inf:
            raise UsageError("--target-epochs must be positive")
        n = parse_count(args.dataset_size, "--dataset-size") if args.dataset_size else dataset_size
        if not n:
            raise UsageError("--target-epochs needs --dataset-size (samples per epoch)")
        return search.Target("samples", args.target_epochs * n, ref_batch,
                             f"{args.target_epochs:g} epochs of {n:,.0f} samples")
    if stateff and stateff.get("s_min") and stateff.get("b_noise"):
        what = stateff.get("target") or {}
        desc = ", ".join(f"{k} {v}" for k, v in what.items()) if isinstance(what, dict) else str(what)
        return search.Target("stateff", float(stateff["s_min"]), ref_batch,
                             f"the fitted target{' (' + desc + ')' if desc else ''}: S_min = {float(stateff['s_min']):,.0f} steps")
    raise UsageError("no training target: give --target-steps or --target-epochs (the model has no "
                     "statistical-efficiency fit with s_min and b_noise)")


def build_space(args, *, default_devices: list[int], b_noise: float | None, cores_per_host: float = math.inf,
                threads_per_rank: float = 1.0) -> search.Space:
    if args.nodes and args.max_nodes:
        raise UsageError("give --nodes or --max-nodes, not both")
    if args.max_nodes is not None and not 1 <= args.max_nodes <= MAX_NODES:
        raise UsageError(f"--max-nodes must be between 1 and {MAX_NODES}")
    if not 1 <= args.frontier_rows <= 1000:
        raise UsageError("--frontier-rows must be between 1 and 1000")
    nodes = parse_int_list(args.nodes, "--nodes") if args.nodes else list(range(1, (args.max_nodes or DEFAULT_MAX_NODES) + 1))
    if nodes[-1] > MAX_NODES:
        raise UsageError(f"--nodes: at most {MAX_NODES} nodes")
    devices = parse_int_list(args.devices_per_node, "--devices-per-node") if args.devices_per_node else default_devices
    if args.max_local_batch is not None and args.max_local_batch < 1:
        raise UsageError("--max-local-batch must be at least 1")
    if args.global_batch and args.local_batch:
        raise UsageError("give --global-batch or --local-batch, not both")
    global_b, local_b = (), ()
    if args.local_batch:
        local_b = parse_int_list(args.local_batch, "--local-batch")
    elif args.global_batch:
        global_b = parse_int_list(args.global_batch, "--global-batch")
    else:
        noisy = b_noise is not None and math.isfinite(b_noise)
        hi = args.max_global_batch or (DEFAULT_MAX_BATCH_NOISE if noisy else DEFAULT_MAX_BATCH_NO_NOISE)
        if not 2 <= args.batch_sizes <= 4096:
            raise UsageError("--batch-sizes must be between 2 and 4096")
        global_b = search.geometric_batches(args.min_global_batch, hi, args.batch_sizes)
    return search.Space(nodes, devices, global_b, local_b, args.max_local_batch, cores_per_host, threads_per_rank)


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
        return _config(table, i, interval=ivs[i], ranges=ranges or {}, lr=lr, target_time=target_time)

    b_noise = params.b_noise if params.b_noise is not None and math.isfinite(params.b_noise) else None
    notes = list(notes)
    if b_noise is None and table["global_batch"].max() > DEFAULT_MAX_BATCH_NO_NOISE:
        notes.append(f"batches above {DEFAULT_MAX_BATCH_NO_NOISE} are included but there is no noise-scale fit: "
                     "Goyal et al. 2017 showed the same epochs suffice only up to 8k on ImageNet, so times at "
                     "larger batches are optimistic")
    notes += _edge_notes(table, space, [("cheapest", choice.cheapest), ("fastest", choice.fastest)])
    out = {
        "target": {"kind": target.kind, "label": target.label, "ref_batch": target.ref_batch,
                   "b_noise": b_noise, "target_time_s": target_time},
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
        g = search.coarse_grid(params, space, target)
        out["grid"] = [{"num_nodes": int(g["num_nodes"][i]), "global_batch": int(g["global_batch"][i]),
                        "devices_per_node": int(g["devices_per_node"][i]), "time": float(g["time"][i]),
                        "device_hours": float(g["device_hours"][i]),
                        "meets_target": None if target_time is None else bool(g["time"][i] <= target_time)}
                       for i in range(len(g.get("time", ())))]
    return out


# --- text ------------------------------------------------------------------------------------
def _pct(x) -> str:
    return f"{100 * x:.0f} %"


def _interval_text(cfg) -> str:
    iv = cfg.get("interval")
    if not iv:
        return ""
    s = f" (5-95 %: {format_duration(iv['lo'])} - {format_duration(iv['hi'])}"
    if "p_meet" in iv:
        s += f"; meets the target in {_pct(iv['p_meet'])} of {iv['n']} bootstrap fits"
    return s + ")"


def describe_config(cfg: dict, indent: str = "  ") -> list[str]:
    acc = "no accumulation" if cfg["accum_steps"] == 1 else \
        f"{cfg['accum_steps']} accumulated micro-batches of {cfg['local_batch']}"
    eff = f"scaling efficiency {_pct(cfg['scaling_eff'])} vs 1 device"
    if "baseline_scaling_eff" in cfg:
        eff += f", {_pct(cfg['baseline_scaling_eff'])} vs the baseline"
    lines = [
        f"{cfg['num_nodes']} node{'s' if cfg['num_nodes'] != 1 else ''} x {cfg['devices_per_node']} "
        f"device{'s' if cfg['devices_per_node'] != 1 else ''} = {cfg['num_replicas']} "
        f"device{'s' if cfg['num_replicas'] != 1 else ''}; global batch {cfg['global_batch']} = {cfg['rank_batch']} per device ({acc})",
        f"learning rate: {cfg['lr']['schedule']}",
        f"predicted time {format_duration(cfg['time'])}{_interval_text(cfg)}",
        f"{cfg['steps']:,.0f} steps x {cfg['step_time']:.4g} s; throughput {cfg['throughput']:,.0f} samples/s",
        f"{eff}; statistical efficiency {_pct(cfg['stat_eff'])} vs the reference batch; cost {cfg['device_hours']:,.1f} device-hours",
    ]
    if cfg.get("extrapolation"):
        lines.append("EXTRAPOLATION: " + "; ".join(cfg["extrapolation"]))
    return [indent + s for s in lines]


def config_table(cfgs: list[dict]) -> list[str]:
    has_base = any("baseline_scaling_eff" in c for c in cfgs)
    has_iv = any(c.get("interval") for c in cfgs)
    head = f"  {'nodes x dev':>11} {'devices':>7} {'batch':>7} {'b x acc':>9} {'step s':>8} {'samples/s':>10} " \
           f"{'time':>9}" + (f" {'5-95 %':>19}" if has_iv else "") + f" {'dev-h':>9} {'scal':>5} {'stat':>5}" \
           + (f" {'vs base':>7}" if has_base else "") + "  note"
    lines = [head]
    for c in cfgs:
        iv = c.get("interval")
        ivs = f"{format_duration(iv['lo'])}-{format_duration(iv['hi'])}" if iv else "-"
        notes = (["extrapolated"] if c.get("extrapolation") else []) + \
            (["too slow"] if c.get("meets_target") is False else [])
        lines.append(
            f"  {str(c['num_nodes']) + ' x ' + str(c['devices_per_node']):>11} {c['num_replicas']:>7} "
            f"{c['global_batch']:>7} {str(c['local_batch']) + ' x ' + str(c['accum_steps']):>9} "
            f"{c['step_time']:>8.4g} {c['throughput']:>10,.0f} {format_duration(c['time']):>9}"
            + (f" {ivs:>19}" if has_iv else "")
            + f" {c['device_hours']:>9,.1f} {_pct(c['scaling_eff']):>5} {_pct(c['stat_eff']):>5}"
            + (f" {_pct(c['baseline_scaling_eff']):>7}" if has_base else "") + "  " + ", ".join(notes))
    return lines


def render(p: dict) -> str:
    t = p["target"]
    lines = []
    reach = f"Target: {t['label']}"
    if t["target_time_s"] is not None:
        reach += f", within {format_duration(t['target_time_s'])}"
    lines.append(reach)
    lines.append("  steps scale as S_min (1 + B_noise/B) with B_noise = "
                 f"{t['b_noise']:,.0f} (McCandlish et al. 2018)" if t["b_noise"] else
                 "  no noise-scale fit: samples to target assumed independent of the batch (linear scaling "
                 "rule regime, Goyal et al. 2017)")
    sp = p["space"]
    lines.append(f"Searched {p['searched']:,} configurations: {sp['num_nodes'][0]}-{sp['num_nodes'][1]} nodes x "
                 f"{','.join(map(str, sp['devices_per_node']))} devices/node, global batch "
                 f"{sp['global_batch'][0]}-{sp['global_batch'][1]}"
                 + (f", micro-batch <= {sp['max_local_batch']}" if sp["max_local_batch"] else "")
                 + (f"; intervals from {p['bootstrap_sets']} bootstrap fits" if p["bootstrap_sets"] else
                    "; no bootstrap fits in the model, so no intervals"))
    lines += [f"Note: {n}" for n in p.get("notes", [])]
    lines.append("")
    if t["target_time_s"] is not None:
        if p["cheapest"] is not None:
            lines.append(f"Cheapest configuration that meets {format_duration(t['target_time_s'])}:")
            lines += describe_config(p["cheapest"])
        else:
            lines.append(f"NO configuration meets {format_duration(t['target_time_s'])}: the best achievable time is "
                         f"{format_duration(p['fastest']['time'])} (fastest configuration below).")
        lines.append("")
    lines.append("Fastest configuration:")
    lines += describe_config(p["fastest"])
    if p.get("configs"):
        lines += ["", "All configurations (scal = scaling efficiency vs 1 device, stat = statistical efficiency "
                      f"vs batch {t['ref_batch']:g}):"] + config_table(p["configs"])
    else:
        lines += ["", "Time/cost frontier (no other configuration is both faster and cheaper; scal = scaling "
                      f"efficiency vs 1 device, stat = statistical efficiency vs batch {t['ref_batch']:g}):"]
        lines += config_table(p["frontier"])
    if any(c.get("extrapolation") for c in [p["fastest"], p["cheapest"] or {}, *p["frontier"]]):
        lines.append("  extrapolated = outside the measured ranges of the fitting data; treat with care")
    return "\n".join(lines)


def emit(p: dict, as_json: bool) -> None:
    if as_json:
        json.dump(p, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(p))


# --- predict -------------------------------------------------------------------------------------
def _default_devices(model) -> list[int]:
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
    from .modelfile import perf_from_dict

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
    from .modelfile import check_predictable

    try:
        check_predictable(model, space.num_nodes)
        return space, []
    except DataError:
        if explicit_nodes or 1 not in space.num_nodes:
            raise
        check_predictable(model, [1])
        return space._replace(num_nodes=[1]), ["the model's data identified no inter-host link, so only "
                                               "single-node configurations were searched"]


def run(args) -> int:
    model = load_model(args.model)
    target_time = positive_duration(args.target_time, "--target-time")
    lr = lr_settings(args, model.lr)
    params, boot = model_params(model)
    meta = {**(model.data or {}), **(model.meta or {})}
    target = build_target(args, model.stateff, lr["ref_batch"], meta.get("dataset_size"))
    host = model.host or {}
    if args.cores_per_host is not None and not args.cores_per_host > 0:
        raise UsageError("--cores-per-host must be positive")
    cores = args.cores_per_host or float(host.get("cores_per_host") or math.inf)
    threads = float(host.get("threads_per_rank") or 1.0)
    space = build_space(args, default_devices=_default_devices(model), b_noise=params.b_noise,
                        cores_per_host=cores, threads_per_rank=threads)
    space, notes = predictable_space(model, space, explicit_nodes=bool(args.nodes or args.max_nodes))
    p = plan(params, space, target, target_time=target_time, boot=boot, ranges=model.ranges, lr=lr,
             frontier_rows=args.frontier_rows, notes=notes)
    p["model"] = str(args.model)
    emit(p, args.json)
    return 0
