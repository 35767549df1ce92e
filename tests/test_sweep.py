"""Sweeps end to end: real Spark (local[2], loopback), real `scalesim train` runs of a tiny
ResNet-8 on 256 Fashion-MNIST images, one epoch.

One Spark sweep of 4 trials: trial 0's Spark python worker is SIGKILLed while it runs (its pid comes
from the run directory it writes), trials 2-3 ask for a global batch larger than the data and fail
inside training; trial 1 must finish and the table must say all of that. Then a resume (local
engine) re-runs exactly trials 0, 2 and 3 in fresh run directories and leaves trial 1 alone.
"""
import os
import signal
import threading
import time

import pytest

pytest.importorskip("horovod")
from scalesim.sweep import table  # noqa: E402
from scalesim.sweep.curves import sweep_curves  # noqa: E402
from scalesim.sweep.driver import SweepSpec, run_sweep  # noqa: E402
from scalesim.sweep.trial import worker_pid  # noqa: E402

BASE = dict(model="resnet8", width=8, dataset="fashion-mnist", epochs=1, train_subset=256, test_subset=256)
SPEC = SweepSpec(base=BASE, search="grid", axes={"global_batch": (32, 512), "lr_rule": ("linear",),
                                                  "warmup_epochs": (0.0,)}, seeds=(0, 1))


def _kill_when_started(run_dir, killed, stop):
    """SIGKILL the process that wrote run_dir/worker.pid, as soon as it has."""
    while not stop.is_set():
        pid = worker_pid(run_dir)
        if pid:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


@pytest.fixture(scope="module")
def killed_sweep(tmp_path_factory):
    pytest.importorskip("pyspark")
    out = tmp_path_factory.mktemp("sweep") / "s"
    killed, stop = [], threading.Event()
    watcher = threading.Thread(target=_kill_when_started, args=(out / "runs" / "t0000", killed, stop), daemon=True)
    watcher.start()
    try:
        session = run_sweep(SPEC, out, engine="spark", parallel=2, cores=2)
    finally:
        stop.set()
    return out, session, killed


@pytest.mark.slow
def test_spark_grid_records_done_killed_and_failed(killed_sweep):
    out, session, killed = killed_sweep
    assert session.slots == 2 and session.threads == 1 and len(killed) == 1
    rows = table.read(out)
    assert [r["trial_id"] for r in rows] == [0, 1, 2, 3]
    assert [r["status"] for r in rows] == ["failed", "done", "failed", "failed"]
    assert rows[0]["error"].startswith("Spark python worker exited unexpectedly")
    assert all("larger than the 256 training examples" in r["error"] for r in rows[2:])
    done = rows[1]
    assert 0.0 <= done["objective"] <= 1.0 and done["objective"] == done["test_error"]
    assert done["epochs_done"] == 1 and done["wall_time"] >= done["worker_time"] > done["train_seconds"] > 0
    assert (done["global_batch"], done["seed"]) == (32, 1)
    run = out / done["run_dir"]
    assert (run / "manifest.json").is_file() and list((run / "epochs").glob("*.parquet"))
    # The killed trial's run directory says so too (its worker never could).
    import json

    m = json.loads((out / "runs" / "t0000" / "manifest.json").read_text())
    assert m["status"] == "failed" and worker_pid(out / "runs" / "t0000") == killed[0]
    assert (out / "trials.csv").read_text().count("\n") == 5


@pytest.mark.slow
def test_resume_reruns_only_unfinished(killed_sweep):
    out, _, _ = killed_sweep
    before = {r["trial_id"]: r for r in table.read(out)}
    session = run_sweep(None, out, resume=True, engine="local", parallel=2, cores=2)
    rows = {r["trial_id"]: r for r in session.rows}
    keep = ("status", "objective", "run_dir", "attempts", "started", "finished", "worker_pid")
    assert {k: rows[1][k] for k in keep} == {k: before[1][k] for k in keep} and rows[1]["attempts"] == 1
    assert rows[0]["status"] == "done" and rows[0]["attempts"] == 2 and rows[0]["run_dir"] == "runs/t0000-a2"
    assert [rows[i]["status"] for i in (2, 3)] == ["failed", "failed"] and rows[2]["attempts"] == 2
    assert (out / "runs" / "t0000" / "manifest.json").is_file()       # the first attempt is kept
    assert [r["status"] for r in table.read(out)] == ["done", "done", "failed", "failed"]
    curves = sweep_curves(out)
    assert [(c.trial_id, c.global_batch) for c in curves] == [(0, 32), (1, 32)]
    assert list(curves[0].epochs["epoch"]) == [0]
