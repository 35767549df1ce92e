"""Process lifecycle of a launch: who owns horovodrun and its ranks, and who may write a run directory.

- The driver (`scalesim measure` / `scalesim train`) starts horovodrun in a new session, so the
  launch is one process group the driver owns; it ends that group on normal exit, on an exception
  and on SIGTERM/SIGHUP (`launch`, `end`).
- SIGKILL of the driver cannot be caught, and Horovod's middlemen put every rank in a session of its
  own, out of the driver's reach. So each rank (and horovodrun) runs a watchdog thread that watches
  the driver's identity, passed in DRIVER_ENV, and exits within WATCH_INTERVAL_S once it is gone.
- A process is named by pid *and* start time (/proc/<pid>/stat field 22): a recycled pid is not
  mistaken for the original process.
- A lock file in the run directory (pid, start time, hostname) keeps a second writer out; a lock
  whose holder is gone (or whose pid now belongs to another process) is stale and is taken over.
Linux only (/proc), like the rest of the launch path.
"""
from __future__ import annotations

import atexit
import datetime as _dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from .errors import ScalesimError

DRIVER_ENV = "SCALESIM_DRIVER"        # "pid:start" of the scalesim process that owns the launch
LAUNCHER_ENV = "SCALESIM_LAUNCHER"    # "pid:start" of horovodrun (set by scalesim.train.horovodrun)
WATCH_INTERVAL_S = 0.25
GRACE_S = 3.0                          # SIGTERM -> SIGKILL for a launch's process group
LOCK_NAME = ".lock"


class RunDirLocked(ScalesimError):
    """Another live process is writing this run directory."""


# --- process identity -----------------------------------------------------------------------------
def start_time(pid: int) -> int | None:
    """Start time of pid in clock ticks since boot; None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # Field 2 (comm) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    state = fields[0]
    if state in ("Z", "X"):  # a zombie has already exited; only its parent has not reaped it
        return None
    return int(fields[19])


def pid_namespace() -> str:
    """Which pids /proc shows here: boot id + pid namespace. A remote rank (another emulated node,
    another machine) sees other processes under the same numbers, so it must not judge ours."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return socket.gethostname()


def identity(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{start_time(pid)}:{pid_namespace()}"


def is_alive(ident: str) -> bool:
    """True while the process named by identity() still runs (same pid, same start time); also
    True for a process of another pid namespace, which cannot be checked from here."""
    pid, _, rest = ident.partition(":")
    start, _, ns = rest.partition(":")
    if ns and ns != pid_namespace():
        return True
    try:
        return str(start_time(int(pid))) == start
    except ValueError:
        return False


# --- watchdog (ranks and horovodrun) -----------------------------------------------------------------
def watch(idents: list[str], on_gone, interval: float = WATCH_INTERVAL_S) -> threading.Thread:
    """Call on_gone(ident) from a daemon thread as soon as one of the processes has gone."""
    def loop():
        while True:
            for ident in idents:
                if not is_alive(ident):
                    on_gone(ident)
                    return
            time.sleep(interval)

    t = threading.Thread(target=loop, name="scalesim-watchdog", daemon=True)
    t.start()
    return t


def watch_launch() -> threading.Thread | None:
    """In a rank: exit at once when the driver or horovodrun is gone (nobody would read our output,
    and a --resume may already be writing the same parts)."""
    idents = [os.environ[k] for k in (DRIVER_ENV, LAUNCHER_ENV) if os.environ.get(k)]
    if not idents:
        return None

    def gone(ident):
        print(f"scalesim: launching process {ident.split(':')[0]} is gone; rank {os.getpid()} exits",
              file=sys.stderr, flush=True)
        os._exit(75)

    return watch(idents, gone)


def die_with_parent(ident: str | None) -> None:
    """If `ident` is our direct parent: have the kernel SIGKILL us the moment it dies
    (PR_SET_PDEATHSIG). Unlike a watchdog thread this cannot be delayed by a long import holding
    the GIL. Only the direct parent counts, so ranks (children of Horovod's shells) use watch()."""
    if not ident or ident.partition(":")[0] != str(os.getppid()):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if not is_alive(ident):   # it died before prctl took effect
        os._exit(75)


# --- process groups (driver side) ---------------------------------------------------------------------
_live: dict[int, subprocess.Popen] = {}
_installed = False


def launch(cmd: list[str], env: dict | None = None, **popen_kw) -> subprocess.Popen:
    """Start cmd as the leader of a new process group this process owns and ends on exit."""
    _install_handlers()
    env = dict(os.environ if env is None else env)
    env[DRIVER_ENV] = identity()
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, **popen_kw)
    _live[proc.pid] = proc
    return proc


