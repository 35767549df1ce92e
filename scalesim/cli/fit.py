from typing import Annotated, List, Optional

import typer

from ..model.perf import ALGORITHMS


def command(
    sources: Annotated[List[str], typer.Argument(
        metavar="SOURCE...", help="run directories, throughput traces or training curves (CSV; docs/formats.md)")],
    out: Annotated[str, typer.Option("--out", "-o", metavar="FILE", help="model JSON to write")],
    holdout: Annotated[Optional[str], typer.Option(
        "--holdout", metavar="EXPR",
        help="leave matching configurations out of the fit, e.g. 'num_replicas>4' or 'num_nodes>2 and "
             "local_batch<64' (columns: num_nodes, num_replicas, replicas_per_node, local_batch, "
             "global_batch, placement)")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", metavar="N", min=0,
                                           help="bootstrap refits for parameter intervals (0 = none)")] = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    starts: Annotated[int, typer.Option("--starts", metavar="K", min=1, help="optimizer starts")] = 4,
    fix: Annotated[List[str], typer.Option(
        "--fix", metavar="NAME=VALUE",
        help="pin a parameter instead of fitting it, e.g. --fix bw_inter=1.25e9 (repeatable)")] = [],
    # One machine is the common case: fit what the data identify and mark the rest unknown (predict
    # then refuses configurations that need them) unless --strict asks for a refusal up front.
    strict: Annotated[bool, typer.Option(
        "--strict", help="refuse when the data cannot identify every parameter (default: fit what they "
                         "identify, mark the rest unknown and say so)")] = False,
    target: Annotated[Optional[float], typer.Option(
        "--target", metavar="VALUE",
        help="training-curve metric value that counts as reached (default: the least good of the runs' "
             "best values, so every run reaches it)")] = None,
    algorithm: Annotated[str, typer.Option("--algorithm", help=f"allreduce algorithm: {' | '.join(ALGORITHMS)}")] = "ring",
    grad_var_batch: Annotated[Optional[float], typer.Option(
        "--grad-var-batch", metavar="B0",
        help="training-curve files: grad_var is the variance of a gradient averaged over B0 examples "
             "(AdaptDL: the job's initial batch), so tr(Sigma) = grad_var * B0; default: detected from a "
             "progress column, else per example")] = None,
    batch_size: Annotated[Optional[float], typer.Option(
        "--batch-size", metavar="B",
        help="global batch of training-curve files that have no batch_size column and no exact "
             "validation-<B>.csv name")] = None,
):
    """Fit compute, communication and statistical-efficiency models and write a model file (training
    curves alone give a statistical-efficiency-only model)."""
    from .. import modelfile
    from ..errors import UsageError
    from ..fit.api import fit
    from ..fit.summary import parse_fix, summary

    from ..schema import check_output

    check_output(out, sources)   # before the fit: never overwrite an input
    if algorithm not in ALGORITHMS:
        raise UsageError(f"--algorithm must be one of {', '.join(ALGORITHMS)} (got {algorithm!r})")
    for name, v in (("--grad-var-batch", grad_var_batch), ("--batch-size", batch_size)):
        if v is not None and not 0 < v < float("inf"):
            raise UsageError(f"{name} must be a positive number")
    if target is not None and not abs(target) < float("inf"):
        raise UsageError("--target must be a finite number")
    m = fit(sources, holdout=holdout, bootstrap=bootstrap, seed=seed, fixed=parse_fix(fix), partial=not strict,
            target=target, starts=starts, algorithm=algorithm, grad_var_batch=grad_var_batch, batch_size=batch_size)
    modelfile.save(m, out)
    print(summary(m))
    print(f"wrote {out}")
    return 0
