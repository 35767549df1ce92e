"""One horovodrun launch of the measurement worker for one node count: stream its output,
turn the worker's events into manifest updates, and say which configuration and rank failed."""
from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from ..schema import RunDir
from ..train import hvdrun
from . import events


@dataclass
class LaunchResult:
    ok: bool = False
    finished: set = field(default_factory=set)      # config ids that reached done or failed
    bench_finished: bool = False
    error: str | None = None
    fatal: str | None = None                         # bad input every launch would hit

    @property
    def progressed(self) -> bool:
        return bool(self.finished) or self.bench_finished

    def fail_remaining(self, rd: RunDir, n: int, ids: list[str], bench: bool, bar) -> None:
        why = self.error or "the worker ended without measuring it"
        for cid in ids:
            _set_status(rd, "configs", "config_id", cid, "failed", why)
            bar.update(1)
        if bench:
            _set_status(rd, "allreduce_benchmarks", "num_replicas", n, "failed", why)
            bar.update(1)
        bar.write(f"n={n}: {len(ids) + bench} item(s) not measured: {why}")


def _set_status(rd: RunDir, key: str, id_key: str, ident, status: str, error: str | None, **extra) -> None:
    m = rd.read_manifest()
    for c in m.get(key, []):
        if c[id_key] == ident:
            c.update(status=status, error=error, **extra)
    rd.write_manifest(m)


def launch_hosts(cfg: dict, n: int) -> list[hvdrun.Host]:
    """The campaign's --hosts (or localhost) for a launch of n ranks."""
    return hvdrun.parse_hosts(",".join(cfg["hosts"]) or None, n)


def worker_command(rd: RunDir, cfg: dict, n: int, ids: list[str], bench: bool) -> list[str]:
    args = ["--run-dir", str(rd.path.resolve()), "--configs", ",".join(ids)]
    return hvdrun.build_command(n, launch_hosts(cfg, n), "scalesim.measure.worker",
                                args + (["--allreduce-bench"] if bench else []))


def worker_env(rd: RunDir, cfg: dict, n: int, attempt: int) -> dict:
    env = hvdrun.rank_env()
    if cfg.get("timeline"):
        tl = rd.path / "timeline" / f"n{n}-{attempt}.json"
        tl.parent.mkdir(parents=True, exist_ok=True)
        env["HOROVOD_TIMELINE"] = str(tl.resolve())
    return env


