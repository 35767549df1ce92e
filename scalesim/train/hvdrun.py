"""Launching Horovod ranks (shared by `scalesim train` and `scalesim measure`). No TensorFlow at
module level: the launcher process only builds a `horovodrun` command line and relays its output.

Threads: N ranks on one host share its cores, so each rank gets intra-op threads =
max(1, cores // ranks_per_host) and one inter-op thread (a ResNet step is a chain of large ops;
more inter-op threads only oversubscribe the cores). Each rank resolves 'auto' itself from its own
host's core count and Horovod's local_size, which also works for remote hosts.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from ..errors import ScalesimError, UsageError

QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
_PREFIX = re.compile(r"^\[(\d+)\]<(stdout|stderr)>:(.*)$")
_HOST = re.compile(r"^[A-Za-z0-9_.\-]+$")


class LaunchFailed(ScalesimError):
    """horovodrun exited non-zero (the ranks' own output says why)."""

    exit_code = 1


class Host(NamedTuple):
    name: str
    slots: int


def parse_hosts(text: str | None, num_ranks: int) -> list[Host]:
    """'h1:4,h2:4' -> hosts; None -> this machine with num_ranks slots. Checks there are enough slots."""
    if num_ranks < 1:
        raise UsageError(f"need at least 1 rank (got {num_ranks})")
    if not text:
        hosts = [Host("localhost", num_ranks)]
        check_local_ranks(hosts, num_ranks)
        return hosts
    hosts = []
    for item in text.split(","):
        name, _, slots = item.strip().partition(":")
        if not name or not _HOST.match(name):
            raise UsageError(f"bad host {item!r} in --hosts (use host:slots,host:slots)")
        try:
            n = int(slots) if slots else 1
        except ValueError:
            raise UsageError(f"bad slot count in {item!r} (use host:slots)") from None
        if n < 1:
            raise UsageError(f"host {name} needs at least 1 slot")
        hosts.append(Host(name, n))
    if sum(h.slots for h in hosts) < num_ranks:
        raise UsageError(f"--hosts has {sum(h.slots for h in hosts)} slots for {num_ranks} ranks")
    check_local_ranks(hosts, num_ranks)
    return hosts


MAX_RANKS_PER_CORE = 8   # beyond this a rank's step is mostly waiting for a core (and memory runs out)
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


def check_local_ranks(hosts: list[Host], num_ranks: int) -> None:
    """Refuse more ranks on this machine than it can run (the default --hosts puts all of them here)."""
    import socket

    here = _LOCAL_NAMES | {socket.gethostname()}
    local, left = 0, num_ranks
    for h in hosts:           # horovodrun fills slots in the listed order
        take = min(h.slots, max(left, 0))
        left -= take
        if h.name in here:
            local += take
    limit = MAX_RANKS_PER_CORE * usable_cores()
    if local > limit:
        raise UsageError(f"{local} ranks on this machine: it has {usable_cores()} cores, at most {limit} ranks "
                         f"fit ({MAX_RANKS_PER_CORE} per core); spread them with --hosts")


def hosts_arg(hosts: Iterable[Host]) -> str:
    return ",".join(f"{h.name}:{h.slots}" for h in hosts)


def num_hosts_used(hosts: list[Host], num_ranks: int) -> int:
    """Hosts that receive at least one rank (horovodrun fills slots in the listed order)."""
    used, left = 0, num_ranks
    for h in hosts:
        if left <= 0:
            break
        used, left = used + 1, left - h.slots
    return used


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_counts(ranks_per_host: int, cores: int | None = None) -> tuple[int, int]:
    """(intra_op, inter_op) threads for one of ranks_per_host ranks sharing `cores` cores."""
    cores = cores or usable_cores()
    return max(1, cores // max(1, ranks_per_host)), 1


def configure_tf_threads(threads: str | int, local_size: int) -> tuple[int, int]:
    """Set TensorFlow's thread pools in a rank (call before TF runs any op). threads: 'auto' or N."""
    import tensorflow as tf

    intra, inter = thread_counts(local_size) if str(threads) == "auto" else (int(threads), 1)
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    return intra, inter


def horovodrun_path() -> str:
    """horovodrun from this interpreter's environment (the venv), else from PATH."""
    local = Path(sys.executable).parent / "horovodrun"
    if local.is_file():
        return str(local)
    found = shutil.which("horovodrun")
    if not found:
        raise ScalesimError("horovodrun not found; install Horovod with `bash scripts/setup.sh` "
                            "(see `scalesim doctor`)")
    return found


def build_command(num_ranks: int, hosts: list[Host], module: str, module_args: list[str],
                  extra: list[str] = ()) -> list[str]:
    """horovodrun -np N -H hosts --gloo <python> -m module args..., run through
    scalesim.train.horovodrun (binds its servers to loopback or the ranks' interface only, and
    ends with the driver)."""
    horovodrun_path()  # a clear error now if Horovod is missing
    return [sys.executable, "-m", "scalesim.train.horovodrun", "-np", str(num_ranks), "-H", hosts_arg(hosts),
            "--gloo", *extra, sys.executable, "-m", module, *module_args]


def rank_env(base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    env.update(QUIET_ENV)
    return env


def split_prefix(line: str) -> tuple[int | None, str]:
    """'[3]<stdout>:text' -> (3, 'text'); a line horovodrun itself printed -> (None, line)."""
    m = _PREFIX.match(line)
    return (int(m.group(1)), m.group(3)) if m else (None, line)


def run(cmd: list[str], on_line: Callable[[int | None, str], None] | None = None,
        env: dict | None = None) -> int:
    """Run horovodrun, handing every output line (rank, text) to on_line (default: echo rank 0
    as is, other ranks with their prefix). Returns horovodrun's exit code."""
    from .. import procs

    on_line = on_line or echo_line
    hide = _TracebackFilter()
    # Its own process group, ended with this process (exit, exception, SIGTERM/SIGHUP, Ctrl-C).
    proc = procs.launch(cmd, env=rank_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                        errors="replace", bufsize=1)
    try:
        for raw in proc.stdout:
            rank, text = split_prefix(raw.rstrip("\n"))
            if not hide(rank, text):
                on_line(rank, text)
        code = proc.wait()
        procs.forget(proc)
        return code
    except BaseException:
        procs.end(proc)
        raise


class _TracebackFilter:
    """Hides horovodrun's own Python traceback when a rank fails: the ranks' output already says
    why, horovodrun's "Process name / Exit code" lines say which, and the caller adds one line."""

    def __init__(self):
        self.inside = False

    def __call__(self, rank, text) -> bool:
        if rank is not None:
            return False
        if text.startswith("Traceback (most recent call last)"):
            self.inside = True
        if self.inside and text.startswith("RuntimeError: Horovod detected"):
            self.inside = False
            return True
        return self.inside


def echo_line(rank: int | None, text: str) -> None:
    if _is_noise(text):
        return
    print(text if rank in (0, None) else f"[rank {rank}] {text}", flush=True)


def _is_noise(text: str) -> bool:
    # TensorFlow's start-up chatter from horovodrun's own import (it does not see our env early).
    return ("cpu_feature_guard" in text or text.startswith("To enable the following instructions")
            or "oneDNN custom operations" in text or "absl::InitializeLog" in text)
