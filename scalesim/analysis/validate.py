"""`scalesim validate --model M <run-dir or trace>...`: predict every measured configuration with a fitted
model and compare. Python API: validate(model, data, only_unseen=False) -> Validation.

Quantities: step_time always; compute_time and allreduce_time where a run directory measured them
(instrumented steps); sync_time where a trace has it (AdaptDL's sync not hidden by backward, predicted
as step - compute, compared only for multi-replica rows since it is ~0 otherwise).
"""
from __future__ import annotations

import argparse
import sys
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


def validate(model, data, only_unseen: bool = False) -> Validation:
    from . import modelfile
    from . import observations as ob

    if not isinstance(model, modelfile.FittedModel):
        model = modelfile.load(model)
    steps = ob.load(data).steps
    if steps.empty:
        raise DataError("no throughput measurements to validate against (give run directories or throughput traces)")
    seen = steps["config"].isin(set((model.data or {}).get("fitted_configs") or [])).to_numpy()
    if only_unseen:
        steps, seen = steps[~seen], seen[~seen]
        if steps.empty:
            raise DataError("every configuration in the data was used to fit the model (nothing unseen to validate)")
    modelfile.check_predictable(model, steps["num_nodes"].to_numpy())
    table = comparison(model.perf, steps, seen)
    return Validation(table, mape_by_quantity(table))


def comparison(perf, steps, seen=None) -> "pd.DataFrame":
    """One row per (configuration, measured quantity): measured, predicted, error_pct."""
    import pandas as pd

    from .perf_fit import predict_quantities

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
    lines = [f"{'config':<{w}} {'quantity':<14} {'measured':>10} {'predicted':>10} {'error %':>8}"]
    for r in shown.itertuples():
        lines.append(f"{r.config:<{w}} {r.quantity:<14} {r.measured:>10.4g} {r.predicted:>10.4g} "
                     f"{r.error_pct:>+8.1f}" + ("  (fitted)" if r.seen else ""))
    if len(shown) < len(t):
        lines.append(f"... {len(t) - len(shown)} more rows (the {len(shown)} largest errors are shown; --all or "
                     "--out for every row)")
    lines.append("")
    for q, s in v.mape.items():
        lines.append(f"MAPE {q}: {s['mape']:.1f} % over {s['n']} configurations")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="run directories or throughput trace CSVs")
    p.add_argument("--model", required=True, metavar="FILE", help="model JSON written by `scalesim fit`")
    p.add_argument("--only-unseen", action="store_true", help="skip configurations the model was fitted on")
    p.add_argument("--out", metavar="CSV", help="write every row (config, quantity, measured, predicted, error_pct)")
    p.add_argument("--all", action="store_true", help=f"print every row (default: at most {MAX_PRINTED})")


def run(args) -> int:
    v = validate(args.model, args.sources, only_unseen=args.only_unseen)
    print(render(v, args.all))
    if args.out:
        from pathlib import Path

        from ..schema import atomic_write_bytes

        atomic_write_bytes(Path(args.out), v.table.to_csv(index=False).encode())
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
