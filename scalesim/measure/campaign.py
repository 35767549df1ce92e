"""`scalesim measure`: a measurement campaign over rank counts (nodes x devices per node) x per-rank
batch sizes.

One horovodrun launch per node count runs scalesim.measure.worker, which measures every
configuration of that count and writes its parts of the run directory (scalesim/schema.py)
atomically as each one finishes. This process never imports TensorFlow: it plans the campaign,
owns the manifest (updated from the worker's event lines), relaunches after a rank dies so a
failed configuration does not abort the others, and prints a summary at the end.
"""
from __future__ import annotations

import datetime as _dt
import math
import socket
import time
from dataclasses import dataclass, fields
from pathlib import Path

from .. import __version__, procs
from ..errors import DataError, UsageError
from ..schema import RunDir, open_run
from ..train import MODELS
from ..train import data as tdata
from ..train import hvdrun
from . import allreduce_bench, emulated
from .launcher import launch_hosts, run_launch
from .summary import print_summary

DEFAULT_BATCHES = (32, 64, 128)
MAX_LOCAL_BATCH = 2 ** 24   # a sanity bound: more samples per rank per step than any dataset here
DEFAULT_DEVICES = (1, 2, 4)
DATASET_SHORT = {"fashion-mnist": "fmnist"}


@dataclass(frozen=True)
class MeasureOptions:
    """What `scalesim measure` was asked, as typed values (scalesim.cli.measure reads the flags once).
    Ranks per configuration = nodes x devices_per_node; without --hosts every rank runs on this node."""
    devices_per_node: tuple = DEFAULT_DEVICES     # ranks per node, one configuration set each
    nodes: int = 1                                # hosts (more than one needs --hosts)
    local_batches: tuple = DEFAULT_BATCHES
    steps: int = 20
    warmup: int = 3
    block: int = 5
    arch: str = "resnet20"
    width: int | None = None
    dataset: str = "fashion-mnist"
    data_path: str | None = None
    lr: float = 0.1
    seed: int = 0
    noise_beta: float = 0.9
    hosts: str | None = None
    threads_per_rank: str = "1"
    link: float | None = None                     # emulated nodes: link rate, bytes/s (None = unshaped)
    cores_per_node: float | None = None           # emulated nodes: CPU share (None = cores split evenly)
    ar_sizes: tuple | None = None                 # bytes; None = geometric ar_min .. ar_max
    ar_min: int = allreduce_bench.DEFAULT_MIN
    ar_max: int = allreduce_bench.DEFAULT_MAX
    ar_factor: int = allreduce_bench.DEFAULT_FACTOR
    no_allreduce_bench: bool = False
    out: str | None = None
    name: str | None = None
    resume: str | None = None
    timeline: bool = False
    timeout: float = 900.0
    no_progress: bool = False
    input_shape: tuple | None = None              # H,W,C of --dataset synthetic (any --arch)
    classes: int | None = None                    # classes of --dataset synthetic
    fp16_allreduce: bool = False                  # hvd.Compression.fp16 on the gradient allreduce

    def __post_init__(self):
        # NaN passes every `x <= 0` test below and is saved as null; refuse it (and inf) here.
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise UsageError(f"--{f.name.replace('_', '-')} must be a finite number (got {v})")


def run(args) -> int:
    try:
        return _run(args)
    except OSError as e:  # a full disk, a read-only run directory: what is done stays done
        where = f"{e.filename}: " if e.filename else ""
        raise DataError(f"writing the run directory failed: {where}{e.strerror or e}; completed "
                        f"configurations are kept, finish with --resume once it is fixed") from None


def _run(args) -> int:
    if args.resume:
        rd = resolve_run(args.resume)
        m = rd.read_manifest()
        if m.get("kind") != "measure":
            raise UsageError(f"{rd.path}: not a measurement run (kind {m.get('kind')!r})")
        lock = procs.RunLock(rd.path).acquire()  # one writer per run directory
        _reset_unfinished(rd)
    else:
        config = config_from_args(args)
        rd = create_run(config, args.out, args.name)
        lock = procs.RunLock(rd.path).acquire()
    try:
        return _campaign(rd, args)
    finally:
        lock.release()


def _campaign(rd: RunDir, args) -> int:
    print(f"scalesim measure: run directory {rd.path}", flush=True)
    started, t0 = _dt.datetime.now().astimezone().isoformat(), time.monotonic()
    if rd.read_manifest()["config"].get("emulated"):
        # Built for this session (a --resume builds a new one) and always torn down after it.
        with emulated.cluster_for(rd) as wrap:
            failures = run_campaign(rd, progress=not args.no_progress, wrap=wrap)
    else:
        failures = run_campaign(rd, progress=not args.no_progress)
    sessions = rd.read_manifest().get("sessions", [])
    rd.update_manifest(sessions=sessions + [{"started": started, "elapsed": round(time.monotonic() - t0, 1),
                                             "resume": bool(args.resume)}])
    print_summary(rd)
    if failures:
        print(f"{failures} configuration(s) failed; finish them with: scalesim measure --resume {rd.path}")
        return 1
    return 0


