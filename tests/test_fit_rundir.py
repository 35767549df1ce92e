"""`fit` on scalesim run directories (built through the real schema from known parameters): compute,
contention, per-hop latency, overheads and bandwidths on one host and between hosts, overlap, and the
statistical-efficiency calibration from training runs and measured noise."""
import numpy as np
import pytest

import fit_synth as fs
from scalesim.fit.api import fit
from scalesim.fit.perf import from_perf
from scalesim.fit.curves import read_training_curve
from scalesim.errors import DataError
from scalesim.model import stateff


def test_recovers_comm_alpha_bw_intra_inter_and_compute(tmp_path):
    fs.make_run(tmp_path / "run", sd=0.02, seed=2)
    m = fit(tmp_path / "run", bootstrap=0)
    got, true = from_perf(m.perf), from_perf(fs.RUN_TRUE)
    for k in ("alpha_c", "beta_c", "alpha_intra", "inv_bw_intra", "alpha_inter", "inv_bw_inter",
              "overhead_intra", "overhead_inter"):
        assert got[k] == pytest.approx(true[k], rel=0.12), k
    assert got["kappa"] == pytest.approx(1.0, abs=0.1)       # 8 ranks on 4 cores: time-sliced
    assert got["gamma"] == pytest.approx(1.0, abs=0.1)
    assert m.perf.comm.grad_bytes == fs.GRAD_BYTES and m.meta["grad_bytes_known"]
    assert m.host["cores_per_host"] == fs.CORES and m.data["allreduce_rows"] > 0
    assert set(m.quality) >= {"step_time", "compute_time", "allreduce_time"}
    assert m.quality["allreduce_time"]["mape"] < 3


@pytest.mark.parametrize("gamma", [1.6, 3.0])
def test_recovers_overlap_gamma(tmp_path, gamma):
    truth = fs.RUN_TRUE._replace(gamma=gamma)
    fs.make_run(tmp_path / "run", p=truth, sd=0.01, seed=4)
    m = fit(tmp_path / "run", bootstrap=0)
    assert m.perf.gamma == pytest.approx(gamma, abs=0.25)


def test_statistical_efficiency_from_two_training_runs(tmp_path):
    s_min, b_noise = 400.0, 700.0
    fs.make_run(tmp_path / "measure", batches=(16, 64), bench=False)
    runs = [tmp_path / "measure"]
    for B in (128, 1024):
        fs.make_train_run(tmp_path / f"train-{B}", B, float(stateff.steps_to_target(B, s_min, b_noise)))
        runs.append(tmp_path / f"train-{B}")
    fs.add_noise_table(fs.RunDir(tmp_path / "measure"), 128, 650.0)
    m = fit(runs, bootstrap=0, target=0.8)
    st = m.stateff
    # the measure run's noise (no curve there) enters as a prior, with a warning that it is early-training noise
    assert st["method"] == "curves at several batches + measured noise"
    assert st["s_min"] == pytest.approx(s_min, rel=0.02) and st["b_noise"] == pytest.approx(b_noise, rel=0.03)
    assert st["b_noise_measured"] == pytest.approx(650.0, rel=0.1)
    assert any("early training" in w for w in st["warnings"])
    lo, hi = st["b_noise_interval"]
    assert lo < b_noise < hi and st["b_noise_curves"] == pytest.approx(b_noise, rel=0.01)
    assert st["target"]["value"] == 0.8 and st["target"]["higher_is_better"]


def test_one_run_plus_noise_and_drifting_noise(tmp_path):
    fs.make_run(tmp_path / "measure", batches=(16, 64), bench=False)
    fs.make_train_run(tmp_path / "train", 256, 1000.0)
    # the noise scale grows 200 -> 2000 during training (McCandlish et al. Sec. 3)
    fs.add_noise_table(fs.RunDir(tmp_path / "train"), 256, np.linspace(200, 2000, 400), steps=np.arange(0, 1200, 3))
    m = fit([tmp_path / "measure", tmp_path / "train"], bootstrap=0, target=0.8)
    st = m.stateff
    assert st["method"] == "one batch + measured noise"
    drift = st["b_noise_drift"]
    assert drift["first_window"] < 400 and drift["last_window"] > 1200   # up to the target (step 1000)
    assert drift["first_window"] < st["b_noise"] < drift["last_window"]
    assert st["s_min"] == pytest.approx(1000.0 / (1 + st["b_noise"] / 256), rel=1e-6)


