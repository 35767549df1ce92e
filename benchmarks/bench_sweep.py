"""Sweep evidence (issue 15), tiny real trials (ResNet-8, width 8, Fashion-MNIST subsets):

    grid    8 trials on Spark local[2] (2 slots x 1 thread) vs the same 8 trials one after another
            in one process (2 threads): wall-time ratio, Spark start, per-trial dispatch overhead,
            worker reuse (first trial in a worker pays the TensorFlow import, later ones not)
    search  12-trial TPE (bayes) vs 12-trial random search, same space, seeds and epoch budget
    kill    3 trials; trial 1's Spark python worker is SIGKILLed mid-training (pid from its run
            directory); the sweep finishes; --resume re-runs only trial 1
    hvd     one 2-rank trial through horovod.spark.run vs the same trial under horovodrun
            (the local engine, as `scalesim train` runs it): final weights and epoch metrics

    .venv/bin/python benchmarks/bench_sweep.py all --work /tmp/bench-sweep --out experiments/sweep

Timings on a shared 2-core machine are under load (other jobs running): read ratios, which are
measured side by side in one run, before absolute seconds. Writes <out>/results.json and copies
each sweep's sweep.json + trials.csv into <out>/<part>/.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY = dict(model="resnet8", width=8, dataset="fashion-mnist", epochs=1, train_subset=1024, test_subset=500)
GRID_AXES = {"global_batch": (32, 64, 128, 256), "lr_rule": ("linear", "none"), "warmup_epochs": (0.0,)}
# One epoch of 8192 images: enough steps (16-256) that BN's moving statistics settle and test error
# moves well away from chance (a 2048-image budget left every trial at 79-91 % error: no signal).
SEARCH_BASE = dict(TINY, epochs=1, train_subset=8192, test_subset=1000, warmup_epochs=0.0, lr_rule="linear")
SPACE = "global_batch=log:32..512,ref_lr=log:0.01..1,warmup_epochs=0.0..1.0"


def _quiet_line(r):
    print(f"  trial {r['trial_id']:>2} {r['status']:<6} obj={r['objective']:.4f} wall={r['wall_time']:.1f}s "
          f"worker={r['worker_time']:.1f}s train={r['train_seconds']:.2f}s {r['error'] or ''}", flush=True)


def _keep(sweep: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("sweep.json", "trials.csv"):
        if (sweep / f).is_file():
            shutil.copy(sweep / f, dest / f)


def _serial(out: str, threads: int) -> int:
    """Child process: the grid's trials one after another here (TF imported once)."""
    t0 = time.perf_counter()
    from scalesim.sweep.space import grid
    from scalesim.sweep.trial import TrialSpec, outcome, run_in_process

    base = {**TINY, "threads": str(threads)}
    res = []
    for i, p in enumerate(grid(GRID_AXES, (0,))):
        rd = Path(out) / "runs" / f"t{i:04d}"
        t = time.perf_counter()
        r = run_in_process(TrialSpec(i, p, base, str(rd), "test_error"))
        o = outcome(rd, "test_error")
        res.append({"trial_id": i, "ok": r["ok"], "wall": time.perf_counter() - t, "objective": o["objective"],
                    "train_seconds": o["train_seconds"]})
    print("RESULT " + json.dumps({"total": time.perf_counter() - t0, "trials": res}), flush=True)
    return 0


