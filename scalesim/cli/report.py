from typing import Annotated, List, Optional

import typer

from . import options as o


@o.plan_options()
def command(
    runs: Annotated[Optional[List[str]], typer.Argument(
        metavar="[RUN_DIR]...", help="run directories written by `scalesim measure` or `train`")] = None,
    model: o.OptModelFile = None,
    validation: Annotated[Optional[str], typer.Option(
        "--validation", metavar="CSV", help="CSV from `scalesim validate --out` (measured, predicted)")] = None,
    prediction: Annotated[Optional[str], typer.Option(
        "--prediction", metavar="JSON", help="JSON from `scalesim predict --json` (time-to-target grid)")] = None,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", metavar="HTML", help="output file (default reports/<first run id>.html)")] = None,
    png: Annotated[bool, typer.Option("--png", help="also write each chart as <out stem>-<chart>.png")] = False,
    title: Annotated[Optional[str], typer.Option("--title", help="report title (default: the run ids)")] = None,
    **plan_args,
):
    """Write a self-contained HTML report (opens offline) with the charts the inputs allow.

    With --model and a target (e.g. --target-time 1h --target-epochs 90 --dataset-size 1.28M) the page
    opens with the configuration `scalesim predict` recommends for it; the target and search-space
    options are predict's."""
    from ..report.answer import AnswerRequest
    from ..report.html import ReportRequest, write_report

    ask = AnswerRequest(*o.plan_specs(plan_args))
    return write_report(ReportRequest(list(runs or []), model, validation, prediction, out, png, title, ask))
