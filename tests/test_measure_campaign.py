"""A real measurement campaign: ResNet-20 on Fashion-MNIST, 1 and 2 Horovod ranks (horovodrun
--gloo), tiny batches and few steps. Rank 1 is made to die (os._exit, via the worker's
fault-injection variable) in the last configuration; the completed ones must stay readable and
`--resume` must finish the campaign with every table complete, finite and positive."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from scalesim.schema import RunDir

ARGS = ["--devices-per-node", "1,2", "--local-batches", "4,8", "--steps", "3", "--warmup", "1", "--block", "2",
        "--ar-sizes", "4KiB,64KiB", "--timeline", "--no-progress"]
FAULT = "n2-b8:1:1"          # rank 1 dies at measured step 1 of the last configuration
SPLIT = ["data_time", "compute_time", "allreduce_time", "update_time"]


def _measure(argv, tmp, env_extra=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "scalesim.cli", "measure", *argv], capture_output=True,
                          text=True, timeout=900, cwd=tmp, env=env)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    pytest.importorskip("horovod.tensorflow")
    tmp = tmp_path_factory.mktemp("measure")
    run = tmp / "run"
    first = _measure([*ARGS, "--out", str(run)], tmp, {"SCALESIM_MEASURE_FAULT": FAULT})
    after_failure = json.loads((run / "manifest.json").read_text())
    steps_after_failure = RunDir(run).read_table("steps")
    resumed = _measure(["--resume", str(run), "--no-progress"], tmp)
    return run, first, after_failure, steps_after_failure, resumed


@pytest.mark.slow
def test_dead_rank_is_reported_and_earlier_configs_kept(campaign):
    _, first, m, steps, _ = campaign
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    status = {c["config_id"]: c["status"] for c in m["configs"]}
    assert status == {"n1-b4": "done", "n1-b8": "done", "n2-b4": "done", "n2-b8": "failed"}
    err = next(c["error"] for c in m["configs"] if c["config_id"] == "n2-b8")
    assert "rank 1" in err and "n2-b8" in err and "17" in err
    assert "rank 1 exited with code 17 during n2-b8" in first.stdout + first.stderr
    assert sorted(steps["config_id"].unique()) == ["n1-b4", "n1-b8", "n2-b4"]


@pytest.mark.slow
def test_resume_completes_with_finite_positive_tables(campaign):
    run, _, _, _, resumed = campaign
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    rd = RunDir(run)
    m = rd.read_manifest()
    assert all(c["status"] == "done" for c in m["configs"] + m["allreduce_benchmarks"])
    assert m["model"]["name"] == "resnet20" and m["model"]["grad_bytes"] == 4 * m["model"]["params"]
    assert m["model"]["params"] == pytest.approx(0.27e6, rel=0.01)
    assert m["versions"]["horovod"] and m["versions"]["tensorflow"] and m["hosts"][0]["cores"] >= 1

    steps = rd.read_table("steps")
    assert sorted(steps["config_id"].unique()) == ["n1-b4", "n1-b8", "n2-b4", "n2-b8"]
    for cid, g in steps.groupby("config_id"):
        n = int(g["num_replicas"].iloc[0])
        assert sorted(g["rank"].unique()) == list(range(n))
        counts = g.groupby(["rank", "mode"]).size()
        assert (counts == 3).all(), (cid, counts)
    assert np.isfinite(steps["step_time"]).all() and (steps["step_time"] > 0).all()
    ins = steps[steps["mode"] == "instrumented"]
    assert np.isfinite(ins[SPLIT]).all().all() and (ins[SPLIT] > 0).all().all()
    assert np.allclose(ins[SPLIT].sum(axis=1), ins["step_time"])
    two = ins[ins["num_replicas"] == 2]
    assert (two["bytes_reduced"] == m["model"]["grad_bytes"]).all()
    assert steps[steps["mode"] == "production"][SPLIT].isna().all().all()

    noise = rd.read_table("noise")
    assert sorted(noise["config_id"].unique()) == ["n1-b4", "n1-b8", "n2-b4", "n2-b8"]
    assert (noise.groupby("config_id").size() == 3).all()
    assert (noise["local_sqnorm"] > 0).all() and (noise["global_sqnorm"] > 0).all()
    # A mean over more examples has a smaller expected squared norm (noise averages out).
    assert noise["local_sqnorm"].mean() > noise["global_sqnorm"].mean()
    one = noise[noise["num_replicas"] == 1]
    assert (one["b_big"] == 2 * one["b_small"]).all() and (one["b_big"] == one["local_batch"]).all()

    ar = rd.read_table("allreduce")
    assert sorted(ar["num_replicas"].unique()) == [1, 2] and sorted(ar["size_bytes"].unique()) == [4096, 65536]
    assert (ar["time"] > 0).all() and np.isfinite(ar["time"]).all()
    two = ar[ar["num_replicas"] == 2]
    assert np.allclose(two["busbw"], two["size_bytes"] / two["time"])     # n = 2: busbw = algbw

    tl = rd.read_table("timeline")
    assert not tl.empty and (tl["total_time"] >= 0).all()
    assert "ALLREDUCE" in set(tl["activity"])
    assert "n2-b8" in resumed.stdout and "B_simple" in resumed.stdout     # the summary table
