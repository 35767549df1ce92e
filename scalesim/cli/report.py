from typing import Annotated, List, Optional

import typer

from . import options as o


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
    target_time: o.OptTargetTime = None,
    target_steps: o.TargetSteps = None,
    target_epochs: o.TargetEpochs = None,
    target_metric: o.TargetMetric = None,
    dataset_size: o.DatasetSize = None,
    nodes: o.SpaceNodes = None,
    max_nodes: o.MaxNodes = None,
    devices_per_node: o.DevicesPerNode = None,
    global_batch: o.GlobalBatch = None,
    local_batch: o.LocalBatch = None,
    min_global_batch: o.MinGlobalBatch = 16,
    max_global_batch: o.MaxGlobalBatch = None,
    batch_sizes: o.BatchSizes = 64,
    max_local_batch: o.MaxLocalBatch = None,
    ref_lr: o.RefLR = None,
    ref_batch: o.RefBatch = None,
    warmup_epochs: o.WarmupEpochs = None,
):
    """Write a self-contained HTML report (opens offline) with the charts the inputs allow.

    With --model and a target (e.g. --target-time 1h --target-epochs 90 --dataset-size 1.28M) the page
    opens with the configuration `scalesim predict` recommends for it; the target and search-space
    options are predict's."""
    from ..report.answer import AnswerRequest
    from ..report.html import ReportRequest, write_report

    ask = AnswerRequest(o.duration(target_time, "--target-time"),
                        o.target_spec(target_steps, target_epochs, dataset_size, target_metric),
                        o.space_spec(nodes, max_nodes, devices_per_node, global_batch, local_batch,
                                     min_global_batch, max_global_batch, batch_sizes, max_local_batch),
                        o.lr_spec(ref_lr, ref_batch, warmup_epochs))
    return write_report(ReportRequest(list(runs or []), model, validation, prediction, out, png, title, ask))
