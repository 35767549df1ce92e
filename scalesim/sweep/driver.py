"""The sweep loop. One driver thread per slot takes the next trial (a failed/pending one first on
--resume, then the search's next proposal), runs it on the engine, reads the objective from the
trial's run directory, tells the search and rewrites the table, so the table on disk is always
complete up to the last finished trial. Finished trials are never run again; a re-run of a failed
trial gets a fresh run directory (runs/t0003-a2), so nothing written is lost.

    <sweep>/sweep.json   {schema, spec (SweepSpec as a dict), created, sessions [...]}
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

from ..errors import DataError, UsageError
from ..schema import read_json, write_json
from . import table
from .engines import make_engine, plan_slots
from .search import SEARCHES, GridSearch, OptunaSearch
from .space import grid, parse_space
from .trial import OBJECTIVES, TrialSpec, outcome

SCHEMA = "scalesim.sweep/1"
MANIFEST = "sweep.json"


class SweepSpec(NamedTuple):
    base: dict                      # TrainConfig fields every trial shares (model, dataset, epochs, nodes, ...)
    search: str = "grid"
    axes: dict = {}                 # grid: {param: [values]}
    space: str = ""                 # bayes/random: space string (see space.parse_space)
    seeds: tuple = (0,)
    trials: int = 0                 # bayes/random: number of trials
    objective: str = "test_error"
    sampler_seed: int = 0
    points: tuple = ()              # grid: an explicit list of trials instead of axes x seeds


def grid_points(spec: "SweepSpec") -> list[dict]:
    """A grid sweep's trials, in run order."""
    return [dict(p) for p in spec.points] if spec.points else grid(spec.axes, spec.seeds)


class Session(NamedTuple):
    rows: list
    wall_seconds: float
    engine_start_seconds: float
    slots: int
    threads: int


