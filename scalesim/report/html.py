"""`scalesim report RUN_DIR... [--model M] [--validation CSV] [--prediction JSON] --out R.html [--png]`:
one self-contained HTML file (opens offline) with the charts the inputs allow."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

from ..errors import DataError, UsageError


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="*", metavar="RUN_DIR",
                   help="run directories written by `scalesim measure` or `train`")
    p.add_argument("--model", "-m", metavar="M", help="model file from `scalesim fit` (fitted lines and intervals)")
    p.add_argument("--validation", metavar="CSV",
                   help="CSV from `scalesim validate --out` (measured, predicted columns)")
    p.add_argument("--prediction", metavar="JSON", help="JSON from `scalesim predict --json` (time-to-target grid)")
    p.add_argument("--out", "-o", metavar="HTML", help="output file (default reports/<first run id>.html)")
    p.add_argument("--png", action="store_true", help="also write each chart as <out stem>-<chart>.png")
    p.add_argument("--title", help="report title (default: the run ids)")


def _out_path(args, runs) -> Path:
    if args.out:
        out = Path(args.out)
    else:
        stem = runs.manifests[0][0] if runs.manifests else "report"
        out = Path("reports") / f"{stem}.html"
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory; give a file name such as {out / 'report.html'}")
    if out.parent.exists() and not out.parent.is_dir():
        raise UsageError(f"--out {out}: {out.parent} is not a directory")
    return out


def write_pngs(sections, out: Path) -> list:
    import vl_convert as vlc

    written = []
    for s in sections:
        for name, spec in s.charts:
            png = out.with_name(f"{out.stem}-{name}.png")
            png.write_bytes(vlc.vegalite_to_png(spec, scale=2))
            written.append(png)
    return written


def run(args) -> int:
    from ..schema import atomic_write_bytes
    from . import inputs, page, sections

    if not (args.runs or args.model or args.validation or args.prediction):
        raise UsageError("give at least one run directory (or --model / --validation / --prediction)")
    runs = inputs.load_runs(args.runs)
    model = inputs.load_model(args.model) if args.model else None
    val = inputs.load_validation(args.validation) if args.validation else None
    pred = inputs.load_prediction(args.prediction) if args.prediction else None
    out = _out_path(args, runs)

    secs = sections.all_sections(runs, model, args.model, val, pred)
    ids = [r[0] for r in runs.manifests]
    title = args.title or ("scalesim report: " + (", ".join(ids) if ids else "model and predictions"))
    used = [f"runs: {', '.join(args.runs)}" if args.runs else None, f"model: {args.model}" if args.model else None,
            f"validation: {args.validation}" if args.validation else None,
            f"prediction: {args.prediction}" if args.prediction else None]
    from .. import __version__

    subtitle = (f"generated {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} by scalesim "
                f"{__version__} from " + "; ".join(u for u in used if u))
    text = page.render(title, subtitle, secs)
    try:
        atomic_write_bytes(out, text.encode("utf-8"))
        out.chmod(0o644)  # the atomic writer's temp file is private; a report is for sharing
        pngs = write_pngs(secs, out) if args.png else []
    except OSError as e:
        raise DataError(f"cannot write {out}: {e.strerror or e}")
    n_charts = sum(len(s.charts) for s in secs)
    missing = [n for s in secs for n in s.notes]
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {n_charts} charts"
          + (f", {len(pngs)} PNG" if pngs else "") + ")")
    for n in missing:
        print(f"  note: {n}")
    return 0
