#!/usr/bin/env python
"""Goyal et al. 2017 at small scale: run, collect, analyse. See README.md.

    python experiments/goyal/study.py run [--profile cpu|gpu|gpu56|quick | --gpu] [--out DIR] [--no-emulated]
    python experiments/goyal/study.py collect [--profile P] [--out DIR] [--points-dir D]
    python experiments/goyal/study.py analyse [--profile P] [--points-dir D]

`run` is resumable point by point: the points run as one `scalesim sweep --points` (a re-run resumes
it, `scalesim sweep --resume`, re-running only unfinished trials), then the emulated-node points
(each a `scalesim train` on 2 emulated nodes, skipped when its run directory is done). Raw runs
live under DIR (default data/goyal-<profile>/, not in git); `collect` writes one small curated
JSON per point into experiments/goyal/points/<profile>/ and `analyse` builds the tables and
figures from those files alone.
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

from protocol import PROFILES, parts, sweep_args, train_args  # noqa: E402

VENV_BIN = Path(sys.executable).parent if (Path(sys.executable).parent / "scalesim").exists() \
    else REPO / ".venv" / "bin"   # not resolved: a venv's python links to the base interpreter
SCALESIM = str(VENV_BIN / "scalesim")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_sweep(profile, out: Path, name: str, pts: list, parallel: int | None = None) -> int:
    sweep = out / name
    if (sweep / "sweep.json").is_file():
        log(f"resuming {sweep}")
        cmd = [SCALESIM, "sweep", "--resume", str(sweep)]
    else:
        out.mkdir(parents=True, exist_ok=True)
        f = out / f"points{name[len('sweep'):]}.json"
        f.write_text(json.dumps(pts, indent=1) + "\n")
        cmd = [SCALESIM, "sweep", "--points", str(f), "--out", str(sweep), *sweep_args(profile, parallel)]
    log(" ".join(cmd))
    return subprocess.call(cmd, cwd=REPO)


def run_done(run_dir: Path) -> bool:
    try:
        return json.loads((run_dir / "manifest.json").read_text()).get("status") == "done"
    except (OSError, ValueError):
        return False


def emulated_dir(out: Path, batch: int, arm: str, seed: int, attempt: int = 1) -> Path:
    return out / "emulated" / (f"B{batch:05d}-{arm}-s{seed}" + (f"-a{attempt}" if attempt > 1 else ""))


def run_emulated(profile, out: Path) -> int:
    """Each point on 2 emulated nodes (network namespaces, shaped link, sshd), 1 Horovod rank each."""
    todo = []
    for batch, arm in profile.emulated:
        attempt = 1                # a failed attempt is kept, the next one gets a fresh directory
        while emulated_dir(out, batch, arm, 0, attempt).exists():
            if run_done(emulated_dir(out, batch, arm, 0, attempt)):
                break
            attempt += 1
        else:
            todo.append((batch, arm, attempt))
    if not todo:
        return 0
    up = subprocess.run([SCALESIM, "cluster", "up", "--nodes", "2", "--link", profile.emulated_link,
                         "--cores-per-node", "1", "--json"], cwd=REPO, capture_output=True, text=True)
    if up.returncode:
        log(f"cluster up failed: {up.stderr.strip()}")
        return up.returncode
    cid = json.loads(up.stdout)["cluster_id"]
    rc = 0
    try:
        for batch, arm, attempt in todo:
            d = emulated_dir(out, batch, arm, 0, attempt)
            d.parent.mkdir(parents=True, exist_ok=True)
            cmd = [SCALESIM, "cluster", "exec", "--id", cid, "h1", "--", SCALESIM, "train", "--hosts", "h1:1,h2:1",
                   *train_args(profile, batch, arm, 0), "--out", str(d)]
            log(" ".join(cmd))
            t0 = time.time()
            with open(str(d) + ".log", "w") as f:
                r = subprocess.call(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
            log(f"emulated B={batch} arm {arm}: rc {r}, {time.time() - t0:.0f} s")
            rc = rc or r
    finally:
        subprocess.call([SCALESIM, "cluster", "down", "--id", cid], cwd=REPO)
    return rc


def cmd_run(a) -> int:
    profile = PROFILES[a.profile]
    out = Path(a.out or f"data/goyal-{profile.name}").resolve()
    t0 = time.time()
    rc = 0
    for name, pts in parts(profile).items():
        # one trial alone gets one slot: a second would sit idle
        rc = run_sweep(profile, out, name, pts, 1 if len(pts) == 1 else None) or rc
    if not a.no_emulated and profile.emulated:
        rc = run_emulated(profile, out) or rc
    log(f"study wall time this session: {time.time() - t0:.0f} s")
    return rc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="study.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "collect", "analyse"):
        s = sub.add_parser(name)
        s.add_argument("--profile", default="cpu", choices=sorted(PROFILES))
        s.add_argument("--gpu", dest="profile", action="store_const", const="gpu",
                       help="the GPU profile: ResNet-20, B_ref 256, 30 epochs (= --profile gpu)")
        s.add_argument("--out", default=None, help="raw runs (default data/goyal-<profile>)")
        s.add_argument("--points-dir", default=None, help="curated points (default experiments/goyal/points/<profile>)")
        if name == "run":
            s.add_argument("--no-emulated", action="store_true", help="skip the emulated-node points")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        return cmd_run(a)
    from collect import cmd_analyse, cmd_collect

    return {"collect": cmd_collect, "analyse": cmd_analyse}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
