"""Training curves -> statistical efficiency (scalesim.fit.curves, scalesim.fit.stateff): the file-name
rule, AdaptDL's grad_var normalisation, the joint curves + noise fit on synthetic AdaptDL-like curves
with a known, growing noise scale, and the shared Pollux curves when present."""
import math
import os
from pathlib import Path

import numpy as np
import pytest

from scalesim.errors import DataError
from scalesim.fit import curves as fc
from scalesim.fit.stateff import fit_stateff
from scalesim.model import stateff as se

POLLUX = Path(os.environ.get("SCALESIM_POLLUX_DIR") or Path(__file__).resolve().parents[2] / "shared" / "external" / "pollux")

# noise scale (examples) as a function of S_min progress tau: grows 40x over training
TAU_END = 3000.0


def b_of_tau(tau):
    return 150.0 * np.exp(np.log(40.0) * np.minimum(tau, TAU_END) / TAU_END)


def metric_of_tau(tau):
    return 0.95 * (1 - np.exp(-np.asarray(tau) / 700.0))


def adaptdl_curve(path: Path, B: float, B0: float, rows: int = 60, grad_var_per_b0: bool = True):
    """A curve file like AdaptDL's: progress (its gain sum, in B0 steps), iteration, metric, grad_sqr,
    grad_var (variance of the mean over B0 when grad_var_per_b0, else per example)."""
    # integrate steps along tau: dS = dtau (1 + b(tau)/B)
    tau = np.linspace(0, TAU_END, 20001)
    ds = np.diff(tau) * (1 + b_of_tau(tau[:-1]) / B)
    steps = np.r_[0, np.cumsum(ds)]
    total = steps[-1]
    it = np.linspace(total / rows, total, rows)
    t_at = np.interp(it, steps, tau)
    t_prev = np.interp(np.r_[0, it[:-1]], steps, tau)
    b_mid = b_of_tau((t_at + t_prev) / 2)
    gain = (1 + b_mid / B0) / (1 + b_mid / B)
    progress = np.cumsum(np.diff(np.r_[0, it]) * gain)
    grad_sqr = 1.0 / (1 + t_at)                       # any positive |G|^2 will do
    var = b_mid * grad_sqr / (B0 if grad_var_per_b0 else 1.0)
    lines = ["progress,iteration,metric,grad_sqr,grad_var"]
    lines += [f"{p:.6f},{i:.3f},{m:.6f},{g:.8g},{v:.8g}" for p, i, m, g, v in zip(progress, it, metric_of_tau(t_at), grad_sqr, var)]
    path.write_text("\n".join(lines) + "\n")
    return steps, tau


def true_steps(B, target):
    tau_t = -700.0 * math.log(1 - target / 0.95)
    tau = np.linspace(0, tau_t, 20001)
    return float(np.sum(np.diff(tau) * (1 + b_of_tau(tau[:-1]) / B))), tau_t


def test_batch_from_name_is_exact():
    assert fc.batch_from_name("validation-256.csv") == 256
    assert fc.batch_from_name("/x/cifar10.validation-128.csv") == 128
    assert fc.batch_from_name("validation-256-run2.csv") is None
    assert fc.batch_from_name("run2-validation-256.csv") is None
    assert fc.batch_from_name("curve.csv") is None


def test_batch_size_needs_a_column_flag_or_the_exact_name(tmp_path):
    p = tmp_path / "validation-256-run2.csv"
    p.write_text("iteration,metric\n10,0.1\n20,0.2\n")
    with pytest.raises(DataError, match="cannot tell the batch size"):
        fc.read_curve(p)
    curves, _ = fc.read_curve(p, batch_size=256)
    assert curves["global_batch"].iloc[0] == 256
    q = tmp_path / "whatever.csv"
    q.write_text("iteration,metric,batch_size\n10,0.1,512\n20,0.2,512\n")
    assert fc.read_curve(q)[0]["global_batch"].iloc[0] == 512


def test_adaptdl_normalisation_is_detected_and_a_wrong_flag_is_named(tmp_path):
    files = []
    for B in (128, 512):
        files.append(tmp_path / f"job.validation-{B}.csv")
        adaptdl_curve(files[-1], B, 128)
    cs = fc.read_curve_set(files)
    assert cs.grad_var_batch == 128 and "detected" in cs.normalisation
    wrong = fc.read_curve_set(files, grad_var_batch=1)
    assert wrong.grad_var_batch == 1 and any("disagrees" in w for w in wrong.warnings)
    # per-example grad_var is detected as such
    for B in (128, 512):
        adaptdl_curve(tmp_path / f"pe.validation-{B}.csv", B, 128, grad_var_per_b0=False)
    pe = fc.read_curve_set([tmp_path / f"pe.validation-{B}.csv" for B in (128, 512)])
    assert pe.grad_var_batch == 1 and "per example" in pe.normalisation
    # a lone run at its initial batch (progress = iteration): AdaptDL's convention, said so
    lone = fc.read_curve_set(files[:1])
    assert lone.grad_var_batch == 128 and "initial batch" in lone.normalisation


