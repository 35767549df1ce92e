"""`scalesim measure`: a measurement campaign over node counts x per-rank batch sizes.

One horovodrun launch per node count runs scalesim.measure.worker, which measures every
configuration of that count and writes its parts of the run directory (scalesim/schema.py)
atomically as each one finishes. This process never imports TensorFlow: it plans the campaign,
owns the manifest (updated from the worker's event lines), relaunches after a rank dies so a
failed configuration does not abort the others, and prints a summary at the end.
"""
from __future__ import annotations

import datetime as _dt
import socket
import time
from pathlib import Path

from .. import __version__
from ..errors import DataError, UsageError
from ..schema import RunDir, open_run
from ..train import MODELS
from ..train import data as tdata
from ..train import hvdrun
from . import allreduce_bench
from .launcher import launch_hosts, run_launch
from .summary import print_summary

DEFAULT_BATCHES = (32, 64, 128)
DATASET_SHORT = {"fashion-mnist": "fmnist"}


def add_arguments(p) -> None:
    g = p.add_argument_group("campaign")
    g.add_argument("--nodes", type=int, default=4,
                   help="largest node count (Horovod ranks); counts 1, 2, 4, ... up to it (default 4)")
    g.add_argument("--node-counts", help="explicit node counts, e.g. 1,3,8 (overrides --nodes)")
    g.add_argument("--local-batches", help=f"per-rank batch sizes (default {','.join(map(str, DEFAULT_BATCHES))})")
    g.add_argument("--steps", type=int, default=20, help="measured steps per configuration and mode (default 20)")
    g.add_argument("--warmup", type=int, default=3, help="warm-up steps per mode, not recorded (default 3)")
    g.add_argument("--block", type=int, default=5,
                   help="instrumented and production steps alternate in blocks of this many (default 5)")
    g.add_argument("--model", default="resnet20", help="model name (default resnet20)")
    g.add_argument("--width", type=int, help="filters of the model's first stage (default: the model's own; "
                                             "smaller is cheaper, for tests)")
    g.add_argument("--dataset", default="fashion-mnist", help="dataset name (default fashion-mnist)")
    g.add_argument("--data", dest="data_path", metavar="PATH",
                   help="dataset directory or file (default: the dataset's standard location)")
    g.add_argument("--lr", type=float, default=0.1,
                   help="learning rate for the measured steps (default 0.1, Goyal's warmup start)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--noise-beta", type=float, default=0.9, help="EMA factor for gradient-noise smoothing")
    h = p.add_argument_group("placement")
    h.add_argument("--hosts", help="horovodrun host list, e.g. h1:4,h2:4 (default: localhost with N slots)")
    h.add_argument("--threads-per-rank", default="1",
                   help="TensorFlow intra-op threads per rank, N or 'auto' = cores // ranks per host "
                        "(default 1: per-rank compute stays comparable across node counts, and ranks "
                        "sharing cores show up as the contention term of the compute model)")
    a = p.add_argument_group("allreduce microbenchmark")
    a.add_argument("--ar-sizes", help="explicit message sizes, e.g. 4K,1M,64M")
    a.add_argument("--ar-min", default="4K", help="smallest message (default 4K)")
    a.add_argument("--ar-max", default="64M",
                   help="largest message (default 64M; 256M is the nccl-tests-style ceiling but takes "
                        "minutes per size with 8 ranks on 2 cores)")
    a.add_argument("--ar-factor", type=int, default=4, help="size step factor (default 4)")
    a.add_argument("--no-allreduce-bench", action="store_true", help="skip the microbenchmark")
    o = p.add_argument_group("output")
    o.add_argument("--out", help="run directory to create (default data/runs/<timestamp>-<name>)")
    o.add_argument("--name", help="short name in the run id (default <model>-<dataset>)")
    o.add_argument("--resume", metavar="RUN", help="finish the pending/failed configurations of a run "
                                                   "(run id under data/runs/ or a path)")
    o.add_argument("--timeline", action="store_true", help="capture a Horovod Timeline per node count "
                                                           "and parse it into the `timeline` table")
    o.add_argument("--timeout", type=float, default=900.0,
                   help="kill a launch after this many seconds without progress (default 900)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    if args.resume:
        rd = resolve_run(args.resume)
        m = rd.read_manifest()
        if m.get("kind") != "measure":
            raise UsageError(f"{rd.path}: not a measurement run (kind {m.get('kind')!r})")
        _reset_unfinished(rd)
    else:
        config = config_from_args(args)
        rd = create_run(config, args.out, args.name)
    print(f"scalesim measure: run directory {rd.path}", flush=True)
    started, t0 = _dt.datetime.now().astimezone().isoformat(), time.monotonic()
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
def _int_list(text: str, what: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{what}: expected comma-separated integers, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise UsageError(f"{what}: need positive integers, got {text!r}")
    return sorted(set(vals))


def node_counts(nodes: int, explicit: str | None) -> list[int]:
    if explicit:
        return _int_list(explicit, "--node-counts")
    if nodes < 1:
        raise UsageError("--nodes must be >= 1")
    counts, n = [], 1
    while n < nodes:
        counts.append(n)
        n *= 2
    return counts + [nodes]


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


def ar_sizes(args) -> list[int]:
    try:
        if args.ar_sizes:
            return sorted({allreduce_bench.parse_size(s) for s in args.ar_sizes.split(",") if s.strip()})
        return allreduce_bench.geometric_sizes(allreduce_bench.parse_size(args.ar_min),
                                               allreduce_bench.parse_size(args.ar_max), args.ar_factor)
    except ValueError as e:
        raise UsageError(f"allreduce sizes: {e}") from None


def config_from_args(args) -> dict:
    for name in ("steps", "block"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.lr <= 0 or args.timeout <= 0 or not 0 <= args.noise_beta < 1:
        raise UsageError("need --warmup >= 0, --lr > 0, --timeout > 0 and 0 <= --noise-beta < 1")
    counts = node_counts(args.nodes, args.node_counts)
    batches = _int_list(args.local_batches, "--local-batches") if args.local_batches else list(DEFAULT_BATCHES)
    hosts = check_hosts(args.hosts, max(counts))
    threads = str(args.threads_per_rank)
    if threads != "auto" and not (threads.isdigit() and int(threads) >= 1):
        raise UsageError("--threads-per-rank must be 'auto' or a positive integer")
    if args.model not in MODELS:
        raise UsageError(f"unknown model {args.model!r}; choose one of {', '.join(MODELS)}")
    tdata.check_available(args.dataset, args.data_path)
    if args.width is not None and args.width < 1:
        raise UsageError("--width must be >= 1")
    return {
        "model": args.model, "width": args.width, "dataset": args.dataset, "data_path": str(Path(args.data_path).resolve()) if args.data_path else None,
        "node_counts": counts, "local_batches": batches, "steps": args.steps, "warmup": args.warmup,
        "block": args.block, "lr": args.lr, "seed": args.seed, "noise_beta": args.noise_beta,
        "hosts": hosts, "threads_per_rank": int(threads) if threads.isdigit() else threads,
        "allreduce": {"enabled": not args.no_allreduce_bench, "sizes": ar_sizes(args)},
        "timeline": bool(args.timeline), "timeout": args.timeout,
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
def run_campaign(rd: RunDir, progress: bool = True) -> int:
    """Measure every pending configuration; returns the number that failed."""
    from tqdm import tqdm

    m = rd.read_manifest()
    todo = [c for c in m["configs"] if c["status"] != "done"]
    ar_todo = [a for a in m.get("allreduce_benchmarks", []) if a["status"] != "done"]
    bar = tqdm(total=len(todo) + len(ar_todo), unit="config", desc="measure", disable=not progress,
               dynamic_ncols=True)
    try:
        for n in m["config"]["node_counts"]:
            ids = [c["config_id"] for c in todo if c["num_replicas"] == n]
            bench = any(a["num_replicas"] == n for a in ar_todo)
            while ids or bench:
                # Attempts count across resumes too, so no launch log is overwritten.
                attempt = 1 + len(list((rd.path / "logs").glob(f"n{n}-*.log")))
                res = run_launch(rd, n, ids, bench, attempt, bar)
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