def part_grid(work: Path, out: Path) -> dict:
    from scalesim.sweep.driver import SweepSpec, run_sweep

    print("grid: 8 trials on Spark local[2] ...", flush=True)
    spec = SweepSpec(base=TINY, search="grid", axes=GRID_AXES, seeds=(0,))
    t0 = time.perf_counter()
    s = run_sweep(spec, work / "grid-spark", engine="spark", parallel=2, cores=2, on_trial=_quiet_line)
    spark_total = time.perf_counter() - t0
    print("grid: the same 8 trials one after another in one process (2 threads) ...", flush=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, __file__, "_serial", str(work / "grid-serial"), "2"],
                       capture_output=True, text=True)
    serial_total = time.perf_counter() - t0
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise SystemExit("serial run failed:\n" + r.stderr[-3000:])
    serial = json.loads(line[0][7:])
    rows = s.rows
    overhead = [r["wall_time"] - r["worker_time"] for r in rows]
    setup = [r["worker_time"] - r["train_seconds"] for r in rows]
    pids = [r["worker_pid"] for r in rows]
    first = {p: min(r["trial_id"] for r in rows if r["worker_pid"] == p) for p in set(pids)}
    first_setup = [setup[i] for i, r in enumerate(rows) if first[r["worker_pid"]] == r["trial_id"]]
    later_setup = [setup[i] for i, r in enumerate(rows) if first[r["worker_pid"]] != r["trial_id"]]
    _keep(work / "grid-spark", out / "grid")
    diffs = [abs(a["objective"] - b["objective"]) for a, b in zip(rows, serial["trials"])]
    return {"trials": len(rows), "done": sum(r["status"] == "done" for r in rows),
            "spark_total_s": spark_total, "spark_start_s": s.engine_start_seconds,
            "serial_total_s": serial_total, "serial_in_process_s": serial["total"],
            "ratio_serial_over_spark": serial_total / spark_total,
            "ratio_excluding_start": (serial_total) / (spark_total - s.engine_start_seconds),
            "dispatch_overhead_s": {"mean": sum(overhead) / len(overhead), "max": max(overhead)},
            "python_workers": len(set(pids)),
            "worker_setup_first_trial_s": first_setup, "worker_setup_reused_s": later_setup,
            "objective_abs_diff_spark_vs_serial_max": max(diffs)}


def part_search(work: Path, out: Path, trials: int = 12) -> dict:
    from scalesim.sweep.driver import SweepSpec, run_sweep

    res = {}
    for kind in ("bayes", "random"):
        print(f"search: {kind}, {trials} trials ...", flush=True)
        spec = SweepSpec(base=SEARCH_BASE, search=kind, space=SPACE, seeds=(0,), trials=trials, sampler_seed=0)
        s = run_sweep(spec, work / f"search-{kind}", engine="spark", parallel=2, cores=2, on_trial=_quiet_line)
        done = [r for r in s.rows if r["status"] == "done"]
        best = min(done, key=lambda r: r["objective"])
        objs = [r["objective"] for r in sorted(done, key=lambda r: r["trial_id"])]
        res[kind] = {"done": len(done), "failed": len(s.rows) - len(done), "best_objective": best["objective"],
                     "best_trial": best["trial_id"], "best_params": json.loads(best["params"]),
                     "best_so_far": [min(objs[:i + 1]) for i in range(len(objs))], "wall_s": s.wall_seconds}
        _keep(work / f"search-{kind}", out / f"search-{kind}")
    return res


def _kill_mid_training(run_dir: Path, info: dict, stop: threading.Event) -> None:
    """Wait until the trial's worker has started training (the manifest records hosts, written just
    before the first step), then SIGKILL that worker by the pid it wrote."""
    from scalesim.sweep.trial import worker_pid

    while not stop.is_set():
        try:
            m = json.loads((run_dir / "manifest.json").read_text())
        except (OSError, ValueError):
            m = {}
        pid = worker_pid(run_dir)
        if pid and "hosts" in m:
            time.sleep(0.5)
            info["epochs_written_at_kill"] = len(list((run_dir / "epochs").glob("*.parquet")))
            info["steps_written_at_kill"] = len(list((run_dir / "steps").glob("*.parquet")))
            os.kill(pid, signal.SIGKILL)
            info["killed_pid"] = pid
            return
        time.sleep(0.05)