def test_joint_fit_on_synthetic_curves_recovers_growing_noise(tmp_path):
    files = []
    for B in (128, 256, 4096):
        files.append(tmp_path / f"job.validation-{B}.csv")
        adaptdl_curve(files[-1], B, 128)
    cs = fc.read_curve_set(files)
    target = fc.Target("metric", 0.9, True)
    res = fc.fit_curve_set(cs, target, batches=[128, 256])
    truth = {B: true_steps(B, 0.9)[0] for B in (128, 256, 4096)}
    tau_t = true_steps(128, 0.9)[1]
    tau = np.linspace(0, tau_t, 20001)
    b_true = float(np.mean(b_of_tau(tau)))             # S_min-weighted mean noise scale to the target
    assert res.b_measured == pytest.approx(b_true, rel=0.05)
    lo, hi = se.b_noise_interval(res.fit)
    assert lo < b_true < hi
    assert res.fit.b_noise == pytest.approx(b_true, rel=0.15)
    pred = se.steps_to_target(4096, res.fit.s_min, res.fit.b_noise)
    assert pred == pytest.approx(truth[4096], rel=0.1)
    # the first interval's noise scale vs the one at the target: the growth is visible
    assert res.b_trajectory["last"] > 10 * res.b_trajectory["first"]
    lines = "\n".join(res.summary_lines())
    assert "B_noise measured" in lines and "B_noise fitted" in lines and "sd apart" in lines


def test_fit_stateff_warns_on_degenerate_curves_without_noise():
    import pandas as pd

    rows = []
    for B in (256, 512, 1024):           # perfect scaling: steps halve with each doubling
        for it, m in ((1e6 / B * 0.5, 0.5), (1e6 / B, 0.8), (2e6 / B, 0.9)):
            rows.append({"source": f"run{B}", "global_batch": float(B), "iteration": it, "metric": m,
                         "higher_is_better": True})
    st = fit_stateff(pd.DataFrame(rows), None, target=0.8)
    assert st["degenerate"] == "b_noise->inf"
    assert any("perfect scaling" in w for w in st["warnings"])
    assert st["steps_to_target"] == pytest.approx({"256": 1e6 / 256, "512": 1e6 / 512, "1024": 1e6 / 1024})


@pytest.mark.skipif(not (POLLUX / "curves").is_dir(), reason="shared Pollux curves absent")
def test_shared_pollux_curves_two_smallest_meet_the_goal():
    import importlib.util

    spec = importlib.util.spec_from_file_location("curves_exp", Path(__file__).resolve().parents[1] / "experiments/pollux/curves.py")
    exp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exp)
    os.environ.setdefault("SCALESIM_POLLUX_DIR", str(POLLUX))
    for w in ("cifar10", "ncf"):
        r = exp.evaluate(w, verbose=False)
        assert r["two smallest"]["mape"] <= 15.0 and abs(r["two smallest"]["worst"]) <= 30.0, (w, r["two smallest"])
        # the single-batch fit is Pollux's gain formula: identical errors
        assert r["smallest alone"]["errors"] == pytest.approx(r["pollux gain"]["errors"])
    cif = exp.evaluate("cifar10", verbose=False)
    assert cif["grad_var_batch"] == 128


def test_report_steps_to_target_chart_from_a_fitted_model():
    import pandas as pd

    from scalesim.report import charts, frames

    rows = []
    for B in (128, 256, 1024):
        S = float(se.steps_to_target(B, 400.0, 700.0))
        rows += [{"source": f"r{B}", "global_batch": float(B), "iteration": it, "metric": 0.8 * it / S,
                  "higher_is_better": True} for it in np.linspace(S / 8, 2 * S, 16)]
    st = fit_stateff(pd.DataFrame(rows), None, target=0.8)
    curve, pts = frames.steps_to_target_curve(st)
    assert len(pts) == 3 and (curve["lo"] <= curve["steps"]).all() and (curve["steps"] <= curve["hi"]).all()
    i = int(np.argmin(np.abs(curve["global_batch"] - 4096)))
    assert curve["steps"].iloc[i] == pytest.approx(se.steps_to_target(curve["global_batch"].iloc[i], 400.0, 700.0), rel=0.02)
    spec = charts.steps_to_target(curve, pts, st).to_dict()
    assert "Steps to the target" in str(spec["title"])
    assert frames.steps_to_target_curve({"b_noise": 5.0}) [0].empty


def test_curves_only_model_reports_validates_and_refuses_step_times(tmp_path, capsys):
    from scalesim.cli import main

    for B in (128, 512, 2048):
        adaptdl_curve(tmp_path / f"job.validation-{B}.csv", B, 128)
    files = [str(tmp_path / f"job.validation-{B}.csv") for B in (128, 512, 2048)]
    assert main(["fit", *files[:2], "-o", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "training curves only" in out and "B_noise measured" in out and "grad_var normalisation: detected" in out
    assert main(["validate", *files, "--model", str(tmp_path / "m.json"), "--only-unseen"]) == 0
    out = capsys.readouterr().out
    assert "global_batch=2048" in out and "steps_to_target" in out
    assert main(["predict", "--model", str(tmp_path / "m.json"), "--target-time", "1h"]) == 2
    assert "training curves alone" in capsys.readouterr().err
    assert main(["report", "--model", str(tmp_path / "m.json"), "--out", str(tmp_path / "r.html")]) == 0
    assert "chart-steps-to-target" in (tmp_path / "r.html").read_text()
