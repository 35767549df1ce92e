from typing import Annotated, Optional

import typer

from . import options as o

P_CAMPAIGN, P_AR, P_OUT = "campaign", "allreduce microbenchmark (nccl-tests definitions)", "output"


def command(
    devices_per_node: Annotated[Optional[str], typer.Option(
        "--devices-per-node", metavar="LIST", rich_help_panel=o.P_PLACE,
        help="ranks per node, one configuration set each: 1,2,4,8 sweeps 1 to 8 ranks (ranges like 1-4 too); "
             "default 1,2,4 on one node, 1 on emulated nodes")] = None,
    nodes: Annotated[Optional[int], typer.Option(
        "--nodes", metavar="N", rich_help_panel=o.P_PLACE,
        help="nodes (hosts); with --hosts, every configuration spans N of them; without --hosts, N > 1 "
             "emulates N nodes on this machine (root) and measures 1, 2, 4, ... N of them")] = None,
    hosts: o.Hosts = None,
    link: Annotated[Optional[str], typer.Option(
        "--link", metavar="RATE", rich_help_panel=o.P_PLACE,
        help="emulated nodes: rate of every node's link, both directions, e.g. 200mbit, 1gbit (default: unshaped)")] = None,
    cores_per_node: Annotated[Optional[float], typer.Option(
        "--cores-per-node", metavar="X", rich_help_panel=o.P_PLACE,
        help="emulated nodes: CPU share of each node (default: this machine's cores split evenly over N; "
             "never more than exist)")] = None,
    threads_per_rank: Annotated[str, typer.Option(
        "--threads-per-rank", metavar="N|auto", rich_help_panel=o.P_PLACE,
        help="TensorFlow intra-op threads per rank (1: per-rank compute stays comparable across rank counts, "
             "and ranks sharing cores show up as the contention term); auto = cores // ranks on the host")] = "1",
    local_batches: Annotated[str, typer.Option("--local-batches", metavar="LIST", rich_help_panel=P_CAMPAIGN,
                                               help="per-rank batch sizes")] = "32,64,128",
    steps: Annotated[int, typer.Option("--steps", rich_help_panel=P_CAMPAIGN,
                                       help="measured steps per configuration and mode")] = 20,
    warmup: Annotated[int, typer.Option("--warmup", rich_help_panel=P_CAMPAIGN,
                                        help="warm-up steps per mode, not recorded")] = 3,
    block: Annotated[int, typer.Option("--block", rich_help_panel=P_CAMPAIGN,
                                       help="instrumented and production steps alternate in blocks of this many")] = 5,
    arch: Annotated[str, typer.Option("--arch", rich_help_panel=P_CAMPAIGN, help=o.ARCH_HELP)] = "resnet20",
    input_shape: Annotated[Optional[str], typer.Option(
        "--input-shape", metavar="H,W,C", rich_help_panel=P_CAMPAIGN,
        help="image shape of --dataset synthetic (e.g. 32,32,3 for keras:MobileNet; default 28,28,1)")] = None,
    classes: Annotated[Optional[int], typer.Option("--classes", rich_help_panel=P_CAMPAIGN,
                                                   help="classes of --dataset synthetic (default 10)")] = None,
    fp16_allreduce: Annotated[bool, typer.Option(
        "--fp16-allreduce", rich_help_panel=P_CAMPAIGN,
        help="send gradients as float16 in the allreduce (hvd.Compression.fp16): half the bytes")] = False,
    width: Annotated[Optional[int], typer.Option(
        "--width", rich_help_panel=P_CAMPAIGN,
        help="filters of the first stage (default: the architecture's own; smaller is cheaper, for tests)")] = None,
    dataset: Annotated[str, typer.Option("--dataset", rich_help_panel=P_CAMPAIGN)] = "fashion-mnist",
    data: Annotated[Optional[str], typer.Option(
        "--data", metavar="PATH", rich_help_panel=P_CAMPAIGN,
        help="dataset directory or file (default: the dataset's standard location)")] = None,
    lr: Annotated[float, typer.Option("--lr", rich_help_panel=P_CAMPAIGN,
                                      help="learning rate for the measured steps (Goyal's warmup start)")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", rich_help_panel=P_CAMPAIGN)] = 0,
    noise_beta: Annotated[float, typer.Option("--noise-beta", rich_help_panel=P_CAMPAIGN,
                                              help="EMA factor for gradient-noise smoothing")] = 0.9,
    ar_sizes: Annotated[Optional[str], typer.Option("--ar-sizes", metavar="LIST", rich_help_panel=P_AR,
                                                    help="explicit message sizes, e.g. 4KiB,1MiB,64MiB")] = None,
    ar_min: Annotated[str, typer.Option("--ar-min", metavar="SIZE", rich_help_panel=P_AR,
                                        help="smallest message")] = "4KiB",
    ar_max: Annotated[str, typer.Option(
        "--ar-max", metavar="SIZE", rich_help_panel=P_AR,
        help="largest message (256MiB is the nccl-tests-style ceiling but takes minutes per size with 8 "
             "ranks on 2 cores)")] = "64MiB",
    ar_factor: Annotated[int, typer.Option("--ar-factor", rich_help_panel=P_AR, help="size step factor")] = 4,
    no_allreduce_bench: Annotated[bool, typer.Option("--no-allreduce-bench", rich_help_panel=P_AR,
                                                     help="skip the microbenchmark")] = False,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", metavar="DIR", rich_help_panel=P_OUT,
        help="run directory to create (default data/runs/<timestamp>-<name>)")] = None,
    name: Annotated[Optional[str], typer.Option("--name", rich_help_panel=P_OUT,
                                                help="short name in the run id (default <arch>-<dataset>)")] = None,
    resume: Annotated[Optional[str], typer.Option(
        "--resume", metavar="RUN", rich_help_panel=P_OUT,
        help="finish the pending/failed configurations of a run (run id under data/runs/ or a path)")] = None,
    timeline: Annotated[bool, typer.Option(
        "--timeline", rich_help_panel=P_OUT,
        help="capture a Horovod Timeline per rank count and parse it into the `timeline` table")] = False,
    timeout: Annotated[float, typer.Option("--timeout", rich_help_panel=P_OUT,
                                           help="kill a launch after this many seconds without progress")] = 900.0,
    no_progress: Annotated[bool, typer.Option(
        "--no-progress", rich_help_panel=P_OUT,
        help="no progress output (a bar on a terminal, one line per finished configuration in a log)")] = False,
):
    """Measure step times over rank counts x local batch sizes, plus an allreduce microbenchmark.

    Without --hosts every rank runs on this one node: --nodes 1 --devices-per-node LIST."""
    from ..measure.campaign import DEFAULT_DEVICES, MeasureOptions, run
    from ..units import parse_int_list, parse_rate, parse_size

    n = nodes if nodes is not None else (len([h for h in hosts.split(",") if h.strip()]) if hosts else 1)
    opts = MeasureOptions(
        devices_per_node=tuple(parse_int_list(devices_per_node, "--devices-per-node")) if devices_per_node
        else ((1,) if n > 1 and not hosts else DEFAULT_DEVICES), nodes=n,
        local_batches=tuple(parse_int_list(local_batches, "--local-batches")), steps=steps, warmup=warmup,
        block=block, arch=arch, width=width, dataset=dataset, data_path=data, lr=lr, seed=seed,
        noise_beta=noise_beta, hosts=hosts, threads_per_rank=threads_per_rank,
        link=parse_rate(link, "--link") if link else None, cores_per_node=cores_per_node,
        ar_sizes=tuple(parse_size(s.strip(), "--ar-sizes") for s in ar_sizes.split(",") if s.strip())
        if ar_sizes else None,
        ar_min=parse_size(ar_min, "--ar-min"), ar_max=parse_size(ar_max, "--ar-max"), ar_factor=ar_factor,
        no_allreduce_bench=no_allreduce_bench, out=out, name=name, resume=resume, timeline=timeline,
        timeout=timeout, no_progress=no_progress,
        input_shape=o.parse_shape(input_shape, "--input-shape") if input_shape else None, classes=classes,
        fp16_allreduce=fp16_allreduce)
    return run(opts)