def end(proc: subprocess.Popen, grace: float = GRACE_S) -> None:
    """SIGTERM the launch's group, SIGKILL what is left after `grace` seconds, reap the leader.
    The leader is reaped last: until then its pid (= the group id) cannot be reused, so the
    signals reach our group and nobody else's."""
    try:
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while not _exited_unreaped(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            _signal_group(proc.pid, signal.SIGKILL)   # helpers of the leader may outlive it
            proc.wait()
        else:
            _kill_stragglers(proc.pid)
    finally:
        _live.pop(proc.pid, None)


def forget(proc: subprocess.Popen) -> None:
    """The launch ended by itself (and was reaped): end what is left of its group, stop tracking it."""
    _kill_stragglers(proc.pid)
    _live.pop(proc.pid, None)


def _exited_unreaped(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_stragglers(pgid: int) -> None:
    """SIGKILL the members of group pgid that carry our identity (the leader is reaped, so its
    number may belong to someone else's group by now: check each process)."""
    tag = f"{DRIVER_ENV}={identity()}".encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid or tag not in (d / "environ").read_bytes():
                continue
            os.kill(int(d.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def end_all() -> None:
    for proc in list(_live.values()):
        end(proc)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _on_signal(signum, frame):
    end_all()
    # Unwind like Ctrl-C does, so the caller's finally blocks record what was measured.
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(end_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_signal)


# --- run-directory lock --------------------------------------------------------------------------
class RunLock:
    """`with RunLock(run_dir):` -- exclusive writer of run_dir for this process's lifetime."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _record(self) -> dict:
        pid = os.getpid()
        return {"pid": pid, "start_time": start_time(pid), "hostname": socket.gethostname(),
                "pid_namespace": pid_namespace(), "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = self._record()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and self._holder_alive(holder):
                    raise RunDirLocked(
                        f"{self.path.parent} is being written by pid {holder.get('pid')} on "
                        f"{holder.get('hostname')} (since {holder.get('since')}); wait for it to finish "
                        f"or stop it (lock: {self.path})")
                self._take_over_stale()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            atexit.register(self.release)
            return self
        raise RunDirLocked(f"{self.path}: could not take the run directory's lock (another process keeps "
                           f"taking it)")

    def _holder(self) -> dict | None:
        try:
            rec = json.loads(self.path.read_text())
            return rec if isinstance(rec, dict) else None
        except (OSError, ValueError):
            return None   # unreadable or half-written by a crashed writer: stale

    @staticmethod
    def _holder_alive(rec: dict) -> bool:
        if rec.get("hostname") != socket.gethostname():
            return True   # another machine's process: we cannot tell, so it keeps the lock
        try:
            return is_alive(f"{int(rec['pid'])}:{rec.get('start_time')}:{rec.get('pid_namespace', '')}")
        except (KeyError, TypeError, ValueError):
            return False

    def _take_over_stale(self) -> None:
        # Rename, not unlink: of two processes taking over the same stale lock only one rename
        # succeeds, and neither removes a fresh lock the other has just created.
        grave = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
        try:
            os.rename(self.path, grave)
        except FileNotFoundError:
            return
        rec = None
        try:
            rec = json.loads(grave.read_text())
        except (OSError, ValueError):
            pass
        if isinstance(rec, dict) and self._holder_alive(rec):
            os.rename(grave, self.path)  # a live lock slipped in between our check and the rename
            return
        grave.unlink(missing_ok=True)
        print(f"scalesim: took over a stale lock of {self.path.parent} "
              f"(pid {rec.get('pid') if isinstance(rec, dict) else '?'} is gone)", file=sys.stderr)

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        rec = self._holder()
        if rec is not None and rec.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
