"""experiments/goyal: the protocol's points, the pure analysis on known numbers, and the `quick`
profile end to end (real Fashion-MNIST training through `scalesim sweep --points`, then resume,
collect and analyse)."""
import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

GOYAL = Path(__file__).resolve().parents[1] / "experiments" / "goyal"
STUDY = GOYAL / "study.py"


def _mod(name):
    if str(GOYAL) not in sys.path:
        sys.path.insert(0, str(GOYAL))
    return importlib.import_module(name)


def test_cpu_protocol_meets_the_issue():
    pr = _mod("protocol")
    p = pr.CPU
    pts = pr.points(p)
    assert pts[0]["global_batch"] == p.ref_batch and "epochs" not in pts[0]
    assert pts[1]["epochs"] == 2 * p.epochs and pts[1]["decay_epochs"] == [2 * d for d in p.decay_epochs]
    assert max(p.batches) >= 32 * p.ref_batch
    b32 = 32 * p.ref_batch
    assert 60000 // b32 * p.epochs >= 100                      # ~100+ steps at 32 x B_ref
    main = [q for q in pts if "epochs" not in q]
    cells = {(q["global_batch"], pr.arm_of(p, q)) for q in main}
    assert cells == {(p.ref_batch, "ref")} | {(b, a) for b in p.batches[1:] for a in "abc"}
    seeds = {}
    for q in main:
        seeds.setdefault((q["global_batch"], pr.arm_of(p, q)), set()).add(q["seed"])
    assert seeds[(p.ref_batch, "ref")] == {0, 1, 2}
    assert all(seeds[(b, a)] == {0, 1, 2} for b in p.batches[-2:] for a in "abc")
    assert len(pts) == 34
    warm = [q for q in main if pr.arm_of(p, q) == "c"]
    assert all(q["warmup_epochs"] == p.warmup_epochs and q["lr_rule"] == "linear" for q in warm)


def _pt(batch, arm, seed, err, epochs=6, ranks=1, windows=()):
    return {"global_batch": batch, "arm": arm, "seed": seed, "test_error": err / 100, "epochs": epochs,
            "ranks": ranks, "ref_lr": 0.1, "steps_per_epoch": 60000 // batch, "warmup_steps": 0,
            "windows": list(windows), "epochs_table": [{"train_loss": 0.3}], "images_per_sec": 1000.0}


def test_analysis_baseline_table_break_and_noise():
    an = _mod("analysis")
    w = [{"epoch_end": 1.0, "steps": 10, "grad_sqr": 2.0, "grad_var": 200.0},
         {"epoch_end": 2.0, "steps": 30, "grad_sqr": 1.0, "grad_var": 600.0}]
    pts = [_pt(64, "ref", s, e, windows=w) for s, e in ((0, 10.0), (1, 10.4), (2, 9.6))]
    pts += [_pt(64, "ref", 0, 9.8, epochs=12)]
    pts += [_pt(b, a, 0, e) for b, a, e in ((128, "c", 10.2), (256, "c", 10.9), (512, "c", 11.5), (512, "b", 30.0),
                                             (128, "b", 10.1), (256, "b", 12.0), (512, "a", 20.0))]
    pts += [_pt(256, "c", 0, 10.5, ranks=2)]
    base = an.baseline(pts, 64, 6)
    assert base["cell"].mean == pytest.approx(10.0) and base["cell"].std == pytest.approx(0.4)
    assert base["long_gap"] == pytest.approx(0.2) and base["trained"] is True
    rows = an.table(pts, 64, 6)
    assert [r["global_batch"] for r in rows] == [64, 128, 256, 512]
    assert rows[3]["peak_lr"] == pytest.approx(0.8) and rows[3]["steps"] == 6 * (60000 // 512)
    assert rows[0]["a"].n == 3 and rows[3]["b"].mean == 30.0 and rows[2]["c"].n == 1   # emulated point kept apart
    brk = an.break_batch(rows, base["cell"], "c")
    assert brk["1pt"] == 512 and brk["1pt_last_ok"] == 256          # 11.5 > 11.0; 10.9 is within
    assert brk["spread"] == 256 and brk["spread_last_ok"] == 128    # limit 10.8
    # B_simple is the ratio of step-weighted means: (200*10 + 600*30)/40 / ((2*10 + 1*30)/40) = 400
    assert an.window_b_simple(w) == pytest.approx(400.0)
    assert an.window_b_simple(w, 1.0, 2.0) == pytest.approx(600.0)
    noise = an.noise_scale(pts, 64, 6, 1.0)
    assert noise["whole"].mean == pytest.approx(400.0) and noise["whole"].n == 3
    assert noise["peak_phase"].mean == pytest.approx(100.0)
    assert an.ratio_text(512, 400.0).startswith("1.28 (within")
    assert an.ratio_text(None, 400.0) == "–"
    emu = an.emulated_pairs(pts, 6)
    assert len(emu) == 1 and emu[0]["emulated_error"] == pytest.approx(10.5) and emu[0]["one_process_error"] == pytest.approx(10.9)


@pytest.mark.slow
def test_quick_study_end_to_end_and_resume(tmp_path):
    out, pts = tmp_path / "raw", tmp_path / "points"

    def study(*args):
        return subprocess.run([sys.executable, str(STUDY), *args], capture_output=True, text=True, timeout=900)

    r = study("run", "--profile", "quick", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    from scalesim.sweep import table

    rows = table.read(out / "sweep")
    assert len(rows) == 9 and all(r["status"] == "done" and r["attempts"] == 1 for r in rows)
    again = study("run", "--profile", "quick", "--out", str(out))
    assert again.returncode == 0 and "resuming" in again.stdout
    assert [r["attempts"] for r in table.read(out / "sweep")] == [1] * 9        # nothing ran twice
    assert study("collect", "--profile", "quick", "--out", str(out), "--points-dir", str(pts)).returncode == 0
    files = sorted(p.name for p in pts.glob("B*.json"))
    assert "B00064-ref-s0-e4.json" in files and len(files) == 9
    one = json.loads((pts / "B00256-c-s0.json").read_text())
    assert one["warmup_steps"] == 4 and one["steps_per_epoch"] == 8 and len(one["windows"]) == 16
    assert 0 < one["test_error"] < 1 and all(w["grad_sqr"] != 0 for w in one["windows"])
    a = study("analyse", "--profile", "quick", "--points-dir", str(pts))
    assert a.returncode == 0, a.stderr[-2000:]
    res = json.loads((pts / "results.json").read_text())
    assert res["baseline"]["cell"]["n"] == 2 and res["table"][1]["c"]["n"] == 2
    assert math.isfinite(res["noise"]["whole"]["mean"]) and res["noise"]["whole"]["mean"] > 0
    assert (pts / "figures" / "fig1-training-loss.png").stat().st_size > 1000
    assert "Table 1 form" in (pts / "tables.md").read_text()
    assert study("analyse", "--profile", "quick", "--points-dir", str(tmp_path / "none")).returncode == 2


def test_gpu_profiles_keep_the_protocol_with_a_longer_budget():
    pr = _mod("protocol")
    for p in (pr.GPU, pr.GPU56):
        assert p.arch in ("resnet20", "resnet56") and p.epochs > pr.CPU.epochs
        assert max(p.batches) >= 32 * p.ref_batch and 60000 // (32 * p.ref_batch) * p.epochs >= 100
        parts = pr.parts(p)
        assert parts["sweep-long"][0]["epochs"] == 4 * p.epochs and len(parts["sweep-seeds"]) == 8
