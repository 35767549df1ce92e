#!/usr/bin/env python
"""Goyal et al. 2017 (linear scaling + gradual warmup) at small scale, and a test of the
gradient-noise-scale model of scalesim.model.stateff against it. See README.md.

    python experiments/goyal/run.py                  the full study -> data/goyal/  (resumable)
    python experiments/goyal/run.py --quick --out D  a few-minute version proving the pipeline
    python experiments/goyal/run.py --analyse-only   re-derive the tables from finished points

Every finished point is one JSON file under <out>/points/, written atomically; a re-run skips
points that have one, so an interrupted study continues where it stopped. The Horovod point runs
this script under horovodrun (--worker) on real ranks.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO)]

from goyal_protocol import FULL, QUICK, Point, plan  # noqa: E402
from scalesim.schema import read_json, write_json  # noqa: E402
from scalesim.train import hvdrun  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def die(msg: str):
    print(f"run.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def point_path(out: Path, point: Point) -> Path:
    return out / "points" / f"{point.id}.json"


def is_done(out: Path, point: Point) -> bool:
    p = point_path(out, point)
    try:
        return p.is_file() and read_json(p).get("status") == "done"
    except Exception:   # a truncated file cannot exist (atomic writes), but never trust it blindly
        return False


def check_protocol(out: Path, proto) -> None:
    f = out / "protocol.json"
    want = {**proto._asdict(), "plan": [pt.id for pt in plan(proto)]}
    want = json.loads(json.dumps(want))   # compare as stored: tuples become lists
    if f.is_file():
        have = read_json(f)
        # targets only change the analysis, so they may be revised without re-training
        diff = sorted(k for k in want if k not in ("plan", "targets") and have.get(k) != want[k])
        if diff:
            die(f"{out} holds points of a different protocol (differs in {', '.join(diff)}); use another --out")
    write_json(f, want)


def run_hvd(point: Point, out: Path, quick: bool, timeout: float) -> bool:
    cmd = [hvdrun.horovodrun_path(), "-np", str(point.ranks), "-H", f"localhost:{point.ranks}", "--gloo",
           sys.executable, str(Path(__file__).resolve()), "--worker", point.id, "--out", str(out)]
    if quick:
        cmd.append("--quick")
    log(f"{point.id}: {' '.join(cmd)}")
    try:
        r = subprocess.run(cmd, env=hvdrun.rank_env(), timeout=timeout, stdout=sys.stdout, stderr=subprocess.STDOUT)
    except subprocess.TimeoutExpired:
        log(f"{point.id}: horovodrun timed out after {timeout:.0f} s")
        return False
    return r.returncode == 0 and is_done(out, point)


def worker(args, proto) -> int:
    """Rank body under horovodrun: one thread per rank, rank 0 writes the point."""
    import horovod.tensorflow as hvd

    hvd.init()
    hvdrun.configure_tf_threads(1, hvd.local_size())
    point = next(pt for pt in plan(proto) if pt.id == args.worker)
    import goyal_driver as driver

    rec = driver.train_point(proto, point, driver.load_data(proto), hvd=hvd, log=log)
    if hvd.rank() == 0:
        write_json(point_path(Path(args.out), point), rec)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny protocol for CI (minutes)")
    ap.add_argument("--out", help="results directory (default data/goyal, or test-artifacts/goyal-quick)")
    ap.add_argument("--only", help="comma-separated point ids to run (default: the whole plan)")
    ap.add_argument("--no-hvd", action="store_true", help="skip the real multi-rank Horovod point")
    ap.add_argument("--analyse-only", action="store_true", help="no training; rebuild tables")
    ap.add_argument("--hvd-timeout", type=float, default=1800.0)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    proto = QUICK if args.quick else FULL
    out = Path(args.out or (REPO / ("test-artifacts/goyal-quick" if args.quick else "data/goyal")))
    if args.worker:
        return worker(args, proto)
    out.mkdir(parents=True, exist_ok=True)
    check_protocol(out, proto)
    todo = plan(proto)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {pt.id for pt in todo}
        if unknown:
            die(f"unknown point id(s) {', '.join(sorted(unknown))}; see {out / 'protocol.json'} for the plan")
        todo = [pt for pt in todo if pt.id in wanted]
    if args.no_hvd:
        todo = [pt for pt in todo if pt.ranks == 1]
    failed, data, t_start = [], None, time.time()
    if not args.analyse_only:
        log(f"protocol {proto.name}: {len(todo)} points, out {out}")
        for i, pt in enumerate(todo):
            if is_done(out, pt):
                log(f"[{i + 1}/{len(todo)}] {pt.id}: done already, skipped")
                continue
            log(f"[{i + 1}/{len(todo)}] {pt.id}: start")
            if pt.ranks > 1:
                ok = run_hvd(pt, out, args.quick, args.hvd_timeout)
            else:
                import goyal_driver as driver

                try:
                    data = data or driver.load_data(proto)
                    rec = driver.train_point(proto, pt, data, log=log)
                    write_json(point_path(out, pt), rec)
                    ok = True
                except Exception as e:   # keep going: the point stays pending for the next run
                    log(f"{pt.id}: FAILED {type(e).__name__}: {e}")
                    ok = False
            if ok:
                rec = read_json(point_path(out, pt))
                log(f"[{i + 1}/{len(todo)}] {pt.id}: test error {rec['test_err']:.2f} % "
                    f"({rec['wall_s']:.0f} s, {rec['images_per_s'] or 0:.0f} img/s"
                    f"{', DIVERGED' if rec['diverged'] else ''})")
            else:
                failed.append(pt.id)
        log(f"training finished in {time.time() - t_start:.0f} s; failed: {failed or 'none'}")
    import goyal_analysis as analysis

    summary = analysis.analyse(out, proto)
    log("analysis written: " + ", ".join(summary["files"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
