"""The report's sweep sections (`scalesim report SWEEP_DIR`): objective vs global batch per arm
(mean over seeds, error bars = min..max over seeds), and for a Bayesian/random search the trial
history with its best-so-far line and the best trial. A sweep directory is recognised by its
sweep.json; its trials' run directories are not drawn one by one."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

from ..errors import DataError
from .page import Section, esc, grid_table, kv_table


class Sweep(NamedTuple):
    path: Path
    spec: object          # scalesim.sweep.driver.SweepSpec
    trials: object        # DataFrame: the table of trials


def is_sweep(path) -> bool:
    from ..sweep.driver import MANIFEST

    return (Path(path) / MANIFEST).is_file()


def split_sweeps(paths) -> tuple[list, list]:
    """(sweep directories, other paths) from the report's positional arguments."""
    paths = list(paths or [])
    return [p for p in paths if is_sweep(p)], [p for p in paths if not is_sweep(p)]


def load_sweep(path) -> Sweep:
    import pandas as pd

    from ..sweep import table
    from ..sweep.driver import load_spec

    spec = load_spec(path)
    try:
        df = table.frame(table.read(path))
    except Exception as e:  # noqa: BLE001 - one line naming the sweep
        raise DataError(f"{path}: unreadable {table.TABLE} ({type(e).__name__}: {e})") from None
    if not df.empty:   # from the parameters, so rows written by older versions group the same way
        from ..sweep.space import arm

        df["arm"] = [arm(json.loads(p)) for p in df["params"]]
    return Sweep(Path(path), spec, df if not df.empty else pd.DataFrame(columns=table.LEAD + table.TAIL))


def pool(sweeps: list) -> list:
    """Sweeps run with the same per-trial settings (a study split into parts: the main grid, extra
    seeds, a longer check) drawn as one: their trials in one table, each run directory made absolute
    and each row naming its sweep. Sweeps with other settings stay on their own."""
    import pandas as pd

    groups: dict = {}
    for sw in sweeps:
        groups.setdefault(json.dumps(sw.spec.base, sort_keys=True, default=str), []).append(sw)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        frames = []
        for sw in group:
            t = sw.trials.copy()
            t.insert(0, "sweep", sw.path.name)
            t["run_dir"] = [str((sw.path / r).resolve()) if isinstance(r, str) else r for r in t["run_dir"]]
            frames.append(t)
        first = group[0]
        spec = first.spec._replace(points=tuple(p for sw in group for p in (sw.spec.points or ())))
        name = "+".join(sw.path.name for sw in group)
        out.append(Sweep(first.path.parent / name, spec, pd.concat(frames, ignore_index=True)))
    return out


def arm_points(trials):
    """One row per (arm, global batch): mean/min/max objective over finished seeds."""
    import pandas as pd

    done = trials[trials["status"] == "done"].copy()
    if done.empty or "global_batch" not in done:
        return pd.DataFrame(columns=["arm", "global_batch", "mean", "lo", "hi", "seeds"])
    done["objective"] = done["objective"].astype(float)
    g = done.groupby(["arm", "global_batch"])["objective"]
    return pd.DataFrame({"mean": g.mean(), "lo": g.min(), "hi": g.max(), "seeds": g.count()}).reset_index()


def history(trials):
    """Finished trials in trial order with the best objective so far."""
    done = trials[trials["status"] == "done"].sort_values("trial_id").copy()
    done["objective"] = done["objective"].astype(float)
    done["best_so_far"] = done["objective"].cummin()
    return done


def _objective_chart(points, objective: str, b_simple: float = math.nan, b_label: str = ""):
    import altair as alt

    x = alt.X("global_batch:Q", title="global batch", scale=alt.Scale(type="log", base=2),
              axis=alt.Axis(values=sorted(float(v) for v in points["global_batch"].unique()), format="~g"))
    base = alt.Chart(points).encode(x=x, color=alt.Color("arm:N", title="arm"))
    bars = base.mark_errorbar(ticks=True).encode(
        y=alt.Y("lo:Q", title=f"{objective} (mean over seeds)", scale=alt.Scale(zero=False)), y2="hi:Q")
    line = base.mark_line(point=True).encode(
        y="mean:Q", tooltip=["arm:N", "global_batch:Q", alt.Tooltip("mean:Q", format=".4f"),
                             alt.Tooltip("lo:Q", format=".4f"), alt.Tooltip("hi:Q", format=".4f"), "seeds:Q"])
    layers = bars + line
    if math.isfinite(b_simple) and b_simple > 0:
        from .arms import noise_rule

        layers = layers + noise_rule(b_simple, b_label)
    return layers.properties(width=520, height=300, title=alt.TitleParams(
        f"{objective} vs global batch", subtitle="error bars: min..max over seeds"
        + ("; dashed: B_simple measured in training" if math.isfinite(b_simple) else ""), anchor="start"))


