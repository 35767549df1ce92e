from . import options as o
from ..model.perf import ALGORITHMS
from .options import Annotated, Optional, typer

P_COMPUTE, P_NET = "compute per device (one of)", "gradient and network"


@o.plan_options()
def command(
    profile: Annotated[Optional[str], typer.Option(
        "--profile", metavar="NAME", help="hardware profile from scalesim/profiles (see --list-profiles)")] = None,
    list_profiles: Annotated[bool, typer.Option("--list-profiles", help="list the shipped profiles and exit")] = False,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", metavar="FILE", rich_help_panel=P_COMPUTE,
        help="fitted model JSON: compute (and, unless overridden, network, noise scale and intervals)")] = None,
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", metavar="TEXT", rich_help_panel=P_COMPUTE,
        help='a measured run, e.g. "8 devices took 29h for 90 epochs of 1.28M images"')] = None,
    baseline_local_batch: Annotated[Optional[int], typer.Option(
        "--baseline-local-batch", metavar="b", rich_help_panel=P_COMPUTE,
        help="samples per device per step in the baseline (default: the first --local-batch)")] = None,
    device_speed: Annotated[Optional[float], typer.Option(
        "--device-speed", metavar="S", rich_help_panel=P_COMPUTE,
        help="samples/s of one device computing alone (no communication)")] = None,
    grad_bytes: Annotated[Optional[str], typer.Option(
        "--grad-bytes", metavar="SIZE", rich_help_panel=P_NET, help="bytes allreduced per step, e.g. 102MB")] = None,
    params: Annotated[Optional[str], typer.Option(
        "--params", metavar="COUNT", rich_help_panel=P_NET, help="or: trainable parameters, e.g. 25.6M")] = None,
    bytes_per_param: Annotated[float, typer.Option(
        "--bytes-per-param", rich_help_panel=P_NET, help="4 for float32 gradients")] = 4.0,
    intra_bw: Annotated[Optional[str], typer.Option(
        "--intra-bw", metavar="RATE", rich_help_panel=P_NET, help="bandwidth between devices of a node, e.g. 20GB/s")] = None,
    intra_latency: Annotated[Optional[str], typer.Option(
        "--intra-latency", metavar="TIME", rich_help_panel=P_NET, help="latency per allreduce step in a node, e.g. 5us")] = None,
    inter_bw: Annotated[Optional[str], typer.Option(
        "--inter-bw", "--link", metavar="RATE", rich_help_panel=P_NET,
        help="bandwidth of one node's network link, e.g. 50Gbit; with --model only this changes (its fitted "
             "overheads, overlap and bootstrap intervals stay)")] = None,
    inter_latency: Annotated[Optional[str], typer.Option(
        "--inter-latency", metavar="TIME", rich_help_panel=P_NET, help="latency per allreduce step between nodes, e.g. 20us")] = None,
    algorithm: Annotated[Optional[str], typer.Option(
        "--algorithm", rich_help_panel=P_NET, help=f"allreduce algorithm: {' | '.join(ALGORITHMS)}")] = None,
    fusion_bytes: Annotated[Optional[str], typer.Option(
        "--fusion-bytes", metavar="SIZE", rich_help_panel=P_NET,
        help="tensor-fusion buffer (Horovod's default 64MiB); 0 = one call per tensor (needs --num-tensors)")] = None,
    num_tensors: Annotated[Optional[int], typer.Option(
        "--num-tensors", metavar="K", rich_help_panel=P_NET, help="gradient tensors (allreduce calls without fusion)")] = None,
    gamma: Annotated[Optional[float], typer.Option(
        "--gamma", metavar="G", rich_help_panel=P_NET,
        help="compute/communication overlap: 1 = none (default), larger = more")] = None,
    b_noise: Annotated[Optional[float], typer.Option(
        "--b-noise", metavar="B", rich_help_panel=P_NET,
        help="gradient noise scale; without it the samples to reach the target do not depend on the batch")] = None,
    frontier_rows: o.FrontierRows = 8,
    json: o.Json = False,
    **plan_args,
):
    """What-if predictions for clusters you do not own (a profile, a baseline or a fitted model)."""
    from ..errors import UsageError
    from ..plan import hardware
    from ..plan.simulate import describe, simulate
    from ..units import parse_bytes, parse_count, parse_duration, parse_rate

    if list_profiles:
        for name in hardware.profile_names():
            print(f"{name}: {hardware.load_profile(name).get('title', '')}")
        return 0
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise UsageError(f"--algorithm must be one of {', '.join(ALGORITHMS)} (got {algorithm!r})")

    def opt(parse, text, flag):
        return parse(text, flag) if text is not None else None

    net = hardware.NetworkSpec(
        grad_bytes=opt(parse_bytes, grad_bytes, "--grad-bytes"), params=opt(parse_count, params, "--params"),
        bytes_per_param=bytes_per_param, intra_bw=opt(parse_rate, intra_bw, "--intra-bw"),
        intra_latency=opt(parse_duration, intra_latency, "--intra-latency"),
        inter_bw=opt(parse_rate, inter_bw, "--inter-bw"),
        inter_latency=opt(parse_duration, inter_latency, "--inter-latency"), algorithm=algorithm,
        fusion_bytes=opt(parse_bytes, fusion_bytes, "--fusion-bytes"), num_tensors=num_tensors, gamma=gamma)
    target_time, target, space, lr = o.plan_specs(plan_args)
    plan = simulate(network=net, compute=hardware.ComputeSpec(device_speed, baseline, baseline_local_batch),
                    model=model, profile=profile, b_noise=b_noise,
                    target_time=target_time, target=target, space=space, lr=lr, frontier_rows=frontier_rows)
    o.emit(plan, json, before=describe(plan))
    return 0
