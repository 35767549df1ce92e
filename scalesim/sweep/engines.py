"""Where trials run. An engine runs one trial per `run(spec, nodes)` call, blocking, and is called
from several driver threads at once (one per slot), so that every trial's result reaches the
driver (and the table) as soon as it ends.

    SparkEngine   pyspark: `local[K]` (default; loopback only, no web UI) or a cluster master
                  (spark://host:7077, yarn, k8s://...). A 1-rank trial is one Spark job of one task
                  (python workers are reused, so TensorFlow is imported once per worker); a trial on
                  N ranks is one `horovod.spark.run(num_proc=N, use_gloo=True)`. Tasks are never
                  retried (spark.task.maxFailures=1): a trial that fails is recorded, not re-run.
    LocalEngine   K long-lived worker processes (no Java needed); a worker that dies fails only
                  its own trial and is replaced. N-rank trials run under `horovodrun`, as
                  `scalesim train` does.
"""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from typing import NamedTuple

from ..errors import ScalesimError, UsageError
from .trial import TrialSpec, prepare_run_dir, rank_main, run_in_process

ENGINES = ("spark", "local")


class Slots(NamedTuple):
    trials: int     # trials in flight (Spark's K of local[K])
    threads: int    # TensorFlow intra-op threads per rank


def plan_slots(cores: int, parallel: int | None, nodes: int = 1, threads: int | None = None) -> Slots:
    """Trials in flight x ranks x threads <= cores: with --threads given, as many trials as fit;
    otherwise --parallel trials (default: one per core's worth of ranks) sharing the cores."""
    ranks_fit = max(1, cores // max(1, nodes))
    if threads:
        k = max(1, min(parallel or ranks_fit, cores // (threads * nodes) or 1))
        return Slots(k, threads)
    k = max(1, min(parallel or ranks_fit, ranks_fit))
    return Slots(k, max(1, cores // (k * nodes)))


def is_local_master(master: str | None) -> bool:
    return master is None or master.startswith("local")


def check_master(master: str | None) -> None:
    if master is None:
        return
    if not (master.startswith(("local", "spark://", "k8s://", "mesos://")) or master == "yarn"):
        raise UsageError(f"bad --spark-master {master!r}: use local[K], spark://host:port, yarn or k8s://...")


class SparkEngine:
    name = "spark"

    def __init__(self, slots: int, master: str | None = None, conf: dict | None = None):
        check_master(master)
        self.slots, self.master = slots, master or f"local[{slots}]"
        self.conf = dict(conf or {})
        self.spark = None
        self.start_seconds = float("nan")

    def start(self) -> "SparkEngine":
        # Must be in the environment before the JVM starts, or workers run another python
        # (and miss horovod); spark.pyspark.python does not reach local-mode workers.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        local = is_local_master(self.master)
        if local:
            os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise ScalesimError("pyspark is not installed: run `bash scripts/setup.sh`, "
                                "or use --engine local") from None
        t0 = time.perf_counter()
        b = (SparkSession.builder.master(self.master).appName("scalesim-sweep")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.python.worker.reuse", "true").config("spark.task.maxFailures", "1")
             .config("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL", "2")
             .config("spark.executorEnv.PYTHONUNBUFFERED", "1"))
        if local:
            b = b.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        for k, v in self.conf.items():
            b = b.config(k, v)
        try:
            self.spark = b.getOrCreate()
        except Exception as e:  # noqa: BLE001 - no Java, bad master: one line for the user
            raise ScalesimError(f"could not start Spark on {self.master}: {_first_line(e)}") from None
        self.spark.sparkContext.setLogLevel("ERROR")
        self.start_seconds = time.perf_counter() - t0
        return self

    def run(self, spec: TrialSpec, nodes: int = 1) -> dict:
        t0 = time.time()
        try:
            if nodes == 1:
                sc = self.spark.sparkContext
                sc.setJobGroup(f"trial-{spec.trial_id}", f"scalesim trial {spec.trial_id}")
                return sc.parallelize([spec], 1).map(run_in_process).collect()[0]
            import horovod.spark

            prepare_run_dir(spec)
            horovod.spark.run(rank_main, args=(spec,), num_proc=nodes, use_gloo=True, start_timeout=120,
                              nics=["lo"] if is_local_master(self.master) else None, verbose=0)
            return {"trial_id": spec.trial_id, "ok": True, "wall_time": time.time() - t0, "worker_pid": None}
        except Exception as e:  # noqa: BLE001 - a failed Spark job is this trial's failure
            return {"trial_id": spec.trial_id, "ok": False, "error": spark_error(e),
                    "wall_time": time.time() - t0, "worker_pid": None}

    def stop(self) -> None:
        if self.spark is not None:
            self.spark.stop()
            self.spark = None


def spark_error(e: BaseException) -> str:
    """The informative part of a failed Spark job's Java trace: a crashed python worker (killed,
    out of memory) or the first Python exception."""
    text = str(e)
    if "Python worker exited unexpectedly" in text:
        return "Spark python worker exited unexpectedly (crashed: killed or out of memory)"
    for needle in ("PythonException", "Error:", "Exception:"):
        for line in text.splitlines():
            if needle in line:
                return line.strip()[:500]
    return _first_line(e)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:500]


# --- local process pool --------------------------------------------------------------------
WORKER_MODULE = "scalesim.sweep.local_worker"


class _Worker:
    """A long-lived `python -m scalesim.sweep.local_worker`: pickled specs in on stdin, pickled
    results out on its stdout (its prints go to stderr). A subprocess, not multiprocessing, so the
    caller's __main__ is never re-imported."""

    def __init__(self):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
               "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)

    def call(self, spec: TrialSpec) -> dict:
        import pickle

        pickle.dump(spec, self.proc.stdin)
        self.proc.stdin.flush()
        return pickle.load(self.proc.stdout)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait()


class LocalEngine:
    name = "local"

    def __init__(self, slots: int):
        self.slots = slots
        self.start_seconds = float("nan")
        self._free: queue.Queue = queue.Queue()

    def start(self) -> "LocalEngine":
        t0 = time.perf_counter()
        for _ in range(self.slots):
            self._free.put(_Worker())
        self.start_seconds = time.perf_counter() - t0
        return self

    def run(self, spec: TrialSpec, nodes: int = 1) -> dict:
        if nodes > 1:
            return _horovodrun_trial(spec, nodes)
        w = self._free.get()
        t0 = time.time()
        try:
            return w.call(spec)
        except (EOFError, OSError, ValueError):
            code = w.proc.wait()
            why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            w = _Worker()   # replace the dead worker; the other trials go on
            return {"trial_id": spec.trial_id, "ok": False, "error": f"trial worker process died ({why})",
                    "wall_time": time.time() - t0, "worker_pid": None}
        finally:
            self._free.put(w)

    def stop(self) -> None:
        while not self._free.empty():
            self._free.get().close()


def _horovodrun_trial(spec: TrialSpec, nodes: int) -> dict:
    """An N-rank trial exactly as `scalesim train --nodes N` runs it: horovodrun + worker ranks."""
    from ..train import hvdrun
    from ..train.config import to_argv
    from ..train.worker import MODULE

    t0 = time.time()
    try:
        cfg = prepare_run_dir(spec)
        cmd = hvdrun.build_command(nodes, hvdrun.parse_hosts(None, nodes), MODULE, to_argv(cfg))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", env=hvdrun.rank_env())
        out, _ = proc.communicate()
    except ScalesimError as e:
        return {"trial_id": spec.trial_id, "ok": False, "error": str(e), "wall_time": time.time() - t0,
                "worker_pid": None}
    if proc.returncode != 0:
        tail = [ln for ln in out.splitlines() if "Error" in ln or "error" in ln][-1:] or [""]
        return {"trial_id": spec.trial_id, "ok": False, "wall_time": time.time() - t0, "worker_pid": proc.pid,
                "error": f"horovodrun exited with code {proc.returncode}: {tail[0].strip()}"[:500]}
    return {"trial_id": spec.trial_id, "ok": True, "wall_time": time.time() - t0, "worker_pid": proc.pid}


def make_engine(name: str, slots: int, master: str | None = None):
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    if name == "local" and master:
        raise UsageError("--spark-master needs --engine spark")
    return SparkEngine(slots, master) if name == "spark" else LocalEngine(slots)

