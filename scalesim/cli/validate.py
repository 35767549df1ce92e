from typing import Annotated, List, Optional

import typer

from . import options as o

MAX_PRINTED = 40  # scalesim.fit.validate.MAX_PRINTED


def command(
    sources: Annotated[List[str], typer.Argument(
        metavar="SOURCE...", help="run directories, throughput trace CSVs or training curves (steps to the target)")],
    model: o.ModelFile,
    only_unseen: Annotated[bool, typer.Option("--only-unseen", help="skip configurations the model was fitted on")] = False,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", metavar="CSV", help="write every row (config, quantity, measured, predicted, error_pct)")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help=f"print every row (default: the {MAX_PRINTED} largest errors)")] = False,
    batch_size: Annotated[Optional[float], typer.Option(
        "--batch-size", metavar="B",
        help="global batch of training-curve files with no batch_size column and no exact validation-<B>.csv name")] = None,
):
    """Check a model's predictions against measurements (held-out ones with --only-unseen)."""
    import sys
    from pathlib import Path

    from ..fit.validate import render, validate
    from ..schema import atomic_write_bytes

    if out:
        from ..schema import check_output

        check_output(out, [*sources, model])   # before the work: never overwrite an input
    v = validate(model, sources, only_unseen=only_unseen, batch_size=batch_size)
    print(render(v, all_rows))
    if out:
        atomic_write_bytes(Path(out), v.table.to_csv(index=False).encode())
        print(f"wrote {out}", file=sys.stderr)
    return 0
