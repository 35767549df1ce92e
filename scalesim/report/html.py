"""`scalesim report`: one self-contained HTML file (opens offline) with the charts the inputs allow."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, UsageError


@dataclass(frozen=True)
class ReportRequest:
    runs: list                      # run directories
    model: str | None = None        # model file
    validation: str | None = None   # CSV from `validate --out`
    prediction: str | None = None   # JSON from `predict --json`
    out: str | None = None
    png: bool = False
    title: str | None = None
    answer: object = None           # answer.AnswerRequest: the target the first section answers


def _out_path(req, runs) -> Path:
    if req.out:
        out = Path(req.out)
    else:
        stem = runs.manifests[0][0] if runs.manifests else "report"
        out = Path("reports") / f"{stem}.html"
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory; give a file name such as {out / 'report.html'}")
    if out.parent.exists() and not out.parent.is_dir():
        raise UsageError(f"--out {out}: {out.parent} is not a directory")
    return out


def _answer(req: ReportRequest, model, runs, sweeps=()):
    from . import answer, frames
    from .arms import sweep_answer

    ask = req.answer or answer.AnswerRequest()
    if ask.asked and model is None:
        raise UsageError("a target (--target-time / --target-steps / --target-epochs / --target-metric) needs "
                         "--model: the recommendation comes from the fitted model")
    return answer.section(ask, model, frames.config_summary(runs.tables["steps"]), runs.manifests,
                          [t for sw in sweeps for t in [sweep_answer(sw)] if t])


def write_pngs(sections, out: Path) -> list:
    import vl_convert as vlc

    written = []
    for s in sections:
        for name, spec in s.charts:
            png = out.with_name(f"{out.stem}-{name}.png")
            png.write_bytes(vlc.vegalite_to_png(spec, scale=2))
            written.append(png)
    return written


def write_report(req: ReportRequest) -> int:
    from ..schema import atomic_write_bytes
    from . import inputs, page, sections

    if not (req.runs or req.model or req.validation or req.prediction):
        raise UsageError("give at least one run directory (or --model / --validation / --prediction)")
    if req.out:
        from ..schema import check_output

        check_output(req.out, [*req.runs, req.model, req.validation, req.prediction])
    from .sweep import load_sweep, pool, split_sweeps, sweep_sections

    from .timeline import split_timelines

    timeline_paths, rest = split_timelines(req.runs)
    sweep_paths, run_paths = split_sweeps(rest)
    sweeps = pool([load_sweep(p) for p in sweep_paths])
    runs = inputs.load_runs(run_paths)
    model = inputs.load_model(req.model) if req.model else None
    val = inputs.load_validation(req.validation) if req.validation else None
    pred = inputs.load_prediction(req.prediction) if req.prediction else None
    if timeline_paths and not run_paths and not req.out:
        req = ReportRequest(req.runs, req.model, req.validation, req.prediction,
                            f"reports/{Path(timeline_paths[0]).stem}.html", req.png, req.title, req.answer)
    out = _out_path(req, runs) if run_paths or not sweeps else _out_path(
        ReportRequest(req.runs, out=req.out or f"reports/{sweeps[0].path.resolve().name}.html"), runs)

    secs = sweep_sections(sweeps) + (sections.all_sections(runs, model, req.model, val, pred)
                                     if run_paths or model or val or pred else [])
    if timeline_paths:
        from . import timeline

        secs.append(timeline.section(timeline_paths))
    secs = [_answer(req, model, runs, sweeps)] + secs  # the answer comes first, before any chart
    ids = [sw.path.resolve().name for sw in sweeps] + [r[0] for r in runs.manifests]
    title = req.title or ("scalesim report: " + (", ".join(ids) if ids else "model and predictions"))
    used = [f"runs: {', '.join(req.runs)}" if req.runs else None, f"model: {req.model}" if req.model else None,
            f"validation: {req.validation}" if req.validation else None,
            f"prediction: {req.prediction}" if req.prediction else None]
    from .. import __version__

    subtitle = (f"generated {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} by scalesim "
                f"{__version__} from " + "; ".join(u for u in used if u))
    text = page.render(title, subtitle, secs)
    try:
        atomic_write_bytes(out, text.encode("utf-8"))
        out.chmod(0o644)  # the atomic writer's temp file is private; a report is for sharing
        pngs = write_pngs(secs, out) if req.png else []
    except OSError as e:
        raise DataError(f"cannot write {out}: {e.strerror or e}")
    n_charts = sum(len(s.charts) for s in secs)
    missing = [n for s in secs for n in s.notes]
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {n_charts} charts"
          + (f", {len(pngs)} PNG" if pngs else "") + ")")
    for n in missing:
        print(f"  note: {n}")
    return 0
