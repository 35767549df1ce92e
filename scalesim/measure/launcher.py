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

from .. import procs
from ..schema import RunDir
from ..train import hvdrun
from . import events, placement


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
    """Exactly the slots a launch of n ranks uses: horovodrun --gloo treats -np as a minimum and
    fills every slot of -H, so the campaign's --hosts is trimmed per launch (placement.trim)."""
    hosts = hvdrun.parse_hosts(",".join(cfg["hosts"]) or None, n)
    return placement.trim(hosts, n, per_node(cfg, n))


def per_node(cfg: dict, n: int) -> int | None:
    """Ranks per node of a launch of n ranks: the emulated campaign's one devices-per-node count, or
    n / --nodes with --hosts (every launch spans the same nodes); None = fill hosts in order."""
    if cfg.get("emulated"):
        return int(cfg["emulated"]["devices_per_node"])
    nodes = (cfg.get("placement") or {}).get("num_nodes")
    if cfg.get("hosts") and nodes and n % nodes == 0:
        return n // nodes
    return None


def worker_command(rd: RunDir, cfg: dict, n: int, ids: list[str], bench: bool) -> list[str]:
    hosts = launch_hosts(cfg, n)
    # Every rank checks Horovod's placement against this (placement.mismatch).
    args = ["--run-dir", str(rd.path.resolve()), "--configs", ",".join(ids),
            "--placement", hvdrun.hosts_arg(hosts)]
    # horovodrun caches its ssh check per host name in ~/.horovod; emulated clusters reuse names.
    # The node's interface only when ranks span nodes: a one-host launch rendezvous on 127.0.0.1.
    extra = []
    if cfg["hosts"]:
        extra = ["--disable-cache"]
        if cfg.get("network_interface") and len(hosts) > 1:
            extra += ["--network-interfaces", cfg["network_interface"]]
    return hvdrun.build_command(n, hosts, "scalesim.measure.worker",
                                args + (["--allreduce-bench"] if bench else []), extra)


def worker_env(rd: RunDir, cfg: dict, n: int, attempt: int) -> dict:
    env = hvdrun.rank_env()
    if cfg.get("emulated"):  # every node has the same CPU share (horovodrun forwards this to all ranks)
        env["SCALESIM_CORES_PER_NODE"] = repr(float(cfg["emulated"]["cores_per_node"]))
    if cfg.get("timeline"):
        tl = rd.path / "timeline" / f"n{n}-{attempt}.json"
        tl.parent.mkdir(parents=True, exist_ok=True)
        env["HOROVOD_TIMELINE"] = str(tl.resolve())
    return env


def run_launch(rd: RunDir, n: int, ids: list[str], bench: bool, attempt: int, bar, wrap=None) -> LaunchResult:
    """wrap: turns the horovodrun command into the one to start (e.g. on an emulated node)."""
    cfg = rd.read_manifest()["config"]   # the campaign's settings: fixed for the run's life
    timeout = float(cfg.get("timeout") or 900)  # runs made before NaN was refused stored null
    log_path = rd.path / "logs" / f"n{n}-{attempt}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = worker_command(rd, cfg, n, ids, bench)
    cmd = wrap(cmd) if wrap else cmd
    res, current, rank_errors = LaunchResult(), None, {}
    tail = collections.deque(maxlen=4000)
    with _Log(log_path) as log:
        log.write(" ".join(cmd) + "\n")
        # Its own process group, which this process ends on exit, exceptions and SIGTERM/SIGHUP;
        # the ranks' watchdog ends them if this process is SIGKILLed (scalesim.procs).
        proc = procs.launch(cmd, env=worker_env(rd, cfg, n, attempt), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
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
                        procs.end(proc)   # the launch's process group: horovodrun and ranks
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
            procs.end(proc)
            raise
        finally:
            rc = proc.wait()
            procs.forget(proc)
    res.ok = rc == 0 and not timed_out
    if not res.ok:
        where = {s.rank: s.host for s in placement.expected(launch_hosts(cfg, n))} if cfg.get("hosts") else {}
        res.error = _failure_message(rc, timed_out, timeout, current, list(tail), rank_errors, where)
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


class _Log:
    """The launch log. It is a convenience: a full disk stops it (with one note), not the launch."""

    def __init__(self, path):
        self.path, self.f = path, None
        try:
            self.f = open(path, "w")
        except OSError as e:
            print(f"launch log {path}: not written ({e.strerror})", file=sys.stderr)

    def write(self, text: str) -> None:
        if self.f is None:
            return
        try:
            self.f.write(text)
        except OSError as e:
            print(f"launch log {self.path}: stopped ({e.strerror})", file=sys.stderr)
            self.close()

    def close(self) -> None:
        f, self.f = self.f, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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


def _failure_message(rc, timed_out, timeout, current, tail, rank_errors, host_of=None) -> str:
    """host_of: rank -> node name, from the launch's placement (with --hosts / emulated nodes)."""
    where = f"during {current}" if current else "before measuring started"
    host_of = host_of or {}

    def who(rank):
        return f"rank {rank} on {host_of[rank]}" if rank in host_of else f"rank {rank}"

    if timed_out:
        return f"no progress for {timeout:g} s {where}; launch killed"
    failed = events.first_failed_rank("\n".join(tail))
    if failed is None and rank_errors:
        rank = min(rank_errors)
        return f"{who(rank)} failed {where}: {rank_errors[rank]}"
    if failed is None:
        return f"horovodrun exited with code {rc} {where}"
    rank, code = failed
    detail = rank_errors.get(rank) or events.rank_stderr_tail(tail, rank)
    return f"{who(rank)} exited with code {code} {where}" + (f": {detail}" if detail else "")


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
