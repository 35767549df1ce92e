"""A sweep's trials as training curves at several global batches, for the statistical-efficiency
fit: each finished trial's run directory is a `scalesim train` run whose `epochs` table is the
curve (test/train metric per epoch). No TensorFlow here."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from . import table
from .driver import load_spec


class TrialCurve(NamedTuple):
    trial_id: int
    run_dir: Path        # absolute; a run directory (scalesim.schema.RunDir)
    global_batch: int
    params: dict         # the trial's parameters (lr_rule, ref_lr, warmup_epochs, seed, ...)
    epochs: object       # DataFrame: epoch, lr, train_loss, train_acc, test_loss, test_acc, ...


def sweep_curves(sweep_dir: str | Path, include_failed: bool = False) -> list[TrialCurve]:
    """Finished trials (and with include_failed, the completed epochs of failed ones), sorted by
    global batch then trial id."""
    from ..schema import RunDir

    sweep_dir = Path(sweep_dir)
    spec = load_spec(sweep_dir)
    out = []
    for r in table.read(sweep_dir):
        if not r.get("run_dir") or (r["status"] != "done" and not include_failed):
            continue
        run = RunDir(sweep_dir / r["run_dir"])
        if not run.exists():
            continue
        params = table.params_of(r)
        batch = int(params.get("global_batch", spec.base.get("batch", 0)))
        ep = run.read_table("epochs")
        if ep.empty:
            continue
        out.append(TrialCurve(int(r["trial_id"]), run.path.resolve(), batch, params,
                              ep.sort_values("epoch").reset_index(drop=True)))
    return sorted(out, key=lambda c: (c.global_batch, c.trial_id))
