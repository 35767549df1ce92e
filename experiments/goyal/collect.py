"""collect: raw run directories -> one small curated JSON per point (experiments/goyal/points/<profile>/);
analyse: curated points -> tables.md, results.json and the figures (experiments/goyal/figures/).
The curated files are what the README's numbers come from; the raw runs can be deleted."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import analysis as an
from protocol import ARMS, PROFILES, arm_of

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WINDOWS_PER_EPOCH = 8


def point_id(p: dict) -> str:
    s = f"B{p['global_batch']:05d}-{p['arm']}-s{p['seed']}"
    if p["epochs_override"]:
        s += f"-e{p['epochs']}"
    return s + (f"-emu{p['ranks']}" if p["ranks"] > 1 else "")


def windows(noise, steps_per_epoch: int) -> list[dict]:
    """Per 1/8 epoch: mean loss, lr, |G|^2 and tr(Sigma) estimates, and the steps in it."""
    if noise is None or noise.empty:
        return []
    size = max(1, steps_per_epoch // WINDOWS_PER_EPOCH)
    n = noise.sort_values("step").copy()
    n["w"] = n["step"] // size
    out = []
    for _, g in n.groupby("w"):
        last = int(g["step"].max())
        out.append({"step_end": last + 1, "epoch_end": round((last + 1) / steps_per_epoch, 4), "steps": int(len(g)),
                    "loss": float(g["loss"].mean()), "lr": float(g["lr"].mean()),
                    "grad_sqr": float(g["grad_sqr"].mean()), "grad_var": float(g["grad_var"].mean())})
    return out


def curate(run_dir: Path, profile, ranks: int, wall_time=None) -> dict | None:
    from scalesim.schema import RunDir

    run = RunDir(run_dir)
    if not run.exists():
        return None
    m = run.read_manifest()
    if m.get("status") != "done":
        return None
    c = m["config"]
    params = {"global_batch": int(c["batch"]), "lr_rule": c["lr_rule"], "warmup_epochs": float(c["warmup_epochs"])}
    ep = run.read_table("epochs").sort_values("epoch")
    spe = int(m["dataset"]["steps_per_epoch"])
    b, ref = params["global_batch"], profile.ref_batch
    peak = c["ref_lr"] * (b / ref if c["lr_rule"] == "linear" else 1.0)
    warm = round(params["warmup_epochs"] * spe) if peak > c["ref_lr"] else 0
    images = float((ep["steps"] * b).sum())
    p = {"profile": profile.name, "global_batch": b, "arm": arm_of(profile, params), "seed": int(c["seed"]),
         "epochs": int(c["epochs"]), "epochs_override": int(c["epochs"]) != profile.epochs, "ranks": ranks,
         "lr_rule": c["lr_rule"], "ref_lr": c["ref_lr"], "ref_batch": c["ref_batch"], "peak_lr": peak,
         "warmup_epochs": params["warmup_epochs"], "warmup_steps": warm, "decay_epochs": c["decay_epochs"],
         "ghost_batch": c["ghost_batch"], "arch": c["model"], "width": c["width"], "schedule": m.get("schedule"),
         "steps_per_epoch": spe, "train_examples": m["dataset"]["train_examples"],
         "hosts": m.get("hosts"), "threads_per_rank": m.get("threads_per_rank"),
         "test_error": 1.0 - float(ep["test_acc"].iloc[-1]),
         "epochs_table": [{k: float(r[k]) for k in ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
                                                     "elapsed")} for _, r in ep.iterrows()],
         "windows": windows(run.read_table("noise") if run.has_table("noise") else None, spe),
         "b_simple_run": (m.get("recording") or {}).get("b_simple"),
         "train_seconds": float(ep["elapsed"].sum()), "images_per_sec": images / float(ep["elapsed"].sum()),
         "wall_time": wall_time, "run_dir": str(run_dir)}
    p["id"] = point_id(p)
    return p


def run_times(run_dir: Path) -> tuple[str, float]:
    """(start, wall seconds) of a run: its manifest's creation, and from then to the manifest's last
    write (the final status)."""
    m = json.loads((run_dir / "manifest.json").read_text())
    return m["created"], (run_dir / "manifest.json").stat().st_mtime - _seconds(m["created"])


def _seconds(stamp: str) -> float:
    """'2026-12-02T00:42:19+0000' (manifests and sweep sessions) -> seconds since the epoch."""
    import datetime as dt

    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()


def cmd_collect(a) -> int:
    from scalesim.schema import write_json
    from scalesim.sweep import table

    profile = PROFILES[a.profile]
    out = Path(a.out or f"data/goyal-{profile.name}").resolve()
    dest = Path(a.points_dir or HERE / "points" / profile.name)
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    sweeps = sorted(d for d in out.glob("sweep*") if (d / "sweep.json").is_file())   # sweep, sweep-long, ...
    for sweep in sweeps:
        for r in table.read(sweep):
            if r["status"] == "done" and r.get("run_dir"):
                p = curate(sweep / r["run_dir"], profile, 1, float(r["wall_time"]))
                if p is not None:
                    write_json(dest / f"{p['id']}.json", p)
                    n += 1
    emulated = []
    for d in sorted((out / "emulated").glob("B*")) if (out / "emulated").is_dir() else []:
        if d.is_dir():
            started, elapsed = run_times(d)
            p = curate(d, profile, 2, elapsed)
            if p is not None:
                write_json(dest / f"{p['id']}.json", p)
                emulated.append({"id": p["id"], "started": started, "elapsed": elapsed})
                n += 1
    # a resume that found nothing to run is not study time
    sessions = [dict(s, sweep=d.name) for d in sweeps for s in json.loads((d / "sweep.json").read_text()).get("sessions", [])
                if s.get("trials_run", 1) > 0]
    write_json(dest / "_timing.json", {"sweep_sessions": sessions, "emulated": emulated})
    print(f"{n} points -> {dest}")
    return 0


def load_points(d: Path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted(d.glob("B*.json"))]


def cmd_analyse(a) -> int:
    from scalesim.schema import write_json

    profile = PROFILES[a.profile]
    d = Path(a.points_dir or HERE / "points" / profile.name)
    pts = load_points(d)
    if not pts:
        print(f"study.py: error: no curated points in {d} (run `study.py collect` first)", file=sys.stderr)
        return 2
    E, ref = profile.epochs, profile.ref_batch
    base = an.baseline(pts, ref, E)
    rows = an.table(pts, ref, E)
    brk = {arm: an.break_batch(rows, base["cell"], arm) for arm in "bc"}
    noise = an.noise_scale(pts, ref, E, profile.decay_epochs[0])
    emu = an.emulated_pairs(pts, E)
    timing = json.loads((d / "_timing.json").read_text()) if (d / "_timing.json").is_file() else {}
    md = markdown(profile, base, rows, brk, noise, emu, timing)
    (d / "tables.md").write_text(md)
    write_json(d / "results.json", {"baseline": _plain(base), "table": _plain(rows), "break": _plain(brk),
                                    "noise": _plain({**noise, "by_batch": {f"{k[0]}-{k[1]}": v for k, v in
                                                                           noise["by_batch"].items()}}),
                                    "emulated": _plain(emu), "timing": timing})
    figures(profile, pts, rows, base, noise, brk, d / "figures")
    print(md)
    return 0


def _plain(x):
    if isinstance(x, an.Cell):
        return {"mean": _f(x.mean), "std": _f(x.std), "n": x.n}
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return _f(x) if isinstance(x, float) else x


def _f(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def study_seconds(timing: dict) -> tuple[float, float]:
    """(wall-clock span from the first part's start to the last part's end, sum of the parts' own
    times): the parts may overlap (the checks ran beside the main sweep)."""
    spans = [(_seconds(x["started"]), float(x["elapsed"]))
             for x in [*timing.get("sweep_sessions", []), *timing.get("emulated", [])] if x.get("started")]
    if not spans:
        return math.nan, math.nan
    return max(a + e for a, e in spans) - min(a for a, _ in spans), sum(e for _, e in spans)


def markdown(profile, base, rows, brk, noise, emu, timing) -> str:
    E, ref = profile.epochs, profile.ref_batch
    L = [f"# Goyal study, profile `{profile.name}` (generated by `study.py analyse`)", ""]
    L.append(f"Baseline B_ref = {ref}, {E} epochs: test error {base['cell'].text()} %; seeds "
             + ", ".join(f"{s}: {v:.2f}" for s, v in sorted(base["by_seed"].items())) + ".")
    if "long_error" in base:
        L.append(f"Same run (seed {base['long_seed']}) trained {2 * E} epochs: {base['long_error']:.2f} %; "
                 f"gap {base['long_gap']:+.2f} points ({'within' if base['trained'] else 'NOT within'} 0.5).")
    if len(base.get("series", {})) > 2:
        L.append("Baseline (first seed) by epoch budget: " + ", ".join(
            f"{e} epochs {v:.2f} %" for e, v in sorted(base["series"].items())) + ".")
    L += ["", "## Table 1 form: test error (%), mean ± std over seeds", "",
          "| global batch | B / B_ref | η peak | steps | warmup steps (c) | (a) " + ARMS["a"] + " | (b) " + ARMS["b"]
          + " | (c) " + ARMS["c"] + " |", "|---:|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        same = " (baseline)" if r["global_batch"] == ref else ""
        L.append(f"| {r['global_batch']} | {r['global_batch'] // ref} | {r['peak_lr']:.3g} | {r['steps']} | "
                 f"{r['warmup_steps']} | {r['a'].text()}{same} | {r['b'].text()}{same} | {r['c'].text()}{same} |")
    L += ["", "## Where the rule breaks, and the noise scale", ""]
    w, pk = noise["whole"], noise["peak_phase"]
    L.append(f"B_simple of the baseline, whole run: {w.text()}; at the peak rate (epochs 0-{profile.decay_epochs[0]:g}, "
             f"before the first decay): {pk.text()}; per epoch: "
             + ", ".join(f"{c.mean:.0f}" for c in noise["per_epoch"]) + " (late epochs: |G|² near 0, the ratio is noise).")
    for arm in "cb":
        b = brk[arm]
        L.append(f"- arm ({arm}): break (> baseline + 1 pt = {b['1pt_limit']:.2f} %) at B = {b['1pt']} "
                 f"(last batch within: {b['1pt_last_ok']}), ratio to B_simple: whole run {an.ratio_text(b['1pt'], w.mean)}, "
                 f"peak phase {an.ratio_text(b['1pt'], pk.mean)}; "
                 f"break (> baseline mean + 2 std = {b['spread_limit']:.2f} %) at B = {b['spread']} "
                 f"(last within: {b['spread_last_ok']}), ratio: whole run {an.ratio_text(b['spread'], w.mean)}, "
                 f"peak phase {an.ratio_text(b['spread'], pk.mean)}.")
    L += ["", "| global batch | arm | B_simple whole run (mean ± std) |", "|---:|---|---|"]
    for (b, arm), c in noise["by_batch"].items():
        L.append(f"| {b} | {arm} | {c.text()} |")
    if emu:
        L += ["", "## Emulated nodes (2 nodes, 1 Horovod rank each) vs one process", "",
              "| global batch | arm | test error: 2 nodes | one process | final train loss: 2 nodes | one process "
              "| B_simple: 2 nodes | one process | images/s: 2 nodes | one process |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for e in emu:
            L.append(f"| {e['global_batch']} | {e['arm']} | {e['emulated_error']:.2f} | {e['one_process_error']:.2f} | "
                     f"{e['emulated_loss']:.4f} | {e['one_process_loss']:.4f} | {e['emulated_b_simple']:.0f} | "
                     f"{e['one_process_b_simple']:.0f} | {e['emulated_images_per_sec']:.0f} | "
                     f"{e['one_process_images_per_sec']:.0f} |")
    if timing:
        span, total = study_seconds(timing)
        L += ["", f"Study wall time: {span / 60:.1f} min from the first trial's start to the last run's end "
                  f"(the parts' own times add up to {total / 60:.1f} min; parts ran side by side)."]
    return "\n".join(L) + "\n"


def figures(profile, pts, rows, base, noise, brk, dest: Path) -> None:
    """Figure 1 form (training loss vs epoch, B_ref vs the largest batches with and without warmup)
    and test error vs batch with B_simple marked, as PNGs (Altair + vl-convert)."""
    import altair as alt
    import pandas as pd

    dest.mkdir(parents=True, exist_ok=True)
    E, ref = profile.epochs, profile.ref_batch
    main = an.main_points(pts, E)
    big = sorted({p["global_batch"] for p in main})[-2:]
    curves = []
    for p in main:
        if p["global_batch"] == ref or (p["global_batch"] in big and p["arm"] in "bc"):
            label = f"B={p['global_batch']} " + ("baseline" if p["arm"] == "ref" else f"({p['arm']}) {ARMS[p['arm']]}")
            curves += [{"run": label, "seed": p["seed"], "epoch": w["epoch_end"], "loss": w["loss"]} for w in p["windows"]]
    cdf = pd.DataFrame(curves).groupby(["run", "epoch"], as_index=False)["loss"].mean()
    fig1 = alt.Chart(cdf).mark_line().encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("loss:Q", title="training loss (mean over seeds, 1/8-epoch windows)",
                                                    scale=alt.Scale(type="log")),
        color=alt.Color("run:N", title=None, legend=alt.Legend(orient="bottom", columns=2, labelLimit=400))
    ).properties(width=520, height=300, title=f"Figure 1 form: training loss, B_ref = {ref} vs large batches")
    fig1.save(str(dest / "fig1-training-loss.png"), scale_factor=1.5)
    tab = []
    for r in rows:
        for arm in "abc":
            c = r[arm]
            if c.n:
                sd = c.std if math.isfinite(c.std) else 0.0
                tab.append({"global_batch": r["global_batch"], "arm": f"({arm}) {ARMS[arm]}", "err": c.mean,
                            "lo": c.mean - sd, "hi": c.mean + sd, "n": c.n})
    tdf = pd.DataFrame(tab)
    xs = alt.X("global_batch:Q", title="global batch", scale=alt.Scale(type="log", base=2),
               axis=alt.Axis(values=[float(r["global_batch"]) for r in rows], format="~g"))
    lines = alt.Chart(tdf).mark_line(point=True).encode(
        x=xs, y=alt.Y("err:Q", title="test error (%)", scale=alt.Scale(zero=False)),
        color=alt.Color("arm:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=400)))
    bars = alt.Chart(tdf).mark_errorbar(ticks=True).encode(x=xs, y=alt.Y("lo:Q", title="test error (%)"), y2="hi:Q",
                                                           color="arm:N")
    w = noise["whole"]
    pk = noise["peak_phase"]
    marks = pd.DataFrame([{"x": w.mean, "label": f"B_simple whole run {w.mean:.0f}"},
                          {"x": pk.mean, "label": f"B_simple at peak rate {pk.mean:.0f}"}])
    marks = marks[marks["x"].apply(lambda v: math.isfinite(v) and v > 0)]
    rule = alt.Chart(marks).mark_rule(color="black", strokeDash=[4, 3]).encode(x="x:Q")
    marks = marks.assign(ypix=[8 + 14 * i for i in range(len(marks))])
    text = alt.Chart(marks).mark_text(align="left", dx=4).encode(x="x:Q", text="label:N",
                                                                 y=alt.Y("ypix:Q", scale=None))
    limit = alt.Chart(pd.DataFrame([{"y": base["cell"].mean + 1.0}])).mark_rule(color="grey").encode(y="y:Q")
    fig2 = (bars + lines + rule + text + limit).properties(
        width=520, height=320, title=alt.TitleParams("Test error vs global batch (mean ± std over seeds)",
                                                     subtitle="grey: baseline + 1 point; dashed: measured B_simple"))
    fig2.save(str(dest / "error-vs-batch.png"), scale_factor=1.5)
