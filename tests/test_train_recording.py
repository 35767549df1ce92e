"""The training core records every step (issue 14): `scalesim.train.worker` on one rank (the
two-half-batch noise estimate) writes steps/noise tables and TensorBoard scalars."""
import os
import subprocess
import sys

import numpy as np
import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.slow
def test_one_rank_training_records_split_noise_and_tensorboard(tmp_path):
    pytest.importorskip("horovod.tensorflow")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "scalesim.train.worker", "--model", "resnet8", "--width", "4", "--dataset",
           "synthetic", "--synthetic-size", "512", "--batch", "32", "--epochs", "2", "--max-steps", "4",
           "--no-eval", "--threads", "1", "--out", str(out), "--progress", "none"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    from scalesim.schema import RunDir

    rd = RunDir(out)
    m = rd.read_manifest()
    assert m["status"] == "done" and m["recording"]["steps"] == 8
    steps = rd.read_table("steps")
    assert list(steps["step"]) == list(range(8)) and (steps["mode"] == "production").all()
    split = steps[["data_time", "compute_time", "allreduce_time", "update_time"]].to_numpy()
    assert np.isfinite(split).all() and (split >= 0).all()
    np.testing.assert_allclose(split.sum(axis=1), steps["step_time"], rtol=1e-9)
    noise = rd.read_table("noise")
    assert list(noise["step"]) == list(range(8)) and list(noise["epoch"]) == [0] * 4 + [1] * 4
    assert (noise["b_small"] == 16).all() and (noise["b_big"] == 32).all()   # two halves of 32
    assert np.isfinite(noise[["local_sqnorm", "global_sqnorm", "grad_sqr", "grad_var", "loss", "lr"]].to_numpy()).all()
    # The mean of two different half-batch gradients is shorter than the halves on average.
    assert (noise["global_sqnorm"] < noise["local_sqnorm"]).all()

    import tensorflow as tf

    events = [os.path.join(out, "tensorboard", f) for f in os.listdir(out / "tensorboard")]
    tags = {}
    for e in tf.compat.v1.train.summary_iterator(events[0]):
        for v in e.summary.value:
            tags.setdefault(v.tag, []).append(float(tf.make_ndarray(v.tensor)))
            assert v.metadata.plugin_data.plugin_name == "scalars"
    assert len(tags["noise/local_sqnorm"]) == 8 and len(tags["time/step_time"]) == 8
    np.testing.assert_allclose(tags["noise/local_sqnorm"], noise["local_sqnorm"], rtol=1e-6)