def _history_chart(hist, objective: str):
    import altair as alt

    tip = ["trial_id:Q", alt.Tooltip("objective:Q", format=".4f"), "params:N"]
    pts = alt.Chart(hist).mark_circle(size=60).encode(
        x=alt.X("trial_id:Q", title="trial"), y=alt.Y("objective:Q", title=objective),
        color=alt.Color("global_batch:Q", title="global batch", scale=alt.Scale(type="log", base=2)), tooltip=tip)
    best = alt.Chart(hist).mark_line(interpolate="step-after", color="black").encode(x="trial_id:Q", y="best_so_far:Q")
    return (pts + best).properties(width=520, height=260, title=alt.TitleParams(
        "trial history", subtitle="line: best so far", anchor="start"))


def sweep_sections(sweeps: list) -> list:
    from .page import add_chart as _add

    out = []
    for sw in sweeps:
        spec, trials = sw.spec, sw.trials
        name = sw.path.name
        charts, notes = [], []
        counts = trials["status"].value_counts().to_dict() if not trials.empty else {}
        facts = [("sweep", str(sw.path)), ("search", spec.search), ("objective", f"{spec.objective} (minimised)"),
                 ("trials", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none yet"),
                 ("arch", spec.base.get("model")), ("epochs per trial", spec.base.get("epochs")),
                 ("ranks per trial", spec.base.get("nodes", 1)),
                 *_grid_facts(spec)]
        points = arm_points(trials)
        from .arms import arm_table, b_simple_of, loss_chart, loss_curves, trial_manifests

        manifests = trial_manifests(sw.path, trials)
        if not trials.empty:
            trials = trials.assign(b_simple=[b_simple_of(m) for m in manifests])
        b_ref, b_label = _baseline_noise(trials)
        if points.empty:
            notes.append("No finished trial yet: nothing to draw (resume the sweep with `scalesim sweep --resume`).")
        else:
            _add(charts, notes, f"{name}-objective", "the objective chart",
                 lambda: _objective_chart(points, spec.objective, b_ref, b_label))
            curves = loss_curves(sw.path, trials, manifests)
            if not curves.empty:
                _add(charts, notes, f"{name}-loss", "the training-loss curves", lambda: loss_chart(curves))
        html = kv_table(facts)
        header, rows = arm_table(trials) if not points.empty else ([], [])
        if rows:
            html += (f"<h3>{esc(spec.objective)} by global batch and arm (mean ± std over seeds)</h3>"
                     + grid_table(header, rows))
        if spec.search != "grid" and not points.empty:
            hist = history(trials)
            _add(charts, notes, f"{name}-history", "the trial history", lambda: _history_chart(hist, spec.objective))
            best = hist.loc[hist["objective"].idxmin()]
            html += "<h3>best trial</h3>" + kv_table(
                [("trial", int(best["trial_id"])), (spec.objective, f"{best['objective']:.4f}"),
                 ("parameters", best["params"]), ("run directory", best["run_dir"]),
                 ("wall time (s)", f"{best['wall_time']:.1f}")])
        cols = (["sweep"] if "sweep" in trials else []) + [
            "trial_id", "status", "objective", "arm", "global_batch", "seed", "b_simple", "wall_time", "attempts", "error"]
        order = ["sweep", "trial_id"] if "sweep" in trials else ["trial_id"]
        rows = [[_cell(r.get(c)) for c in cols] for r in trials.sort_values(order).to_dict("records")]
        html += "<h3>trials</h3>" + grid_table(cols, rows)
        out.append(Section(f"sweep-{esc(name)}", f"Sweep {name}", charts, notes, html))
    return out


def _grid_facts(spec) -> list:
    if getattr(spec, "points", ()):
        return [("points", f"{len(spec.points)} trials listed with --points (in run order)")]
    return [("grid" if spec.search == "grid" else "space",
             "; ".join(f"{k}={','.join(map(str, v))}" for k, v in spec.axes.items()) if spec.search == "grid"
             else spec.space), ("seeds", ",".join(map(str, spec.seeds)))]


def _baseline_noise(trials) -> tuple[float, str]:
    """Mean whole-run B_simple of the smallest batch's finished trials (the reference runs)."""
    if trials.empty or "b_simple" not in trials or "global_batch" not in trials:
        return math.nan, ""
    done = trials[(trials["status"] == "done") & trials["b_simple"].notna()]
    if done.empty:
        return math.nan, ""
    b0 = done["global_batch"].min()
    v = done.loc[done["global_batch"] == b0, "b_simple"].astype(float)
    return float(v.mean()), f"B_simple at B={int(b0)}: {v.mean():.0f}"


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return v
