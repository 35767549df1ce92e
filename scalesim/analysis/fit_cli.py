"""`scalesim fit <run-dir or trace.csv>... --out model.json`: fit the performance and statistical-efficiency
models and write the model file (scalesim.analysis.modelfile)."""
from __future__ import annotations

import argparse
import math

from ..errors import UsageError
from ..model.perf import ALGORITHMS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="run directories, throughput traces or training curves (CSV; see docs/formats.md)")
    p.add_argument("--out", required=True, metavar="FILE", help="model JSON to write")
    p.add_argument("--holdout", metavar="EXPR",
                   help="leave matching configurations out of the fit, e.g. 'num_replicas>4' or "
                        "'num_nodes>2 and local_batch<64' (columns: num_nodes, num_replicas, replicas_per_node, "
                        "local_batch, global_batch, placement)")
    p.add_argument("--bootstrap", type=int, default=50, metavar="N",
                   help="bootstrap refits for parameter intervals (default 50; 0 = none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--starts", type=int, default=4, metavar="K", help="optimizer starts (default 4)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="pin a parameter instead of fitting it, e.g. --fix bw_inter=1.25e9 (repeatable)")
    # One machine is the common case: fit what the data identify and mark the rest unknown (predict
    # then refuses configurations that need them) unless --strict asks for a refusal up front.
    p.add_argument("--strict", action="store_true",
                   help="refuse when the data cannot identify every parameter (default: fit what they "
                        "identify, mark the rest unknown and say so)")
    p.add_argument("--partial", action="store_true", help=argparse.SUPPRESS)  # the default; kept for old scripts
    p.add_argument("--target", type=float, metavar="VALUE",
                   help="training-curve metric value that counts as reached (default: the least good of the "
                        "runs' best values, so every run reaches it)")
    p.add_argument("--algorithm", choices=ALGORITHMS, default="ring", help="allreduce algorithm (default ring)")


def parse_fix(items) -> dict:
    out = {}
    for it in items:
        name, sep, value = it.partition("=")
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if not sep or not name.strip() or not math.isfinite(v) or v < 0:
            raise UsageError(f"--fix needs NAME=VALUE with a non-negative number, got {it!r}")
        out[name.strip()] = v
    return out


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def _param_line(name, value, intervals, fitted) -> str:
    iv = intervals.get(name)
    tag = f"[{iv[0]:.4g}, {iv[1]:.4g}]" if iv else ("fitted" if name in fitted else "fixed")
    if iv and iv[0] > 0 and iv[1] / iv[0] > 100:
        tag += "  poorly identified by these data"
    return f"  {name:15s} {_fmt(value):>12}  {tag}"


def summary(m) -> str:
    d, q = m.data, m.quality
    lines = [f"fitted {d['rows']} configurations" + (f" + {d['allreduce_rows']} allreduce benchmark rows"
                                                       if d.get("allreduce_rows") else "")
             + (f"; {d['held_out_rows']} held out by {d['holdout']!r}" if d.get("holdout") else "")]
    lines += [f"  in-sample MAPE {k}: {v['mape']:.1f} % over {v['n']}" for k, v in q.items()]
    lines.append("parameters (90 % bootstrap interval):")
    fitted = set(m.meta.get("fitted", []))
    values = {**m.perf.compute._asdict(), **m.perf.comm._asdict(), "gamma": m.perf.gamma}
    lines += [_param_line(k, v, m.intervals, fitted) for k, v in values.items() if k not in ("grad_bytes", "algorithm")]
    if not m.meta.get("grad_bytes_known"):
        lines.append("  (gradient size unknown: bw_* are in gradients/s, i.e. M/bw is the fitted quantity)")
    lines += [f"  note: {note}" for note in m.meta.get("notes", [])]
    if m.stateff:
        s = m.stateff
        lines.append(f"statistical efficiency ({s['method']}): B_noise = {_fmt(s.get('b_noise'))}, "
                     f"S_min = {_fmt(s.get('s_min'))}")
    return "\n".join(lines)


def run(args) -> int:
    from . import modelfile
    from .fit import fit

    if args.bootstrap < 0 or args.starts < 1:
        raise UsageError("--bootstrap must be >= 0 and --starts >= 1")
    m = fit(args.sources, holdout=args.holdout, bootstrap=args.bootstrap, seed=args.seed,
            fixed=parse_fix(args.fix), partial=not args.strict, target=args.target, starts=args.starts,
            algorithm=args.algorithm)
    modelfile.save(m, args.out)
    print(summary(m))
    print(f"wrote {args.out}")
    return 0