# planning ---------------------------------------------------------------------------------
def rank_counts(nodes: int, devices_per_node) -> list[int]:
    """Ranks of each configuration set: nodes x each devices-per-node count."""
    if nodes < 1 or not devices_per_node or min(devices_per_node) < 1:
        raise UsageError("--nodes and --devices-per-node must be >= 1")
    return sorted({nodes * d for d in devices_per_node})


def check_hosts(text: str | None, num_ranks: int) -> list[str]:
    """Validate --hosts (format and slots via scalesim.train.hvdrun, plus name resolution)."""
    if not text:
        return []
    hosts = hvdrun.parse_hosts(text, num_ranks)
    for h in hosts:
        try:
            socket.getaddrinfo(h.name, None)
        except OSError:
            raise UsageError(f"--hosts: unknown host {h.name!r}") from None
    return [f"{h.name}:{h.slots}" for h in hosts]


def ar_sizes(opts: MeasureOptions) -> list[int]:
    try:
        if opts.ar_sizes:
            sizes = sorted(set(opts.ar_sizes))
            if sizes[0] < allreduce_bench.FLOAT_BYTES:
                raise ValueError(f"size {sizes[0]} is below one float32 element")
            return sizes
        return allreduce_bench.geometric_sizes(opts.ar_min, opts.ar_max, opts.ar_factor)
    except ValueError as e:
        raise UsageError(f"allreduce sizes: {e}") from None