def check(spec: SweepSpec, batch_fits_data: bool = False) -> SweepSpec:
    """Validate at the boundary: a bad sweep fails here (exit 2), not as N failed trials. With
    batch_fits_data (the command line), a trial whose global batch is larger than the data is refused
    too, where the data's size is known without reading it; otherwise such a trial fails as data."""
    from ..train.config import TrainConfig

    if spec.search not in SEARCHES:
        raise UsageError(f"unknown search {spec.search!r}; choose one of {', '.join(SEARCHES)}")
    if spec.objective not in OBJECTIVES:
        raise UsageError(f"unknown objective {spec.objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if spec.objective.startswith("test") and not spec.base.get("eval", True):
        raise UsageError(f"objective {spec.objective} needs test-set evaluation (drop --no-eval)")
    nodes = int(spec.base.get("nodes", 1))
    if spec.search == "grid":
        points = grid_points(spec)
        odd = sorted({p["global_batch"] for p in points if p.get("global_batch", nodes) % nodes})
        if odd:
            raise UsageError(f"global batch {odd[0]} is not a multiple of the {nodes} ranks per trial")
    else:
        if spec.trials < 1:
            raise UsageError(f"--trials must be at least 1 for --search {spec.search} (got {spec.trials})")
        dims = parse_space(spec.space)
        points = [{d.name: (d.choices[0] if hasattr(d, "choices") else d.low) for d in dims}]
    from .trial import config_for

    from ..train.data import check_available, known_train_size

    for p in points:
        cfg = config_for(TrialSpec(0, p, spec.base, "", spec.objective))
        TrainConfig.check(cfg)
        n = known_train_size(cfg.dataset, cfg.train_subset, cfg.synthetic_size) if batch_fits_data else None
        if n is not None and cfg.batch > n:
            raise UsageError(f"global batch {cfg.batch} is larger than the {n} training examples")
    check_available(cfg.dataset, cfg.data)
    return spec


def spec_to_json(spec: SweepSpec) -> dict:
    d = spec._asdict()
    d["seeds"], d["axes"] = list(spec.seeds), {k: list(v) for k, v in spec.axes.items()}
    d["points"] = [dict(p) for p in spec.points]
    return d


def spec_from_json(d: dict) -> SweepSpec:
    d = dict(d)
    d["seeds"], d["axes"] = tuple(d.get("seeds", (0,))), {k: tuple(v) for k, v in d.get("axes", {}).items()}
    d["points"] = tuple(d.get("points") or ())
    return SweepSpec(**{k: v for k, v in d.items() if k in SweepSpec._fields})


def load_spec(sweep_dir: str | Path) -> SweepSpec:
    p = Path(sweep_dir) / MANIFEST
    if not p.is_file():
        raise DataError(f"{sweep_dir}: not a sweep directory (no {MANIFEST})")
    m = read_json(p)
    if m.get("schema") != SCHEMA:
        raise DataError(f"{p}: unknown schema {m.get('schema')!r} (expected {SCHEMA})")
    return spec_from_json(m["spec"])


def run_sweep(spec: SweepSpec | None, out: str | Path, *, resume: bool = False, engine: str = "spark",
              spark_master: str | None = None, parallel: int | None = None, cores: int | None = None,
              on_trial: Callable[[dict], None] | None = None, batch_fits_data: bool = False) -> Session:
    """Run (or resume) the sweep in `out`. With resume, the spec comes from out/sweep.json."""
    from ..train.hvdrun import usable_cores

    out = Path(out).resolve()
    if resume:
        spec, rows = load_spec(out), table.read(out)
    else:
        if (out / MANIFEST).exists():
            raise UsageError(f"{out} already holds a sweep; pass --resume {out} to continue it")
        spec, rows = check(spec, batch_fits_data), []
        write_json(out / MANIFEST, {"schema": SCHEMA, "spec": spec_to_json(spec), "created": _now(), "sessions": []})
    nodes = int(spec.base.get("nodes", 1))
    threads_given = None if str(spec.base.get("threads", "auto")) == "auto" else int(spec.base["threads"])
    slots = plan_slots(cores or usable_cores(), parallel, nodes, threads_given)
    eng = make_engine(engine, slots.trials * nodes, spark_master)
    loop = _Loop(spec, out, rows, eng, slots, on_trial)
    # horovod.spark.run installs signal handlers, which Python allows only on the main thread: the
    # main thread runs one slot itself, and multi-rank Spark trials run one at a time on it.
    in_flight = 1 if nodes > 1 and eng.name == "spark" else slots.trials
    t_start, started = time.perf_counter(), _now()
    eng.start()
    try:
        workers = [threading.Thread(target=loop.run, name=f"sweep-slot-{i}", daemon=True) for i in range(1, in_flight)]
        for w in workers:
            w.start()
        loop.run()
        for w in workers:
            w.join()
    finally:
        eng.stop()
        wall = time.perf_counter() - t_start
        m = read_json(out / MANIFEST)
        m.setdefault("sessions", []).append({"started": started, "elapsed": wall, "resume": resume,
                                             "engine": eng.name, "master": getattr(eng, "master", None),
                                             "slots": in_flight, "threads_per_rank": slots.threads,
                                             "trials_run": loop.dispatched,
                                             "engine_start_seconds": eng.start_seconds})
        write_json(out / MANIFEST, m)
    return Session(sorted(loop.rows, key=lambda r: r["trial_id"]), wall, eng.start_seconds, in_flight, slots.threads)


class _Loop:
    """The trials of one session: what to run next, and recording each result (thread-safe)."""

    def __init__(self, spec: SweepSpec, out: Path, rows: list, eng, slots, on_trial):
        self.spec, self.out, self.eng, self.on_trial = spec, out, eng, on_trial
        self.nodes = int(spec.base.get("nodes", 1))
        self.base = {**spec.base, "threads": str(slots.threads)}
        if spec.search == "grid":
            self.search = GridSearch([])
            rows = rows or [table.new_row(i, p) for i, p in enumerate(grid_points(spec))]
        else:
            self.search = OptunaSearch(spec.search, parse_space(spec.space), spec.trials, spec.seeds,
                                       spec.sampler_seed)
            for r in rows:
                if r["status"] == "done":
                    self.search.record(table.params_of(r), r["objective"])
        self.rows, self.todo = rows, table.unfinished(rows)
        for r in self.todo:
            r["status"] = "pending"
        self.next_id = max((r["trial_id"] for r in rows), default=-1) + 1
        self.dispatched = 0      # trials this session ran (a resume of a finished sweep runs none)
        self.lock = threading.Lock()
        table.write(out, rows)

    def run(self) -> None:
        while True:
            r, handle = self.take()
            if r is None:
                return
            self.record(r, handle, self.dispatch(r))
            if self.on_trial is not None:
                self.on_trial(dict(r))

    def take(self):
        """(row, search handle): a failed/pending trial first, then the search's next proposal."""
        with self.lock:
            if self.todo:
                return self.todo.pop(0), None
            params, handle = self.search.ask(self.next_id)
            if params is None:
                return None, None
            r = table.new_row(self.next_id, params)
            self.next_id += 1
            self.rows.append(r)
            return r, handle

    def dispatch(self, r) -> tuple[dict, float]:
        with self.lock:
            r["attempts"] = int(r.get("attempts") or 0) + 1
            self.dispatched += 1
            name = f"t{r['trial_id']:04d}" + (f"-a{r['attempts']}" if r["attempts"] > 1 else "")
            r.update(status="running", run_dir=f"runs/{name}", started=_now(), finished=None, error=None,
                     engine=self.eng.name, worker_pid=None)
            table.write(self.out, self.rows)
        ts = TrialSpec(int(r["trial_id"]), table.params_of(r), self.base, str(self.out / r["run_dir"]),
                       self.spec.objective)
        t0 = time.perf_counter()
        res = self.eng.run(ts, self.nodes)
        return res, time.perf_counter() - t0

    def record(self, r, handle, dispatched) -> None:
        res, wall = dispatched
        run_dir = self.out / r["run_dir"]
        o = outcome(run_dir, self.spec.objective)
        ok = bool(res.get("ok")) and o["run_status"] == "done" and o["epochs_done"] >= int(self.base.get("epochs", 1))
        error = None if ok else (res.get("error") or o["run_error"] or "trial did not finish")
        if not ok and o["run_status"] == "running":   # its worker died: say so in the run directory too
            from ..train.worker import mark_failed

            mark_failed(str(run_dir), error)
        with self.lock:
            r.update(status="done" if ok else "failed", wall_time=wall, worker_time=res.get("wall_time"),
                     train_seconds=o["train_seconds"], test_error=o["test_error"], test_loss=o["test_loss"],
                     train_loss=o["train_loss"], epochs_done=o["epochs_done"], error=error,
                     objective=o["objective"] if ok else float("nan"), finished=_now(),
                     worker_pid=res.get("worker_pid"))
            if handle is not None:
                self.search.tell(handle, r["objective"] if ok else None)
            elif ok:
                self.search.record(table.params_of(r), r["objective"])
            table.write(self.out, self.rows)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
