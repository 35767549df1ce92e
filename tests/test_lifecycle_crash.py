"""The crash table, with real campaigns (2 Horovod ranks, tiny ResNet, few steps): the driver
SIGKILLed or SIGTERMed, a rank SIGKILLed, the disk filling up. After each: no process of the
campaign left 2 s later, completed configurations byte-identical, and `--resume` completes. The
first campaign also checks that nothing of it listens on a non-loopback address and that a
second writer of the same run directory is refused."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalesim.schema import RunDir

pytestmark = pytest.mark.slow

MEASURE = [sys.executable, "-m", "scalesim.cli", "measure"]
ARGS = ["--devices-per-node", "2", "--local-batches", "4,8", "--warmup", "1", "--block", "5", "--width", "4",
        "--no-allreduce-bench", "--no-progress"]
DONE_FIRST = "n2-b4"


# --- looking at our own processes ----------------------------------------------------------------
def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def campaign_procs(driver_pid: int) -> list[int]:
    """The driver and every live process started for it (they carry SCALESIM_DRIVER=<pid>:...)."""
    tag = f"SCALESIM_DRIVER={driver_pid}:".encode()
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and _state(int(d.name)) not in (None, "Z", "X"):
            if int(d.name) == driver_pid or tag in _environ(int(d.name)):
                out.append(int(d.name))
    return out


def rank_pids(driver_pid: int) -> dict[int, int]:
    """rank -> pid of the campaign's measurement ranks."""
    ranks = {}
    for pid in campaign_procs(driver_pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        env = _environ(pid)
        if b"scalesim.measure.worker" in cmd and b"HOROVOD_RANK=" in env and b"-c\x00" not in cmd:
            rank = int(env.split(b"HOROVOD_RANK=")[1].split(b"\x00")[0])
            ranks[rank] = pid
    return ranks


def _hex_addr(text: str) -> str:
    h = text.split(":")[0]
    if len(h) == 8:
        return ".".join(str(b) for b in bytes.fromhex(h)[::-1])
    words = [bytes.fromhex(h[i:i + 8])[::-1].hex() for i in range(0, 32, 8)]
    return ":".join(w[j:j + 4] for w in words for j in (0, 4))


def _is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr in ("0000:0000:0000:0000:0000:0000:0000:0001",) \
        or addr.startswith("0000:0000:0000:0000:0000:ffff:7f")


def listening(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every listening TCP socket the processes hold."""
    out = []
    for pid in pids:
        try:
            inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                      if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
        except OSError:
            continue
        for table in ("tcp", "tcp6"):
            try:
                lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                f = line.split()
                if f[3] == "0A" and f[9] in inodes:     # 0A = LISTEN
                    out.append((pid, _hex_addr(f[1]), int(f[1].split(":")[1], 16)))
    return out


def _wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _status(run: Path) -> dict:
    try:
        m = json.loads((run / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return {c["config_id"]: c["status"] for c in m["configs"]}


def _digest(run: Path, cid: str) -> str:
    return hashlib.sha256((run / "steps" / f"{cid}.parquet").read_bytes()).hexdigest()


def _start(argv: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([*MEASURE, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _survivors_after(driver: subprocess.Popen, seconds: float = 2.0) -> list[int]:
    time.sleep(seconds)
    left = [p for p in campaign_procs(driver.pid) if p != driver.pid]
    for pid in left:   # ours: clean up so later tests are not disturbed, but report them
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def _resume(run: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*MEASURE, "--resume", str(run), "--no-progress"], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def _assert_resumed(run: Path, cwd: Path, kept: dict[str, str]) -> None:
    res = _resume(run, cwd)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert set(_status(run).values()) == {"done"}
    steps = RunDir(run).read_table("steps")
    assert sorted(steps["config_id"].unique()) == ["n2-b4", "n2-b8"]
    for cid, digest in kept.items():
        assert _digest(run, cid) == digest, f"{cid} was rewritten"
    assert not (run / ".lock").exists()


@pytest.fixture
def workdir(tmp_path):
    pytest.importorskip("horovod.tensorflow")
    return tmp_path


def _ranks_up(run: Path, driver: subprocess.Popen, done: set) -> bool:
    st = _status(run)
    return all(st.get(c) == "done" for c in done) and len(rank_pids(driver.pid)) == 2


STEPS = ["--steps", "15"]


def test_crash_table(workdir, capsys):
    """One run directory through driver SIGKILL, driver SIGTERM and rank SIGKILL, each followed by
    --resume (which must take the stale lock over); the last resume completes the run."""
    run, table = workdir / "run", []
    kept = {}

    # 1. driver SIGKILL while the second configuration runs
    driver = _start([*ARGS, *STEPS, "--out", str(run)], workdir)
    try:
        _wait(lambda: _ranks_up(run, driver, {DONE_FIRST}), 300, f"{DONE_FIRST} done, ranks up")
        kept[DONE_FIRST] = _digest(run, DONE_FIRST)
        # Nothing the campaign runs listens beyond loopback (horovodrun's rendezvous server included).
        socks = listening(campaign_procs(driver.pid))
        # A second writer of the run directory is refused, naming the driver.
        second = _resume(run, workdir)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        left = _survivors_after(driver)
    finally:
        if driver.poll() is None:
            driver.kill()
    table.append(("driver SIGKILL", len(left), _digest(run, DONE_FIRST) == kept[DONE_FIRST]))
    print("listening sockets of the campaign:", socks)
    assert socks, "expected horovodrun's rendezvous server and Gloo's listeners"
    assert [s for s in socks if not _is_loopback(s[1])] == []
    assert second.returncode == 2 and f"pid {driver.pid}" in second.stderr, second.stderr
    assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stderr

    # 2. driver SIGTERM during the resumed launch (its stale lock taken over)
    driver = _start(["--resume", str(run), "--no-progress"], workdir)
    try:
        _wait(lambda: _ranks_up(run, driver, set()), 300, "resumed ranks up")
        os.kill(driver.pid, signal.SIGTERM)
        rc = driver.wait(timeout=30)
        left2 = _survivors_after(driver)
    finally:
        if driver.poll() is None:
            driver.kill()
    table.append(("driver SIGTERM", len(left2), _digest(run, DONE_FIRST) == kept[DONE_FIRST]))
    assert rc == 128 + signal.SIGTERM and not (run / ".lock").exists()

    # 3. rank 1 SIGKILLed: only the running configuration fails, the driver reports which rank
    driver = _start(["--resume", str(run), "--no-progress"], workdir)
    try:
        _wait(lambda: _ranks_up(run, driver, set()), 300, "resumed ranks up")
        os.kill(rank_pids(driver.pid)[1], signal.SIGKILL)
        out, err = driver.communicate(timeout=300)
        left3 = _survivors_after(driver)
    finally:
        if driver.poll() is None:
            driver.kill()
    table.append(("rank SIGKILL", len(left3), _digest(run, DONE_FIRST) == kept[DONE_FIRST]))
    assert driver.returncode == 1, out[-2000:] + err[-2000:]
    assert _status(run) == {"n2-b4": "done", "n2-b8": "failed"}
    assert "rank 1" in out + err and "Traceback" not in err

    # 4. the last resume completes the run, keeping n2-b4 as first measured
    _assert_resumed(run, workdir, kept)
    with capsys.disabled():
        print("\nscenario          left after 2 s  completed intact  resume completes")
        for name, n_left, intact in table:
            print(f"{name:<18}{n_left:>14}  {str(intact):>16}  {'yes (final)':>16}")
    assert [row[1] for row in table] == [0, 0, 0] and all(row[2] for row in table)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_disk_full_is_one_clear_error_and_resume_completes(workdir):
    disk = workdir / "disk"
    if not _mount_tmpfs(disk, "4m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        run = disk / "run"
        driver = _start([*ARGS, *STEPS, "--out", str(run)], workdir)
        try:
            _wait(lambda: _status(run).get(DONE_FIRST) == "done", 300, f"{DONE_FIRST} to finish")
            kept = {DONE_FIRST: _digest(run, DONE_FIRST)}
            filler = disk / "filler"
            with open(filler, "wb") as f:   # take every block that is left
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            out, err = driver.communicate(timeout=300)
            assert _survivors_after(driver) == []
        finally:
            if driver.poll() is None:
                driver.kill()
        print(f"disk full: exit {driver.returncode}; stderr: {err.strip().splitlines()[-1:]}")
        assert driver.returncode in (1, 2), out[-2000:] + err[-2000:]
        assert "Traceback" not in err and "No space left on device" in out + err
        assert _status(run)[DONE_FIRST] == "done" and _digest(run, DONE_FIRST) == kept[DONE_FIRST]
        filler.unlink()
        _assert_resumed(run, workdir, kept)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
