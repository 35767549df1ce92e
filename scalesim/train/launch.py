"""`scalesim train`: launch horovodrun with one scalesim.train.worker per rank, draw rank 0's
progress, and leave a run directory (manifest + one `epochs` part per finished epoch).
scalesim.cli.train reads the flags once into a TrainConfig (cfg.nodes there is the rank count,
nodes x devices per node: the worker's own vocabulary) and calls run()."""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import UsageError
from ..schema import RunDir
from . import hvdrun, progress
from .data import check_available
from .config import TrainConfig, to_argv
from .worker import MODULE, base_manifest, mark_failed

DEFAULT_RUNS = Path("data/runs")


def default_out(cfg) -> Path:
    arch = "".join(c if c.isalnum() or c in "-_." else "-" for c in cfg.model)   # keras:MobileNet,alpha=.. -> a name
    return DEFAULT_RUNS / f"train-{arch}-{cfg.dataset}-n{cfg.nodes}-b{cfg.batch}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(cfg: TrainConfig, hosts_text: str | None = None, out: str | None = None) -> int:
    cfg = cfg.check()
    check_available(cfg.dataset, cfg.data)
    hosts = hvdrun.parse_hosts(hosts_text, cfg.nodes)
    rundir = RunDir(out or default_out(cfg))
    if rundir.exists():
        raise UsageError(f"{rundir.path} already holds a run; choose another --out")
    cfg.out, cfg.progress = str(rundir.path), "events"
    if cfg.data:
        cfg.data = str(Path(cfg.data).resolve())
    manifest = base_manifest(cfg, rundir.run_id)
    manifest["hosts_requested"] = hvdrun.hosts_arg(hosts)
    manifest["configs"][0]["num_nodes"] = hvdrun.num_hosts_used(hosts, cfg.nodes)
    rundir.write_manifest(manifest)

    cmd = hvdrun.build_command(cfg.nodes, hosts, MODULE, to_argv(cfg))
    renderer = progress.Renderer()

    def on_line(rank, text):
        ev = progress.parse(text) if rank == 0 else None
        if ev is not None:
            renderer.feed(ev)
        else:
            hvdrun.echo_line(rank, text)

    try:
        code = hvdrun.run(cmd, on_line)
    finally:
        renderer.close()
    if code != 0:
        if rundir.read_manifest().get("status") == "running":
            mark_failed(cfg.out, f"horovodrun exited with code {code}")
        raise hvdrun.LaunchFailed(f"horovodrun exited with code {code} (rank output above); "
                                  f"completed epochs are in {rundir.path}")
    print(f"run directory: {rundir.path}")
    return 0
