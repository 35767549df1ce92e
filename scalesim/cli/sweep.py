from typing import Annotated, Optional

import typer

from . import options as o

P_GRID, P_SEARCH, P_ENGINE, P_TRIAL = ("grid (comma-separated lists)", "Bayesian / random search",
                                       "engine", "every trial")


def command(
    arch: Annotated[str, typer.Option("--arch", rich_help_panel=P_TRIAL,
                                      help="resnet8 | resnet20 | resnet32 | resnet56 | resnet50")] = "resnet20",
    epochs: Annotated[int, typer.Option("--epochs", rich_help_panel=P_TRIAL, help="epochs per trial")] = 1,
    global_batch: Annotated[str, typer.Option("--global-batch", metavar="LIST", rich_help_panel=P_GRID,
                                              help="global batches, e.g. 256,1024,4096")] = "256",
    lr_rule: Annotated[str, typer.Option("--lr-rule", metavar="LIST", rich_help_panel=P_GRID,
                                         help="learning-rate rules: linear | sqrt | none")] = "linear",
    warmup_epochs: Annotated[str, typer.Option("--warmup-epochs", metavar="LIST", rich_help_panel=P_GRID,
                                               help="warmup epochs, e.g. 0,5")] = "5",
    ref_lr: Annotated[str, typer.Option("--ref-lr", metavar="LIST", rich_help_panel=P_GRID,
                                        help="reference learning rates at --ref-batch")] = "0.1",
    seeds: Annotated[str, typer.Option("--seeds", metavar="N|LIST", rich_help_panel=P_GRID,
                                       help="seeds per grid point (3 = 0,1,2) or a list; search: cycled over trials")] = "1",
    search: Annotated[str, typer.Option("--search", rich_help_panel=P_SEARCH, help="grid | bayes | random")] = "grid",
    trials: Annotated[int, typer.Option("--trials", rich_help_panel=P_SEARCH,
                                        help="trials of a bayes / random search")] = 24,
    space: Annotated[Optional[str], typer.Option(
        "--space", metavar="SPEC", rich_help_panel=P_SEARCH,
        help="e.g. 'global_batch=log:128..8192,ref_lr=log:0.01..1,warmup_epochs=0..10'")] = None,
    objective: Annotated[str, typer.Option("--objective", rich_help_panel=P_SEARCH,
                                           help="test_error | test_loss | train_loss | train_error (minimised)")] = "test_error",
    sampler_seed: Annotated[int, typer.Option("--sampler-seed", rich_help_panel=P_SEARCH)] = 0,
    parallel: Annotated[Optional[int], typer.Option(
        "--parallel", metavar="K", rich_help_panel=P_ENGINE,
        help="trials in flight (default: as many as fit the cores at 1 thread per rank)")] = None,
    engine: Annotated[str, typer.Option("--engine", rich_help_panel=P_ENGINE,
                                        help="spark (pyspark, local[K] by default) | local (process pool, no Java)")] = "spark",
    spark_master: Annotated[Optional[str], typer.Option(
        "--spark-master", metavar="URL", rich_help_panel=P_ENGINE,
        help="spark://host:7077, yarn or k8s://... (default: embedded local[K] on loopback)")] = None,
    devices_per_node: Annotated[int, typer.Option(
        "--devices-per-node", metavar="N", rich_help_panel=P_TRIAL,
        help="Horovod ranks per trial (horovod.spark.run / horovodrun with Gloo)")] = 1,
    threads_per_rank: o.ThreadsPerRank = "auto",
    width: Annotated[Optional[int], typer.Option("--width", rich_help_panel=P_TRIAL, help="first-stage filters")] = None,
    dataset: Annotated[str, typer.Option("--dataset", rich_help_panel=P_TRIAL,
                                         help="fashion-mnist | synthetic | npz | folder")] = "fashion-mnist",
    data: Annotated[Optional[str], typer.Option("--data", metavar="PATH", rich_help_panel=P_TRIAL)] = None,
    train_subset: Annotated[Optional[int], typer.Option("--train-subset", metavar="N", rich_help_panel=P_TRIAL)] = None,
    test_subset: Annotated[Optional[int], typer.Option("--test-subset", metavar="N", rich_help_panel=P_TRIAL)] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", metavar="N", rich_help_panel=P_TRIAL,
                                                     help="at most N steps per epoch")] = None,
    ref_batch: Annotated[int, typer.Option("--ref-batch", rich_help_panel=P_TRIAL)] = 256,
    decay_epochs: Annotated[Optional[str], typer.Option(
        "--decay-epochs", metavar="E1,E2", rich_help_panel=P_TRIAL,
        help="epochs at which the LR is multiplied by --decay-factor")] = None,
    decay_factor: Annotated[float, typer.Option("--decay-factor", rich_help_panel=P_TRIAL)] = 0.1,
    ghost_batch: Annotated[Optional[int], typer.Option(
        "--ghost-batch", metavar="G", rich_help_panel=P_TRIAL,
        help="normalise BN over groups of G examples (Goyal's per-worker BN)")] = None,
    points: Annotated[Optional[str], typer.Option(
        "--points", metavar="FILE", rich_help_panel=P_GRID,
        help="JSON list of trials to run in order instead of the grid's lists x seeds (a study's points; "
             "each may also set epochs and decay_epochs)")] = None,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", metavar="DIR", help="sweep directory (default data/sweeps/sweep-<arch>-<search>-<time>)")] = None,
    resume: Annotated[Optional[str], typer.Option(
        "--resume", metavar="DIR", help="continue the sweep in DIR: re-run its failed and pending trials only")] = None,
):
    """Sweep global batch x learning-rate rule x warmup (grid, Bayesian or random) as real training runs on Spark.

    Each trial is a `scalesim train` run with its own run directory under the sweep directory; the table of trials (trials.parquet, trials.csv) is rewritten after every trial, and --resume re-runs only the failed and pending ones."""
    import time
    from pathlib import Path

    from ..errors import UsageError
    from ..sweep.driver import SweepSpec, run_sweep
    from ..sweep.engines import check_master, make_engine
    from ..sweep.space import parse_list, seed_list

    make_engine(engine, 1, spark_master)   # validates --engine / --spark-master without starting anything
    check_master(spark_master)
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel must be at least 1 (got {parallel})")
    if devices_per_node < 1:
        raise UsageError(f"--devices-per-node must be at least 1 (got {devices_per_node})")
    if resume:
        if out:
            raise UsageError("give either --resume DIR or --out DIR, not both")
        spec, target = None, resume
    else:
        if search == "grid" and space:
            raise UsageError("--space is for --search bayes/random; a grid takes lists (--global-batch 256,1024)")
        if search != "grid" and not space:
            raise UsageError(f"--search {search} needs --space, e.g. "
                             "'global_batch=log:128..8192,ref_lr=log:0.01..1,warmup_epochs=0..10'")
        base = dict(model=arch, epochs=epochs, dataset=dataset, data=str(Path(data).resolve()) if data else None,
                    train_subset=train_subset, test_subset=test_subset, max_steps=max_steps, width=width,
                    nodes=devices_per_node, threads=threads_per_rank, ref_batch=ref_batch, progress="none",
                    decay_epochs=list(_positive(o.epoch_list(decay_epochs), decay_epochs)), decay_factor=decay_factor,
                    ghost_batch=ghost_batch)
        listed = _points(points, search, dict(global_batch=global_batch, lr_rule=lr_rule, warmup_epochs=warmup_epochs,
                                              ref_lr=ref_lr, seeds=seeds))
        axes = {"global_batch": parse_list("global_batch", global_batch), "lr_rule": parse_list("lr_rule", lr_rule),
                "warmup_epochs": parse_list("warmup_epochs", warmup_epochs), "ref_lr": parse_list("ref_lr", ref_lr)}
        if search != "grid":   # single values of the grid options fix what the space leaves out
            flags = {"global_batch": "--global-batch", "lr_rule": "--lr-rule", "warmup_epochs": "--warmup-epochs",
                     "ref_lr": "--ref-lr"}
            for name, vals in axes.items():
                if len(vals) > 1:
                    raise UsageError(f"{flags[name]} takes one value with --search {search}; search it with "
                                     f"--space '{name}=...' instead")
                base["batch" if name == "global_batch" else name] = vals[0]
        spec = SweepSpec(base=base, search=search, axes=axes if search == "grid" else {}, space=space or "",
                         seeds=seed_list(seeds), trials=trials, objective=objective, sampler_seed=sampler_seed,
                         points=tuple(listed))
        target = out or f"data/sweeps/sweep-{arch}-{search}-{time.strftime('%Y%m%d-%H%M%S')}"
        if Path(target).exists() and any(Path(target).iterdir()):
            raise UsageError(f"{target} is not empty; choose another --out (or --resume it if it is a sweep)")

    def line(r):
        obj = "" if r["status"] != "done" else f" {r['objective']:.4f}"
        why = f" ({r['error']})" if r["error"] else ""
        print(f"trial {r['trial_id']:>3} {r['status']}{obj}  {r['arm']} global_batch={r.get('global_batch')} "
              f"seed={r.get('seed')}  {r['wall_time']:.1f} s{why}", flush=True)

    session = run_sweep(spec, target, resume=bool(resume), engine=engine, spark_master=spark_master,
                        parallel=parallel, on_trial=line, batch_fits_data=True)
    done = [r for r in session.rows if r["status"] == "done"]
    failed = [r for r in session.rows if r["status"] != "done"]
    print(f"sweep directory: {Path(target)}  ({len(done)} done, {len(failed)} failed, "
          f"{session.wall_seconds:.0f} s on {session.slots} slot(s) x {session.threads} thread(s))")
    if done:
        best = min(done, key=lambda r: r["objective"])
        print(f"best: trial {best['trial_id']} {best['objective']:.4f}  {best['params']}  {best['run_dir']}")
    if failed:
        print(f"{len(failed)} trial(s) failed; `scalesim sweep --resume {target}` re-runs only those")
    return 1 if failed and not done else 0


def _grid_defaults() -> dict:
    """The grid options' defaults, read from the command's own signature (one place to change)."""
    import inspect

    return {k: p.default for k, p in inspect.signature(command).parameters.items()
            if k in ("global_batch", "lr_rule", "warmup_epochs", "ref_lr", "seeds")}


def _points(path, search: str, given: dict) -> list:
    """The trials of --points FILE ([] without it); the grid's lists must then be left unset."""
    if path is None:
        return []
    from ..errors import UsageError
    from ..schema import read_json
    from ..sweep.space import parse_points

    if search != "grid":
        raise UsageError(f"--points lists a grid's trials; --search {search} proposes its own")
    defaults = _grid_defaults()
    set_too = [k for k, v in given.items() if v != defaults[k]]
    if set_too:
        raise UsageError(f"--points gives every trial's parameters; drop --{set_too[0].replace('_', '-')}")
    return parse_points(read_json(path), path)


def _positive(epochs: tuple, text) -> tuple:
    from ..errors import UsageError

    if any(not v > 0 for v in epochs):
        raise UsageError(f"--decay-epochs must be positive epochs (got {text!r})")
    return epochs