def run_launch(rd: RunDir, n: int, ids: list[str], bench: bool, attempt: int, bar) -> LaunchResult:
    cfg = rd.read_manifest()["config"]   # the campaign's settings: fixed for the run's life
    timeout = float(cfg.get("timeout", 900))
    log_path = rd.path / "logs" / f"n{n}-{attempt}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = worker_command(rd, cfg, n, ids, bench)
    res, current, rank_errors = LaunchResult(), None, {}
    tail = collections.deque(maxlen=4000)
    with open(log_path, "w") as log:
        log.write(" ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", env=worker_env(rd, cfg, n, attempt), start_new_session=True,
                                bufsize=1)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        last_progress, timed_out = time.monotonic(), False
        try:
            while True:
                try:
                    line = lines.get(timeout=1.0)
                except queue.Empty:
                    if proc.poll() is not None and lines.empty():
                        break
                    if time.monotonic() - last_progress > timeout:
                        timed_out = True
                        _kill(proc)
                    continue
                if line is None:
                    break
                log.write(line)
                tail.append(line.rstrip("\n"))
                ev = events.parse(line)
                if ev is None:
                    continue
                last_progress = time.monotonic()
                current = _handle(rd, n, ev, res, current, rank_errors, bar)
        except BaseException:
            _kill(proc)
            raise
        finally:
            rc = proc.wait()
    res.ok = rc == 0 and not timed_out
    if not res.ok:
        res.error = _failure_message(rc, timed_out, timeout, current, list(tail), rank_errors)
        if current == "allreduce":
            _set_status(rd, "allreduce_benchmarks", "num_replicas", n, "failed", res.error)
            res.bench_finished = True
            bar.update(1)
        elif current is not None:
            _set_status(rd, "configs", "config_id", current, "failed", res.error)
            res.finished.add(current)
            bar.update(1)
        if not res.fatal:  # a fatal error is reported once, by the CLI
            bar.write(f"n={n}: {res.error} (log: {log_path})")
    if cfg.get("timeline"):
        _parse_timeline(rd, n, attempt)
    return res


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _kill(proc: subprocess.Popen) -> None:
    # The launch runs in its own session: signal only that process group (horovodrun and ranks).
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _handle(rd: RunDir, n: int, ev: dict, res: LaunchResult, current, rank_errors: dict, bar):
    kind = ev["event"]
    if kind == "facts":
        _record_facts(rd, n, ev)
    elif kind == "config_start":
        current = ev["config_id"]
        bar.set_postfix_str(current)
    elif kind == "progress":
        bar.set_postfix_str(f"{ev.get('config_id')} {ev.get('done')}/{ev.get('total')} steps")
    elif kind == "config_done":
        cid = ev["config_id"]
        _set_status(rd, "configs", "config_id", cid, "done", None, summary=ev.get("summary", {}))
        skipped = int(ev.get("summary", {}).get("noise_skipped", 0) or 0)
        if skipped:
            m = rd.read_manifest()
            rd.update_manifest(noise_nonfinite_skipped=int(m.get("noise_nonfinite_skipped", 0)) + skipped)
            bar.write(f"{cid}: skipped {skipped} non-finite gradient-noise step(s)")
        res.finished.add(cid)
        current = None
        bar.update(1)
    elif kind == "ar_start":
        current = "allreduce"
        bar.set_postfix_str(f"allreduce n={n}")
    elif kind == "ar_done":
        _set_status(rd, "allreduce_benchmarks", "num_replicas", n, "done", None)
        res.bench_finished = True
        current = None
        bar.update(1)
    elif kind == "error":
        rank_errors[int(ev.get("rank", -1))] = ev.get("error", "")
        if ev.get("fatal"):
            res.fatal = ev.get("error", "")
    return current


def _record_facts(rd: RunDir, n: int, ev: dict) -> None:
    m = rd.read_manifest()
    launches = m.setdefault("launch_hosts", {})
    launches[str(n)] = ev["hosts"]
    largest = max(launches, key=int)
    m["hosts"] = launches[largest]
    m["cores_per_host"] = min(h["cores"] for h in m["hosts"])
    m["versions"].update(ev.get("versions", {}))
    m["model"] = ev.get("model", m.get("model"))
    for c in m["configs"]:
        if c["num_replicas"] == n:
            c.update(num_nodes=len(ev["hosts"]), ranks_per_host=max(h["ranks"] for h in ev["hosts"]),
                     threads_per_rank=ev.get("threads_per_rank"))
    rd.write_manifest(m)


def _failure_message(rc, timed_out, timeout, current, tail, rank_errors) -> str:
    where = f"during {current}" if current else "before measuring started"
    if timed_out:
        return f"no progress for {timeout:g} s {where}; launch killed"
    failed = events.first_failed_rank("\n".join(tail))
    if failed is None and rank_errors:
        rank = min(rank_errors)
        return f"rank {rank} failed {where}: {rank_errors[rank]}"
    if failed is None:
        return f"horovodrun exited with code {rc} {where}"
    rank, code = failed
    detail = rank_errors.get(rank) or events.rank_stderr_tail(tail, rank)
    return f"rank {rank} exited with code {code} {where}" + (f": {detail}" if detail else "")


def _parse_timeline(rd: RunDir, n: int, attempt: int) -> None:
    from . import timeline

    path = rd.path / "timeline" / f"n{n}-{attempt}.json"
    if not path.is_file():
        return
    try:
        df = timeline.parse(path)
    except Exception as e:  # a broken optional capture must not fail the campaign
        print(f"timeline n={n}: not parsed ({e})", file=sys.stderr)
        return
    df.insert(0, "num_replicas", n)
    rd.write_part("timeline", f"n{n}-{attempt}", df)