def part_kill(work: Path, out: Path) -> dict:
    from scalesim.sweep import table
    from scalesim.sweep.driver import SweepSpec, run_sweep

    base = dict(TINY, train_subset=4096, epochs=1)
    spec = SweepSpec(base=base, search="grid", axes={"global_batch": (32, 64, 128)}, seeds=(0,))
    sweep = work / "kill"
    info, stop = {}, threading.Event()
    th = threading.Thread(target=_kill_mid_training, args=(sweep / "runs" / "t0001", info, stop), daemon=True)
    th.start()
    print("kill: 3 trials, trial 1's worker SIGKILLed mid-training ...", flush=True)
    try:
        s1 = run_sweep(spec, sweep, engine="spark", parallel=2, cores=2, on_trial=_quiet_line)
    finally:
        stop.set()
    first = {r["trial_id"]: dict(r) for r in s1.rows}
    print("kill: --resume ...", flush=True)
    s2 = run_sweep(None, sweep, resume=True, engine="spark", parallel=2, cores=2, on_trial=_quiet_line)
    second = {r["trial_id"]: r for r in s2.rows}
    rerun = [i for i in second if second[i]["attempts"] != first[i]["attempts"]]
    _keep(sweep, out / "kill")
    return {**info, "first_session": {i: (r["status"], r["error"]) for i, r in first.items()},
            "after_resume": {i: (r["status"], r["run_dir"], r["attempts"]) for i, r in second.items()},
            "rerun_trials": rerun, "table_rows": len(table.read(sweep))}


def part_hvd(work: Path, out: Path) -> dict:
    import numpy as np

    from scalesim.schema import RunDir
    from scalesim.sweep.driver import SweepSpec, run_sweep

    res = {}
    for eng in ("spark", "local"):
        print(f"hvd: one 2-rank trial via {'horovod.spark.run' if eng == 'spark' else 'horovodrun'} ...", flush=True)
        base = dict(TINY, nodes=2, train_subset=512, dump_weights=str(work / f"hvd-weights-{eng}"))
        spec = SweepSpec(base=base, search="grid", axes={"global_batch": (64,)}, seeds=(0,))
        s = run_sweep(spec, work / f"hvd-{eng}", engine=eng, parallel=1, cores=2, on_trial=_quiet_line)
        r = s.rows[0]
        ep = RunDir(work / f"hvd-{eng}" / r["run_dir"]).read_table("epochs")
        res[eng] = {"status": r["status"], "wall_s": r["wall_time"], "sweep_wall_s": s.wall_seconds,
                    "epochs": ep[["epoch", "train_loss", "train_acc", "test_loss", "test_acc"]].to_dict("records")}
        _keep(work / f"hvd-{eng}", out / f"hvd-{eng}")
    w = {e: [dict(np.load(work / f"hvd-weights-{e}" / f"rank{k}.npz")) for k in range(2)] for e in ("spark", "local")}
    keys = [k for k in w["spark"][0] if k.startswith("final")]
    res["final_weights_max_abs_diff"] = max(float(np.max(np.abs(w["spark"][0][k] - w["local"][0][k]))) for k in keys)
    res["ranks_identical_spark"] = all(np.array_equal(w["spark"][0][k], w["spark"][1][k]) for k in keys)
    res["metrics_max_abs_diff"] = max(abs(a[c] - b[c]) for a, b in zip(res["spark"]["epochs"], res["local"]["epochs"])
                                      for c in ("train_loss", "test_loss", "test_acc"))
    return res


PARTS = {"grid": part_grid, "kill": part_kill, "hvd": part_hvd, "search": part_search}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_serial"]:
        return _serial(argv[1], int(argv[2]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("parts", nargs="+", choices=[*PARTS, "all"])
    p.add_argument("--work", default="/tmp/bench-sweep", help="scratch directory for the sweeps (must not exist)")
    p.add_argument("--out", default="experiments/sweep", help="curated results")
    args = p.parse_args(argv)
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=False)
    out.mkdir(parents=True, exist_ok=True)
    parts = list(PARTS) if "all" in args.parts else args.parts
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for name in parts:
        t0 = time.perf_counter()
        r = PARTS[name](work, out)
        r["part_wall_s"] = time.perf_counter() - t0
        r["load_avg_after"] = os.getloadavg()
        r["measured"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        results[name] = r
        results_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(json.dumps({name: r}, indent=2, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
