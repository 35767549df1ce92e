"""A grid sweep read as Goyal et al. 2017 read theirs: the objective as mean ± std over seeds by
global batch and arm (their Table 1), the training-loss curves of the smallest batch beside the
largest batches for every arm (their Figure 1), and the gradient noise scale B_simple each trial
measured while it trained (McCandlish et al. 2018), to mark on the objective-vs-batch chart."""
from __future__ import annotations

import math
from pathlib import Path

WINDOWS = 48          # points per training-loss curve


def arm_table(trials):
    """(header, rows): one row per global batch, one 'mean ± std (n)' cell per arm."""
    done = trials[trials["status"] == "done"]
    if done.empty or "global_batch" not in done:
        return [], []
    arms = sorted(done["arm"].unique())
    rows = []
    for b, g in done.groupby("global_batch"):
        cells = []
        for a in arms:
            v = g.loc[g["arm"] == a, "objective"].astype(float)
            v = v[v.notna()]
            cells.append("" if v.empty else f"{v.mean():.4f}" + (f" ± {v.std():.4f}" if len(v) > 1 else "")
                         + f" (n={len(v)})")
        rows.append([int(b), *cells])
    return ["global batch", *arms], rows


def trial_manifests(sweep_path: Path, trials) -> list:
    """Each finished trial's run manifest, read once for the whole report (None where there is none,
    or it cannot be read: a trial's damaged run directory leaves a gap, not a failed report)."""
    from ..errors import DataError
    from ..schema import RunDir

    out = []
    for r in trials.to_dict("records"):
        m = None
        if r.get("status") == "done" and r.get("run_dir"):
            try:
                m = RunDir(Path(sweep_path) / r["run_dir"]).read_manifest()
            except (DataError, OSError):
                pass
        out.append(m)
    return out


def b_simple_of(manifest) -> float:
    """B_simple over a trial's whole run (its manifest's recording), NaN where absent."""
    try:
        return float(((manifest or {}).get("recording") or {}).get("b_simple") or math.nan)
    except (TypeError, ValueError):
        return math.nan


def loss_curves(sweep_path: Path, trials, manifests):
    """Training loss per window (mean over seeds) vs epoch for the smallest global batch and the
    two largest, every arm; from each trial's per-step `noise` table (its loss column)."""
    import pandas as pd

    from ..schema import RunDir

    done = trials[trials["status"] == "done"]
    if done.empty or "global_batch" not in done:
        return pd.DataFrame(columns=["run", "epoch", "loss"])
    batches = sorted(done["global_batch"].unique())
    keep = {batches[0], *batches[-2:]}
    rows = []
    for r, m in zip(trials.to_dict("records"), manifests):
        if r.get("status") != "done" or r.get("global_batch") not in keep or m is None:
            continue
        run = RunDir(Path(sweep_path) / r["run_dir"])
        spe = int((m.get("dataset") or {}).get("steps_per_epoch") or 0)
        if spe <= 0 or not run.has_table("noise"):
            continue
        n = run.read_table("noise").sort_values("step")
        if n.empty:
            continue
        size = max(1, len(n) // WINDOWS)
        n["w"] = n["step"] // size
        g = n.groupby("w").agg(step=("step", "max"), loss=("loss", "mean"))
        label = f"B={int(r['global_batch'])} {r['arm']}"
        rows += [{"run": label, "epoch": (s + 1) / spe, "loss": float(v)} for s, v in zip(g["step"], g["loss"])]
    df = pd.DataFrame(rows, columns=["run", "epoch", "loss"])
    return df.groupby(["run", "epoch"], as_index=False)["loss"].mean() if not df.empty else df


def loss_chart(curves):
    import altair as alt

    return alt.Chart(curves).mark_line().encode(
        x=alt.X("epoch:Q", title="epoch"),
        y=alt.Y("loss:Q", title="training loss (mean over seeds)", scale=alt.Scale(type="log")),
        color=alt.Color("run:N", title=None), tooltip=["run:N", alt.Tooltip("epoch:Q", format=".2f"),
                                                       alt.Tooltip("loss:Q", format=".4f")]
    ).properties(width=520, height=300, title=alt.TitleParams(
        "training loss: smallest vs largest global batches", subtitle="Goyal et al. 2017, Figure 1 form",
        anchor="start"))


def noise_rule(b_simple: float, label: str):
    """A dashed vertical rule at the measured noise scale, for the objective-vs-batch chart."""
    import altair as alt
    import pandas as pd

    d = pd.DataFrame([{"x": b_simple, "label": label}])
    rule = alt.Chart(d).mark_rule(color="black", strokeDash=[4, 3]).encode(x="x:Q")
    return rule + alt.Chart(d).mark_text(align="left", dx=4, y=10).encode(x="x:Q", text="label:N")


def sweep_answer(sweep) -> str:
    """One sentence per grid sweep: how far the global batch grew before the objective left the
    smallest batch's (by more than 1 point of an error, or 1 % of a loss), for each arm."""
    trials, objective = sweep.trials, sweep.spec.objective
    done = trials[trials["status"] == "done"] if not trials.empty else trials
    if done.empty or "global_batch" not in done or done["global_batch"].nunique() < 2:
        return ""
    means = done.groupby(["arm", "global_batch"])["objective"].mean().astype(float)
    b0 = int(done["global_batch"].min())
    # the reference is an arm that also ran at larger batches (not, say, a longer check of one batch only)
    multi = [a for a, g in means.groupby(level="arm") if len(g) > 1]
    ref = means.xs(b0, level="global_batch")
    ref = ref[ref.index.isin(multi)] if ref.index.isin(multi).any() else ref
    if ref.empty:
        return ""
    base = float(ref.min())
    tol = 0.01 if objective.endswith("error") else 0.01 * abs(base)
    said = []
    for arm_name, g in means.groupby(level="arm"):
        g = g.droplevel("arm").sort_index()
        g = g[g.index > b0]
        if g.empty:
            continue
        over = g[g > base + tol]
        ok = g[g <= base + tol]
        first_bad = int(over.index[0]) if not over.empty else None
        last_ok = [int(b) for b in ok.index if first_bad is None or b < first_bad]
        said.append(f"{arm_name}: " + (f"held to B = {last_ok[-1]}" if last_ok else "no larger batch held")
                    + (f", broke at {first_bad} ({g[first_bad]:.4f})" if first_bad else " (no break in the grid)"))
    what = "1 point" if objective.endswith("error") else "1 %"
    return (f"Sweep {sweep.path.name}: against the best {objective} at the smallest global batch B = {b0} "
            f"({base:.4f}), a batch holds while its mean over seeds stays within {what}. " + "; ".join(said) + ".")
