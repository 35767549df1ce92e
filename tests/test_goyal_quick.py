"""experiments/goyal: the pure analysis on synthetic numbers, and the `--quick` study end to end
(real TensorFlow training on Fashion-MNIST, one real 2-rank Horovod point), including resume."""
import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOYAL = Path(__file__).resolve().parents[1] / "experiments" / "goyal"
RUN = GOYAL / "run.py"


def _mod(name):
    if str(GOYAL) not in sys.path:
        sys.path.insert(0, str(GOYAL))
    return importlib.import_module(name)


def test_two_point_fit_recovers_known_noise_scale():
    an = _mod("goyal_analysis")
    from scalesim.model.stateff import steps_to_target

    s_min, b_noise = 300.0, 700.0
    s1, s2 = (float(steps_to_target(b, s_min, b_noise)) for b in (128, 256))
    fit = an.fit_two_point(128, s1, 256, s2)
    assert fit == pytest.approx((s_min, b_noise), rel=1e-9)
    # perfect scaling (examples to target do not grow with B): no finite noise scale
    assert an.fit_two_point(128, 200.0, 256, 100.0)[1] == math.inf


def test_crossing_interpolates_and_reports_never():
    an = _mod("goyal_analysis")
    curve = [{"step": 10, "epoch": 1.0, "val_acc": 0.5}, {"step": 20, "epoch": 2.0, "val_acc": 0.9}]
    assert an.crossing(curve, 0.7) == pytest.approx((15.0, 1.5))
    assert an.crossing(curve, 0.95) is None


def test_plan_has_unique_points_and_goyal_lr():
    pr = _mod("goyal_protocol")
    ids = [p.id for p in pr.plan(pr.FULL)]
    assert len(ids) == len(set(ids)) == 24
    from scalesim.model.schedule import LRSchedule, lr_at

    kw = pr.recipe_kwargs(pr.FULL, pr.Point(8192, "c", 0))
    s = LRSchedule(8192, **kw)
    assert lr_at(s, 0.0) == pytest.approx(0.1) and lr_at(s, 0.5) == pytest.approx(3.2)
    assert lr_at(s, 3.0) == pytest.approx(0.32)
    assert pr.recipe_kwargs(pr.FULL, pr.Point(8192, "b", 0))["warmup_epochs"] == 0.0
    assert pr.recipe_kwargs(pr.FULL, pr.Point(1024, "a", 0))["rule"] == "none"


def _run(out, *extra):
    r = subprocess.run([sys.executable, str(RUN), "--quick", "--out", str(out), *extra],
                       capture_output=True, text=True, timeout=900,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.mark.slow
def test_quick_study_end_to_end_and_resume(tmp_path):
    pytest.importorskip("horovod.tensorflow")
    out = tmp_path / "goyal"
    _run(out)
    pr = _mod("goyal_protocol")
    planned = [p.id for p in pr.plan(pr.QUICK)]
    files = sorted((out / "points").glob("*.json"))
    assert sorted(f.stem for f in files) == sorted(planned)
    for name in ("results.csv", "summary.json", "tables.md", "protocol.json"):
        assert (out / name).is_file()
    recs = {f.stem: json.loads(f.read_text()) for f in files}
    for rec in recs.values():
        assert rec["status"] == "done" and math.isfinite(rec["test_err"]) and rec["curve"]
        assert rec["steps_done"] == rec["total_steps"]
    # a sane configuration (no LR scaling, eta = 0.1 at B = 64) beats chance (90 % error) clearly
    assert recs["B00064-a-s0"]["test_err"] < 80.0
    assert math.isfinite(recs["B00064-a-s0"]["noise"]["b_simple"])
    # real 2-rank Horovod vs one process with ghost BN: same gradient-noise estimate, close error
    cmp = json.loads((out / "summary.json").read_text())["hvd_vs_emulated"][0]
    assert cmp["b_simple_hvd"] == pytest.approx(cmp["b_simple_emulated"], rel=0.05)
    assert abs(cmp["test_err_hvd"] - cmp["test_err_emulated"]) < 10.0

    # resume: nothing finished is re-run; a missing point is run again, alone
    mtimes = {f.name: f.stat().st_mtime_ns for f in files}
    log = _run(out)
    assert log.count("done already, skipped") == len(planned) and ": start" not in log
    victim = out / "points" / "B00128-c-s0.json"
    victim.unlink()
    log = _run(out, "--no-hvd")
    assert log.count(": start") == 1 and "B00128-c-s0: start" in log
    for f in (out / "points").glob("*.json"):
        if f.name != victim.name:
            assert f.stat().st_mtime_ns == mtimes[f.name]
