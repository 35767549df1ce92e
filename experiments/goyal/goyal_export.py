"""The study's points as inputs `scalesim report` understands: a run directory (kind 'train')
whose `noise` table holds each point's B_simple per evaluation window and whose `epochs` table holds
its validation curve, plus a validation CSV of predicted vs measured steps-to-target."""
from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

from scalesim.schema import RunDir


def export_rundir(points: list, path: Path, proto) -> RunDir:
    import pandas as pd

    rd = RunDir(path)
    configs = []
    for r in points:
        pt = r["point"]
        cid = pt["id"]
        configs.append({"config_id": cid, "num_nodes": 1, "num_replicas": pt["ranks"],
                        "local_batch": pt["global_batch"] // pt["ranks"], "status": "done", "error": None})
        noise = [{"config_id": cid, "num_replicas": pt["ranks"], "local_batch": r["b_noise_pair"][0],
                  "step": c["step"], "local_sqnorm": math.nan, "global_sqnorm": math.nan,
                  "grad_sqr": c["grad_sqr"], "grad_var": c["grad_var"],
                  "b_simple": c["grad_var"] / c["grad_sqr"] if c["grad_sqr"] and c["grad_sqr"] > 0 else math.nan}
                 for c in r["curve"] if c["noise_n"]]
        if noise:
            rd.write_part("noise", cid, pd.DataFrame(noise))
        epochs = [{"config_id": cid, "epoch": c["epoch"], "lr": c["lr"], "train_loss": c["train_loss"],
                   "train_acc": math.nan, "test_loss": c["val_loss"], "test_acc": c["val_acc"],
                   "images_per_sec": r["images_per_s"] or math.nan, "elapsed": math.nan, "steps": c["step"]}
                  for c in r["curve"]]
        rd.write_part("epochs", cid, pd.DataFrame(epochs))
    rd.write_manifest({"run_id": rd.run_id, "kind": "train",
                       "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       "config": {"study": "goyal", "protocol": proto.name, "model": proto.model,
                                  "width": proto.width, "ghost_batch": proto.ghost_batch,
                                  "train_size": proto.train_size, "epochs": proto.epochs,
                                  "note": "epochs.test_* columns hold the held-out VALIDATION curve; "
                                          "noise rows are per evaluation window (mean |G|^2, tr(Sigma))"},
                       "hosts": [], "model": {"name": proto.model}, "configs": configs})
    return rd


def validation_rows(checks: list) -> list:
    rows = []
    for chk in checks:
        for r in chk.get("per_batch", []):
            if r["used_in_fit"]:
                continue
            rows.append({"quantity": f"steps to {chk['target']}",
                         "config": f"B={r['global_batch']}", "measured": r["measured_steps"],
                         "predicted": r["predicted_steps"], "error_pct": r["error_pct"]})
    return rows
