"""`scalesim predict` through the real command line: output, JSON, and one-line errors with exit 2."""
import json
import subprocess
import sys

import pytest

from test_predict import make_model


def scalesim(*argv):
    """The real command line in a child process."""
    return subprocess.run([sys.executable, "-m", "scalesim.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=120)


def scalesim_inproc(capsys, *argv):
    """The same entry point in this process (faster; argparse exits are caught like the shell sees them)."""
    from scalesim.cli import main

    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, rc, out.out, out.err)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("m") / "model.json")


def test_json_output(model):
    r = scalesim("predict", "--model", model, "--target-time", "1h30m", "--max-nodes", "16",
                 "--devices-per-node", "1,2", "--max-local-batch", "128", "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["feasible"] is True and p["cheapest"]["time"] <= 5400
    assert p["fastest"]["time"] <= p["cheapest"]["time"]
    assert p["cheapest"]["device_hours"] == min(c["device_hours"] for c in p["frontier"] if c["time"] <= 5400)
    assert p["cheapest"]["lr"]["peak_lr"] == pytest.approx(0.1 * p["cheapest"]["global_batch"] / 256)


def test_epochs_target_with_dataset_size(capsys, model):
    r = scalesim_inproc(capsys, "predict", "--model", model, "--target-time", "2h", "--target-epochs", "3", "--dataset-size", "60000",
                 "--nodes", "1-4", "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["target"]["label"] == "3 epochs of 60,000 samples at every batch"
    assert p["target"]["kind"] == "epochs" and "fixed epoch budget" in p["target"]["regime"]
    # a fixed budget: 3 epochs at every batch, whatever the noise scale (B_noise = 400 in the model)
    for c in [p["fastest"], *p["frontier"]]:
        assert c["steps"] == pytest.approx(3 * 60000 / c["global_batch"])
        assert c["accuracy_at_risk"] == (c["global_batch"] > 400)
    risky = [c for c in p["frontier"] if c["global_batch"] > 400]
    if risky or p["fastest"]["global_batch"] > 400:
        assert any("accuracy at risk" in n for n in p["notes"])
    text = scalesim_inproc(capsys, "predict", "--model", model, "--target-time", "2h", "--target-epochs", "3",
                           "--dataset-size", "60000", "--nodes", "1-4").stdout
    assert "regime: fixed epoch budget" in text


def test_metric_target_uses_the_fitted_curve_and_must_match_it(capsys, model, tmp_path):
    d = json.loads(open(model).read())
    d["stateff"]["target"] = {"metric": "test_acc", "value": 0.85, "higher_is_better": True}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(d))
    st = d["stateff"]
    for extra in ([], ["--target-metric", "0.85"]):
        r = scalesim_inproc(capsys, "predict", "--model", path, "--target-time", "2h", "--nodes", "1-4", "--json", *extra)
        assert r.returncode == 0, r.stderr
        p = json.loads(r.stdout)
        assert p["target"]["kind"] == "stateff" and "S(B)" in p["target"]["regime"]
        for c in [p["fastest"], *p["frontier"]]:
            assert c["steps"] == pytest.approx(st["s_min"] * (1 + st["b_noise"] / c["global_batch"]))
    r = scalesim_inproc(capsys, "predict", "--model", path, "--target-time", "2h", "--target-metric", "0.5")
    assert r.returncode == 2 and "fitted for test_acc 0.85" in r.stderr
    r = scalesim_inproc(capsys, "predict", "--model", path, "--target-time", "2h", "--target-metric", "0.85",
                        "--target-epochs", "3", "--dataset-size", "600")
    assert r.returncode == 2 and "not both" in r.stderr


def test_infeasible_is_reported_not_crashed(capsys, model):
    r = scalesim_inproc(capsys, "predict", "--model", model, "--target-time", "1s", "--max-nodes", "4")
    assert r.returncode == 0, r.stderr
    assert "NO configuration meets 1 s: the best achievable time is" in r.stdout


@pytest.mark.parametrize("argv,needle", [
    (["--target-time", "1x"], "bad --target-time '1x'"),
    (["--target-time", "60"], "missing unit"),
    (["--target-time", "0s"], "must be positive"),
    (["--target-time", "1h", "--bogus"], "No such option"),
])
def test_bad_durations_give_one_line_in_a_real_process(model, argv, needle):
    r = scalesim("predict", "--model", model, *argv)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and needle in lines[0], r.stderr


@pytest.mark.parametrize("argv,needle", [
    (["--target-time", "1h", "--target-epochs", "90"], "needs --dataset-size"),
    (["--target-time", "1h", "--nodes", "a,b"], "bad --nodes"),
    (["--target-time", "1h", "--max-nodes", "0"], "--max-nodes must be between 1 and"),
    (["--target-time", "1h", "--nodes", "4", "--max-nodes", "8"], "not both"),
    (["--target-time", "1h", "--target-steps", "-3"], "--target-steps must be positive"),
    (["--target-time", "1h", "--ref-lr", "-1"], "ref_lr > 0"),
    (["--target-time", "1h", "--target-steps", "5", "--target-epochs", "3"], "not both"),
    (["--target-time", "1h", "--global-batch", "64", "--local-batch", "8"], "not both"),
    (["--target-time", "1h", "--max-nodes", "100000000"], "--max-nodes must be between"),
    (["--target-time", "1h", "--batch-sizes", "1"], "--batch-sizes"),
    (["--target-time", "1h", "--min-global-batch", "0"], "bad global batch range"),
    (["--target-time", "1h", "--cores-per-host", "0"], "--cores-per-host"),
    (["--target-time", "1h", "--target-steps", "inf"], "--target-steps must be positive"),
    (["--target-time", "1h", "--nodes", "64", "--global-batch", "8"], "search space is empty"),
])
def test_bad_flags_give_one_line(capsys, model, argv, needle):
    r = scalesim_inproc(capsys, "predict", "--model", model, *argv)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and needle in lines[0], r.stderr


@pytest.mark.parametrize("content,needle", [
    (None, "no such file"), ("{not json", "not valid JSON"), ("[1, 2]", "not a scalesim model file"),
    ('{"schema": "other"}', "not a scalesim model file"), ('{"schema": "scalesim.model/1"}', "malformed"),
])
def test_bad_model_files_give_one_line(capsys, tmp_path, content, needle):
    path = tmp_path / "m.json"
    if content is not None:
        path.write_text(content)
    r = scalesim_inproc(capsys, "predict", "--model", path, "--target-time", "1h")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalesim predict: error:") and needle in lines[0], r.stderr


def test_model_without_noise_fit_needs_a_target(capsys, tmp_path):
    path = make_model(tmp_path / "m.json", stateff=False)
    r = scalesim_inproc(capsys, "predict", "--model", path, "--target-time", "1h")
    assert r.returncode == 2 and "no training target" in r.stderr
    r = scalesim_inproc(capsys, "predict", "--model", path, "--target-time", "1h", "--target-steps", "1000", "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    c = p["cheapest"]
    assert c["steps"] == pytest.approx(1000 * 256 / c["global_batch"]) and c["stat_eff"] == 1.0
    assert p["space"]["global_batch"][1] <= 8192  # no noise fit: batches capped at Goyal's validated 8k


def test_unidentified_inter_host_link_limits_the_search(capsys, tmp_path):
    from test_predict import PERF

    nan_perf = PERF._replace(comm=PERF.comm._replace(alpha_inter=float("nan"), bw_inter=float("nan")))
    path = make_model(tmp_path / "m.json", perf=nan_perf, meta={"unidentified": ["alpha_inter", "bw_inter"]})
    r = scalesim_inproc(capsys, "predict", "--model", path, "--target-time", "1h", "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["space"]["num_nodes"] == [1, 1] and "single-node" in p["notes"][0]
    assert all(c["num_nodes"] == 1 and c["time"] == c["time"] for c in p["frontier"])  # no NaN
    r = scalesim_inproc(capsys, "predict", "--model", path, "--target-time", "1h", "--nodes", "1-4")
    assert r.returncode == 2 and "cannot predict multi-host" in r.stderr
