"""Bring your own model, for real: examples/keras_fit_mobilenet.py (keras.applications MobileNet in
its own model.fit) on 2 Horovod ranks with scalesim.keras.Recorder, and examples/custom_loop.py
(tf.GradientTape + scalesim.keras.record_step) on 1 rank. The run directories have the `measure`
tables with finite numbers, and `fit` reads them."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
STEPS, LOCAL_BATCH = 5, 8


def _horovodrun():
    path = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    return path if os.path.exists(path) else "horovodrun"


@pytest.fixture(scope="module")
def fit_run(tmp_path_factory):
    pytest.importorskip("horovod.tensorflow")
    out = tmp_path_factory.mktemp("keras") / "run"
    cmd = [_horovodrun(), "-np", "2", "-H", "localhost:2", "--gloo", sys.executable,
           os.path.join(ROOT, "examples", "keras_fit_mobilenet.py"), "--run-dir", str(out), "--epochs", "2",
           "--steps", str(STEPS), "--local-batch", str(LOCAL_BATCH), "--alpha", "0.25"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=ENV, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


@pytest.mark.slow
def test_model_fit_on_two_ranks_writes_the_measure_tables(fit_run):
    from scalesim.schema import RunDir

    rd = RunDir(fit_run)
    m = rd.read_manifest()
    assert m["status"] == "done" and m["kind"] == "train"
    assert m["configs"][0]["num_replicas"] == 2 and m["configs"][0]["global_batch"] == 2 * LOCAL_BATCH
    assert m["model"]["grad_bytes"] == 4 * m["model"]["params"] and m["model"]["params"] > 2e5

    steps = rd.read_table("steps")
    assert len(steps) == 2 * 2 * STEPS                     # ranks x epochs x steps
    assert sorted(steps["rank"].unique()) == [0, 1] and set(steps["mode"]) == {"production"}
    assert (steps["num_replicas"] == 2).all() and (steps["bytes_reduced"] == m["model"]["grad_bytes"]).all()
    split = steps[["compute_time", "allreduce_time", "update_time", "step_time"]]
    assert np.isfinite(split.to_numpy()).all() and (split.to_numpy() > 0).all()
    np.testing.assert_allclose(split[["compute_time", "allreduce_time", "update_time"]].sum(axis=1),
                               steps["step_time"], rtol=1e-9)

    noise = rd.read_table("noise")
    assert len(noise) == 2 * STEPS and (noise["num_replicas"] == 2).all()
    assert (noise["b_small"] == LOCAL_BATCH).all() and (noise["b_big"] == 2 * LOCAL_BATCH).all()
    cols = ["local_sqnorm", "global_sqnorm", "grad_sqr", "grad_var", "ema_grad_sqr", "ema_grad_var", "loss", "lr"]
    assert np.isfinite(noise[cols].to_numpy()).all()
    # The allreduce really averaged different local gradients: |mean|^2 < mean |g_i|^2.
    assert (noise["global_sqnorm"] < noise["local_sqnorm"]).all()
    assert len(rd.read_table("epochs")) == 2 and m["noise_nonfinite_skipped"] == 0
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(fit_run / "tensorboard"))


@pytest.mark.slow
def test_fit_reads_the_recorded_run(fit_run):
    from scalesim.fit.observations import read_run

    obs = read_run(fit_run)
    row = obs.steps.iloc[0]
    assert row["num_replicas"] == 2 and row["local_batch"] == LOCAL_BATCH
    assert math.isfinite(row["step_time"]) and row["step_time"] > 0
    assert len(obs.noise) == 2 * STEPS and obs.grad_bytes > 8e5


@pytest.mark.slow
def test_custom_loop_one_rank(tmp_path):
    pytest.importorskip("horovod.tensorflow")
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "custom_loop.py"), "--run-dir", str(out),
                        "--steps", "6", "--local-batch", "16"], capture_output=True, text=True, timeout=600,
                       env=ENV, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    from scalesim.schema import RunDir

    rd = RunDir(out)
    steps = rd.read_table("steps")
    assert len(steps) == 6 and (steps["num_replicas"] == 1).all() and (steps["bytes_reduced"] == 0).all()
    assert np.isfinite(steps[["compute_time", "update_time", "step_time"]].to_numpy()).all()
    assert np.isfinite(steps["data_time"].iloc[1:]).all()     # the loop's own batch fetch, from step 2 on
    assert rd.read_table("noise").empty                      # one rank, no second batch size here
    assert rd.read_manifest()["status"] == "done"