def config_from_args(args: MeasureOptions) -> dict:
    for name in ("steps", "block"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if not (args.warmup >= 0 and args.lr > 0 and args.timeout > 0 and 0 <= args.noise_beta < 1):
        raise UsageError("need --warmup >= 0, --lr > 0, --timeout > 0 and 0 <= --noise-beta < 1")
    counts = rank_counts(args.nodes, args.devices_per_node)
    em = None
    if args.nodes > 1 and not args.hosts:
        # No --hosts: N emulated nodes of this machine, measured at 1, 2, 4, ... N nodes.
        em = emulated.plan(args.nodes, tuple(args.devices_per_node), args.link, args.cores_per_node)
        counts = [h * em["devices_per_node"] for h in em["node_counts"]]
    elif args.link is not None or args.cores_per_node is not None:
        raise UsageError("--link and --cores-per-node shape emulated nodes: use them with --nodes N > 1 and "
                         "without --hosts")
    batches = sorted(set(args.local_batches))
    if not batches or batches[0] < 1:
        raise UsageError("--local-batches: need positive integers")
    if batches[-1] > MAX_LOCAL_BATCH:
        raise UsageError(f"--local-batches: {batches[-1]} samples per rank per step is beyond any dataset "
                         f"(at most {MAX_LOCAL_BATCH})")
    hosts = emulated.hosts(em) if em else check_hosts(args.hosts, max(counts))
    threads = str(args.threads_per_rank)
    if threads != "auto" and not (threads.isdigit() and int(threads) >= 1):
        raise UsageError("--threads-per-rank must be 'auto' or a positive integer")
    if args.arch not in MODELS:   # keras:<application> | module:function (scalesim.train.models)
        from ..train.models import check_arch

        check_arch(args.arch, light=True)
    if args.input_shape is not None and (len(args.input_shape) != 3 or min(args.input_shape) < 1):
        raise UsageError(f"--input-shape must be H,W,C with positive sizes (got {args.input_shape})")
    if args.classes is not None and args.classes < 2:
        raise UsageError(f"--classes must be at least 2 (got {args.classes})")
    tdata.check_available(args.dataset, args.data_path)
    if args.width is not None and args.width < 1:
        raise UsageError("--width must be >= 1")
    return {
        "model": args.arch, "width": args.width, "dataset": args.dataset, "data_path": str(Path(args.data_path).resolve()) if args.data_path else None,
        # node_counts: ranks per configuration set (the manifest's historical name) = nodes x devices per node
        "node_counts": counts, "placement": {"num_nodes": args.nodes,
                                             "devices_per_node": sorted(set(args.devices_per_node))},
        "local_batches": batches, "steps": args.steps, "warmup": args.warmup,
        "block": args.block, "lr": args.lr, "seed": args.seed, "noise_beta": args.noise_beta,
        "hosts": hosts, "threads_per_rank": int(threads) if threads.isdigit() else threads,
        "allreduce": {"enabled": not args.no_allreduce_bench, "sizes": ar_sizes(args)},
        "timeline": bool(args.timeline), "timeout": args.timeout,
        "input_shape": list(args.input_shape) if args.input_shape else None, "num_classes": args.classes,
        "fp16_allreduce": bool(args.fp16_allreduce),
        **({"emulated": em, "network_interface": emulated.NODE_IFACE} if em else {}),
    }


def config_id(num_replicas: int, local_batch: int) -> str:
    return f"n{num_replicas}-b{local_batch}"


# run directory ----------------------------------------------------------------------------
def resolve_run(ref: str) -> RunDir:
    p = Path(ref)
    if not p.exists() and not p.is_absolute():
        p = Path("data/runs") / ref
    if not p.exists():
        raise UsageError(f"--resume: no run directory {ref!r} (looked in ., data/runs/)")
    return open_run(p)


def create_run(config: dict, out: str | None, name: str | None) -> RunDir:
    short = name or f"{config['model']}-{DATASET_SHORT.get(config['dataset'], config['dataset'])}"
    run_id = f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{short}"
    rd = RunDir(Path(out) if out else Path("data/runs") / run_id)
    if rd.exists():
        raise UsageError(f"{rd.path} is already a run directory; use --resume {rd.path}")
    cores = hvdrun.usable_cores()
    configs = [{"config_id": config_id(n, b), "num_nodes": hvdrun.num_hosts_used(launch_hosts(config, n), n),
                "num_replicas": n, "local_batch": b, "global_batch": n * b, "status": "pending",
                "error": None} for n in config["node_counts"] for b in config["local_batches"]]
    ar = [{"num_replicas": n, "status": "pending", "error": None} for n in config["node_counts"]]
    rd.write_manifest({
        "run_id": rd.run_id, "kind": "measure", "created": _dt.datetime.now().astimezone().isoformat(),
        "config": config,
        # Replaced by what the ranks report (hostname, ranks, cores of every host they ran on).
        "hosts": [{"hostname": socket.gethostname(), "ranks": max(config["node_counts"]), "cores": cores}],
        "cores_per_host": cores, "threads_per_rank": config["threads_per_rank"],
        "versions": {"scalesim": __version__},  # completed by the ranks (TF, Keras, Horovod, git commit)
        "model": None, "configs": configs, "allreduce_benchmarks": ar if config["allreduce"]["enabled"] else [],
        "noise_nonfinite_skipped": 0,
    })
    return rd


def _reset_unfinished(rd: RunDir) -> None:
    m = rd.read_manifest()
    for c in m["configs"] + m.get("allreduce_benchmarks", []):
        if c["status"] != "done":
            c["status"] = "pending"
    rd.write_manifest(m)


def _fail_all(rd: RunDir, error: str) -> None:
    m = rd.read_manifest()
    for c in m["configs"] + m.get("allreduce_benchmarks", []):
        if c["status"] != "done":
            c.update(status="failed", error=error)
    rd.write_manifest(m)


# orchestration ----------------------------------------------------------------------------
def run_campaign(rd: RunDir, progress: bool = True, wrap=None) -> int:
    """Measure every pending configuration; returns the number that failed. wrap: how a launch's
    command is started (emulated nodes: on h1)."""
    from ..progress import progress as progress_bar

    m = rd.read_manifest()
    todo = [c for c in m["configs"] if c["status"] != "done"]
    ar_todo = [a for a in m.get("allreduce_benchmarks", []) if a["status"] != "done"]
    bar = progress_bar(len(todo) + len(ar_todo), "measure", enabled=progress)
    try:
        for n in m["config"]["node_counts"]:
            ids = [c["config_id"] for c in todo if c["num_replicas"] == n]
            bench = any(a["num_replicas"] == n for a in ar_todo)
            while ids or bench:
                # Attempts count across resumes too, so no launch log is overwritten.
                attempt = 1 + len(list((rd.path / "logs").glob(f"n{n}-*.log")))
                res = run_launch(rd, n, ids, bench, attempt, bar, wrap=wrap)
                ids = [i for i in ids if i not in res.finished]
                bench = bench and not res.bench_finished
                if res.fatal:
                    _fail_all(rd, res.fatal)
                    raise DataError(res.fatal)
                if res.ok or not res.progressed:
                    # Nothing advanced: give up on this node count rather than loop forever.
                    if ids or bench:
                        res.fail_remaining(rd, n, ids, bench, bar)
                    break
    finally:
        bar.close()
    m = rd.read_manifest()
    return sum(c["status"] == "failed" for c in m["configs"] + m.get("allreduce_benchmarks", []))