def test_training_curve_csv_with_noise_columns(tmp_path):
    import pandas as pd

    it = np.arange(0, 2001, 100)
    pd.DataFrame({"iteration": it, "metric": 2.0 - it / 1000, "grad_sqr": 0.02, "grad_var": 0.02 * 300 / 64,
                  "grad_var_batch": 64}).to_csv(tmp_path / "validation-512.csv", index=False)
    c = read_training_curve(tmp_path / "validation-512.csv")
    assert c["global_batch"].iloc[0] == 512 and c["grad_var"].iloc[0] == pytest.approx(0.02 * 300)
    fs.write_trace(tmp_path / "t.csv")
    m = fit([tmp_path / "t.csv", tmp_path / "validation-512.csv"], bootstrap=0, target=0.5)
    assert m.stateff["b_noise"] == pytest.approx(300.0, rel=1e-6)
    assert m.stateff["target"]["higher_is_better"] is False
    assert m.stateff["s_min"] == pytest.approx(1500 / (1 + 300 / 512), rel=1e-6)
    with pytest.raises(DataError, match="no training curve reaches"):
        fit([tmp_path / "t.csv", tmp_path / "validation-512.csv"], bootstrap=0, target=-5)


def test_curves_alone_give_a_statistical_efficiency_model(tmp_path):
    from scalesim import modelfile

    fs.make_train_run(tmp_path / "train", 256, 1000.0)
    with pytest.raises(DataError, match="cannot identify B_noise"):   # one batch, no noise: not enough
        fit(tmp_path / "train", bootstrap=0)
    fs.make_train_run(tmp_path / "train2", 1024, float(stateff.steps_to_target(1024, 400.0, 700.0)))
    fs.make_train_run(tmp_path / "train3", 128, float(stateff.steps_to_target(128, 400.0, 700.0)))
    m = fit([tmp_path / "train2", tmp_path / "train3"], bootstrap=0, target=0.8)
    assert m.perf is None and m.stateff["b_noise"] == pytest.approx(700.0, rel=0.03)
    modelfile.save(m, tmp_path / "m.json")
    back = modelfile.load(tmp_path / "m.json")
    assert back.perf is None and back.stateff["s_min"] == pytest.approx(400.0, rel=0.02)
    with pytest.raises(DataError, match="training curves alone"):
        modelfile.check_predictable(back, [1])


def test_one_rank_train_runs_fit_their_curves_and_say_why_no_throughput_model(tmp_path):
    # `scalesim train` on one rank also writes step times: one replica cannot fit the allreduce
    # model, so fit keeps the curves (a note says why) unless --strict; validate skips step times.
    import pandas as pd

    from scalesim.fit.validate import validate

    runs = []
    for B in (128, 1024, 256):
        rd = fs.make_train_run(tmp_path / f"train{B}", B, float(stateff.steps_to_target(B, 400.0, 700.0)))
        rd.write_part("steps", "train-00000", pd.DataFrame({"config_id": "train", "num_nodes": 1, "num_replicas": 1,
                                                            "local_batch": B, "rank": 0, "step": np.arange(20),
                                                            "step_time": 0.01 * B / 128}))
        runs.append(tmp_path / f"train{B}")
    m = fit(runs[:2], bootstrap=0, target=0.8, partial=True)
    assert m.perf is None and m.stateff["b_noise"] == pytest.approx(700.0, rel=0.03)
    assert any("no throughput model" in n and "one replica" in n for n in m.meta["notes"])
    with pytest.raises(DataError, match="one replica"):
        fit(runs[:2], bootstrap=0, target=0.8)   # the API's default, like --strict
    v = validate(m, runs[2:])
    row = v.table[v.table["quantity"] == "steps_to_target"].iloc[0]
    assert row["measured"] == pytest.approx(stateff.steps_to_target(256, 400.0, 700.0), rel=0.02)
    assert abs(row["error_pct"]) < 3 and any("step times are not compared" in n for n in v.notes)


def test_hierarchical_allreduce_recovers_intra_and_inter_links(tmp_path):
    truth = fs.RUN_TRUE._replace(comm=fs.RUN_TRUE.comm._replace(algorithm="hierarchical"))
    fs.make_run(tmp_path / "run", p=truth, sd=0.02, seed=6)
    m = fit(tmp_path / "run", bootstrap=0, algorithm="hierarchical")
    got, want = from_perf(m.perf), from_perf(truth)
    assert m.perf.comm.algorithm == "hierarchical"
    for k in ("inv_bw_intra", "inv_bw_inter", "alpha_inter", "alpha_c", "beta_c"):
        assert got[k] == pytest.approx(want[k], rel=0.15), k


def test_trace_and_run_directory_are_not_mixed(tmp_path):
    fs.make_run(tmp_path / "run", batches=(16, 64), bench=False)
    fs.write_trace(tmp_path / "t.csv")
    with pytest.raises(DataError, match="fit them separately"):
        fit([tmp_path / "run", tmp_path / "t.csv"], bootstrap=0)
