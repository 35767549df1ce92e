"""The study's analysis, pure: curated points (dicts, see collect.py) in, tables and numbers out.

    baseline(points)      B_ref test error over seeds, and the 2x-longer check
    table(points)         Goyal Table 1 form: test error mean +- std by batch and arm
    break_batch(...)      the smallest batch whose error leaves the baseline (two criteria)
    noise_scale(points)   B_simple = tr(Sigma) / |G|^2 measured through training (McCandlish 2018)
    emulated_pairs(...)   each emulated-node point beside the same point in one process
Errors are in percentage points of test error (100 * (1 - test accuracy)).
"""
from __future__ import annotations

import math
from statistics import mean, stdev
from typing import NamedTuple


class Cell(NamedTuple):
    mean: float
    std: float          # nan with one seed
    n: int

    def text(self) -> str:
        if self.n == 0:
            return "–"
        return f"{self.mean:.2f}" + (f" ± {self.std:.2f}" if self.n > 1 else "") + f" (n={self.n})"


def cell(values) -> Cell:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return Cell(math.nan, math.nan, 0)
    return Cell(mean(v), stdev(v) if len(v) > 1 else math.nan, len(v))


def err_pct(point: dict) -> float:
    return 100.0 * float(point["test_error"])


def main_points(points: list[dict], epochs: int) -> list[dict]:
    """One process, the study's epoch budget (not the 2x check, not the emulated runs)."""
    return [p for p in points if p["epochs"] == epochs and p["ranks"] == 1]


def baseline(points: list[dict], ref_batch: int, epochs: int) -> dict:
    ref = [p for p in main_points(points, epochs) if p["global_batch"] == ref_batch]
    long = [p for p in points if p["global_batch"] == ref_batch and p["epochs"] == 2 * epochs and p["ranks"] == 1]
    out = {"cell": cell(err_pct(p) for p in ref), "by_seed": {p["seed"]: err_pct(p) for p in ref}}
    if long:
        lp = long[0]
        same = out["by_seed"].get(lp["seed"])
        out.update(long_seed=lp["seed"], long_error=err_pct(lp),
                   long_gap=(same - err_pct(lp)) if same is not None else math.nan)
        out["trained"] = bool(math.isfinite(out["long_gap"]) and out["long_gap"] <= 0.5)
    # every budget the first seed's baseline ran with (the study's, 2x, and any longer check)
    seed = ref[0]["seed"] if ref else 0
    out["series"] = {p["epochs"]: err_pct(p) for p in sorted(points, key=lambda q: q["epochs"])
                     if p["global_batch"] == ref_batch and p["ranks"] == 1 and p["seed"] == seed}
    return out


def table(points: list[dict], ref_batch: int, epochs: int) -> list[dict]:
    """Rows by batch: arm -> Cell (at B_ref the three arms are the baseline run)."""
    pts = main_points(points, epochs)
    rows = []
    for b in sorted({p["global_batch"] for p in pts}):
        here = [p for p in pts if p["global_batch"] == b]
        # the linear rule's peak and arm c's warmup (arm a keeps eta_ref and has none)
        some = next((p for p in here if p["arm"] in ("c", "ref")), here[0])
        row = {"global_batch": b, "peak_lr": some["ref_lr"] * b / ref_batch, "steps": some["steps_per_epoch"] * epochs,
               "warmup_steps": some["warmup_steps"]}
        for arm in "abc":
            row[arm] = cell(err_pct(p) for p in here if p["arm"] in (arm, "ref"))
        rows.append(row)
    return rows


def break_batch(rows: list[dict], base: Cell, arm: str = "c") -> dict:
    """Smallest batch above B_ref whose mean error is more than 1 point above the baseline's mean
    ('1pt'), or above the baseline's mean + 2 std over seeds ('spread'); None when none breaks."""
    spread = base.mean + 2 * base.std if base.n > 1 and math.isfinite(base.std) else base.mean
    out = {"arm": arm, "spread_limit": spread, "1pt_limit": base.mean + 1.0}
    for name, limit in (("1pt", base.mean + 1.0), ("spread", spread)):
        hit = [r for r in rows[1:] if r[arm].n and r[arm].mean > limit]
        out[name] = hit[0]["global_batch"] if hit else None
        # the last batch still within the limit, below the break (the useful range)
        ok = [r["global_batch"] for r in rows[1:] if r[arm].n and r[arm].mean <= limit
              and (out[name] is None or r["global_batch"] < out[name])]
        out[name + "_last_ok"] = ok[-1] if ok else None
    return out


def window_b_simple(windows: list[dict], lo_epoch: float = 0.0, hi_epoch: float = math.inf) -> float:
    """B_simple over the windows ending in (lo_epoch, hi_epoch]: mean tr(Sigma) / mean |G|^2,
    weighting each window by its steps (the ratio of means, as scalesim.model.noise does)."""
    w = [x for x in windows if lo_epoch < x["epoch_end"] <= hi_epoch and x["steps"] > 0]
    steps = sum(x["steps"] for x in w)
    if not steps:
        return math.nan
    sqr = sum(x["grad_sqr"] * x["steps"] for x in w) / steps
    var = sum(x["grad_var"] * x["steps"] for x in w) / steps
    return var / sqr if sqr > 0 else math.nan


def noise_scale(points: list[dict], ref_batch: int, epochs: int, first_decay: float = math.inf) -> dict:
    """B_simple of the baseline runs (mean +- std over seeds): whole run, the peak-rate phase
    (up to the first decay) and per epoch."""
    ref = [p for p in main_points(points, epochs) if p["global_batch"] == ref_batch]
    whole = cell(window_b_simple(p["windows"]) for p in ref)
    peak = cell(window_b_simple(p["windows"], 0.0, first_decay) for p in ref)
    per_epoch = [cell(window_b_simple(p["windows"], e, e + 1) for p in ref) for e in range(epochs)]
    by_batch = {}
    for p in main_points(points, epochs):
        by_batch.setdefault((p["global_batch"], p["arm"]), []).append(window_b_simple(p["windows"]))
    return {"whole": whole, "peak_phase": peak, "per_epoch": per_epoch,
            "by_batch": {k: cell(v) for k, v in sorted(by_batch.items())}}


def ratio_text(break_at, b_noise: float) -> str:
    if break_at is None or not math.isfinite(b_noise) or b_noise <= 0:
        return "–"
    r = break_at / b_noise
    return f"{r:.2f} ({'within' if 0.5 <= r <= 2.0 else 'not within'} 2x)"


def emulated_pairs(points: list[dict], epochs: int) -> list[dict]:
    one = {(p["global_batch"], p["arm"], p["seed"]): p for p in main_points(points, epochs)}
    out = []
    for p in points:
        if p["ranks"] > 1 and p["epochs"] == epochs:
            q = one.get((p["global_batch"], p["arm"], p["seed"]))
            out.append({"global_batch": p["global_batch"], "arm": p["arm"], "seed": p["seed"],
                        "ranks": p["ranks"], "hosts": p.get("hosts"),
                        "emulated_error": err_pct(p), "one_process_error": err_pct(q) if q else math.nan,
                        "emulated_loss": p["epochs_table"][-1]["train_loss"],
                        "one_process_loss": q["epochs_table"][-1]["train_loss"] if q else math.nan,
                        "emulated_b_simple": window_b_simple(p["windows"]),
                        "one_process_b_simple": window_b_simple(q["windows"]) if q else math.nan,
                        "emulated_images_per_sec": p["images_per_sec"],
                        "one_process_images_per_sec": q["images_per_sec"] if q else math.nan})
    return out
