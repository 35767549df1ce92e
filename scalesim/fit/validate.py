"""Validation: predict every measured configuration with a fitted
model and compare. Python API: validate(model, data, only_unseen=False) -> Validation.

Quantities: step_time always; steps_to_target for training curves (predicted by the model's
S(B) = S_min (1 + B_noise/B) at its target); compute_time and allreduce_time where a run directory measured them
(instrumented steps); sync_time where a trace has it (AdaptDL's sync not hidden by backward, predicted
as step - compute, compared only for multi-replica rows since it is ~0 otherwise).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:  # pandas is imported lazily: the CLI parser imports this module
    import pandas as pd

QUANTITIES = ("step_time", "compute_time", "allreduce_time", "sync_time")
MAX_PRINTED = 40


class Validation(NamedTuple):
    table: "pd.DataFrame"   # config, quantity, measured, predicted, error_pct, seen, source
    mape: dict              # quantity -> {mape, n}
    notes: tuple = ()


def validate(model, data, only_unseen: bool = False, batch_size: float | None = None) -> Validation:
    """Step times of every measured configuration and, for every training curve in `data`, the steps
    to the model's target (quantity steps_to_target; seen = the curve was used in the fit)."""
    import pandas as pd

    from .. import modelfile
    from . import observations as ob
    from .stateff import validation_rows

    if not isinstance(model, modelfile.FittedModel):
        model = modelfile.load(model)
    obs = ob.load(data, batch_size=batch_size)
    steps = obs.steps
    parts, notes = [], []
    if not steps.empty and model.perf is None:  # a curves-only model: nothing predicts step times
        notes.append("the model has no throughput part: step times are not compared")
        steps = steps.iloc[:0]
    if not steps.empty:
        seen = seen_by_fit(model, steps)
        if only_unseen:
            steps, seen = steps[~seen], seen[~seen]
        if not steps.empty:
            modelfile.check_predictable(model, steps["num_nodes"].to_numpy(), steps["num_replicas"].to_numpy())
            parts.append(comparison(model.perf, steps, seen))
    if not obs.curves.empty:
        rows = validation_rows(model.stateff, obs.curves)
        missed = sorted(set(obs.curves["source"].astype(str)) - set(rows["source"]))
        if missed:
            t = model.stateff["target"]
            notes.append(f"{len(missed)} training curve(s) never reach the model's target {t.get('metric')} "
                         f"{t.get('value'):.4g} and are not compared: " + ", ".join(missed))
        if only_unseen:
            rows = rows[~rows["seen"].astype(bool)]
        if len(rows):
            parts.append(rows)
    if not parts:
        if obs.steps.empty and obs.curves.empty:
            raise DataError("nothing to validate against: give run directories, throughput traces or training curves")
        raise DataError("every configuration and curve in the data was used to fit the model, or no curve reaches "
                        "the model's target (nothing unseen to validate)")
    table = pd.concat(parts, ignore_index=True)
    return Validation(table, mape_by_quantity(table), tuple(notes))


def row_keys(steps) -> list[str]:
    """What identifies a measured configuration across files: its run (or trace) and its config.
    A label alone is not enough: the same placement and batch at another link rate is another
    measurement, never seen by a fit of the first."""
    from pathlib import Path

    return [f"{Path(str(src)).resolve()}::{cfg}" for src, cfg in zip(steps["source"], steps["config"])]


def seen_by_fit(model, steps) -> np.ndarray:
    data = model.data or {}
    if data.get("fitted_rows") is not None:
        return np.isin(row_keys(steps), list(data["fitted_rows"]))
    # model files written before fitted_rows: by label (may over-mark, see row_keys)
    return steps["config"].isin(set(data.get("fitted_configs") or [])).to_numpy()


def comparison(perf, steps, seen=None) -> "pd.DataFrame":
    """One row per (configuration, measured quantity): measured, predicted, error_pct."""
    import pandas as pd

    from .perf import predict_quantities

    pred = predict_quantities(perf, steps)
    seen = np.zeros(len(steps), bool) if seen is None else np.asarray(seen, bool)
    rows = []
    for q in QUANTITIES:
        y = steps[q].to_numpy(float)
        ok = np.isfinite(y) & (y > 0)
        if q in ("sync_time", "allreduce_time"):
            ok &= steps["num_replicas"].to_numpy() > 1
        if not ok.any():
            continue
        part = steps[ok]
        p = pred[q].to_numpy()[ok]
        rows.append(pd.DataFrame({"config": part["config"].to_numpy(), "quantity": q, "measured": y[ok],
                                  "predicted": p, "error_pct": 100 * (p - y[ok]) / y[ok],
                                  "seen": seen[ok], "source": part["source"].to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def mape_by_quantity(table) -> dict:
    return {q: {"mape": float(g["error_pct"].abs().mean()), "n": int(len(g))}
            for q, g in table.groupby("quantity", sort=False)}


def render(v: Validation, show_all: bool = False) -> str:
    t = v.table
    shown = t if show_all or len(t) <= MAX_PRINTED else \
        t.loc[t["error_pct"].abs().sort_values(ascending=False).index[:MAX_PRINTED]]
    w = max(24, int(shown["config"].str.len().max()))
    lines = [f"{'config':<{w}} {'quantity':<15} {'measured':>10} {'predicted':>10} {'error %':>8}"]
    for r in shown.itertuples():
        lines.append(f"{r.config:<{w}} {r.quantity:<15} {r.measured:>10.4g} {r.predicted:>10.4g} "
                     f"{r.error_pct:>+8.1f}" + ("  (fitted)" if r.seen else ""))
    if len(shown) < len(t):
        lines.append(f"... {len(t) - len(shown)} more rows (the {len(shown)} largest errors are shown; --all or "
                     "--out for every row)")
    lines.append("")
    for q, s in v.mape.items():
        lines.append(f"MAPE {q}: {s['mape']:.1f} % over {s['n']} configurations")
    lines += [f"note: {n}" for n in v.notes]
    return "\n".join(lines)
