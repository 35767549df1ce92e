"""Process lifecycle without Horovod: process identity, the watchdog, the run-directory lock, the
bound on ranks per machine, and where horovodrun's servers bind."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from scalesim import procs
from scalesim.errors import UsageError
from scalesim.train import hvdrun


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_identity_names_a_live_process_and_not_a_dead_or_reused_one():
    me = procs.identity()
    assert procs.is_alive(me)
    pid, start, ns = me.split(":", 2)
    assert int(pid) == os.getpid() and int(start) > 0
    assert not procs.is_alive(f"{_dead_pid()}:1:{ns}")
    assert not procs.is_alive(f"{pid}:{int(start) + 1}:{ns}")          # same pid, other start: reused
    assert procs.is_alive(f"{_dead_pid()}:1:another-machine/pid:[1]")   # cannot judge: assume alive


def test_watchdog_fires_within_a_second_of_the_process_going():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ident = procs.identity(child.pid)
    gone = []
    procs.watch([ident], lambda i: gone.append(time.monotonic()))
    time.sleep(0.3)
    assert not gone
    t0 = time.monotonic()
    child.kill()
    child.wait()
    deadline = t0 + 2
    while not gone and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone and gone[0] - t0 < 1.0


def test_rank_exits_when_its_driver_is_killed(tmp_path):
    # A stand-in "driver" (sleep) and a "rank" running the real watch_launch: SIGKILL the driver.
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    env = {**os.environ, procs.DRIVER_ENV: procs.identity(driver.pid)}
    rank = subprocess.Popen([sys.executable, "-c", "import time; from scalesim.procs import watch_launch; "
                             "watch_launch(); time.sleep(60)"], env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert rank.poll() is None
    driver.kill()
    driver.wait()
    t0 = time.monotonic()
    try:
        rc = rank.wait(timeout=5)
    finally:
        if rank.poll() is None:
            rank.kill()
    assert rc == 75 and time.monotonic() - t0 < 1.5
    assert f"launching process {driver.pid} is gone" in rank.stderr.read()


def test_launch_group_is_ended_with_all_its_members(tmp_path):
    # The leader starts a grandchild in the same group; end() must take both.
    code = ("import subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print(c.pid, flush=True); time.sleep(60)")
    proc = procs.launch([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    grandchild = int(proc.stdout.readline())
    assert os.getpgid(grandchild) == proc.pid != os.getpgrp()
    procs.end(proc, grace=1.0)
    time.sleep(0.2)
    assert procs.start_time(grandchild) is None and proc.pid not in procs._live


# --- run-directory lock -------------------------------------------------------------------------
def test_lock_refuses_a_second_writer_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from scalesim.procs import RunLock; "
                               f"RunLock({str(tmp_path)!r}).acquire(); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(procs.RunDirLocked, match=f"being written by pid {holder.pid} on "):
            procs.RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # The holder was SIGKILLed: its lock is stale and is taken over.
    with procs.RunLock(tmp_path) as lock:
        rec = json.loads(lock.path.read_text())
        assert rec["pid"] == os.getpid() and rec["hostname"] == socket.gethostname()
    assert not (tmp_path / procs.LOCK_NAME).exists()


@pytest.mark.parametrize("record", [
    "dead",                    # the holder's pid no longer exists
    "reused",                  # the pid exists (ours) but started at another time: recycled
    "garbage",                 # half-written or not JSON
])
def test_stale_lock_is_taken_over(tmp_path, record, capsys):
    path = tmp_path / procs.LOCK_NAME
    base = {"hostname": socket.gethostname(), "pid_namespace": procs.pid_namespace(), "since": "x"}
    if record == "dead":
        path.write_text(json.dumps({**base, "pid": _dead_pid(), "start_time": 1}))
    elif record == "reused":
        path.write_text(json.dumps({**base, "pid": os.getpid(), "start_time": procs.start_time(os.getpid()) - 1}))
    else:
        path.write_bytes(b"\x00{pid")
    lock = procs.RunLock(tmp_path).acquire()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "took over a stale lock" in capsys.readouterr().err
    lock.release()
    assert not path.exists()


def test_lock_of_another_host_is_respected(tmp_path):
    (tmp_path / procs.LOCK_NAME).write_text(json.dumps({"pid": 1, "start_time": 1, "hostname": "elsewhere"}))
    with pytest.raises(procs.RunDirLocked, match="pid 1 on elsewhere"):
        procs.RunLock(tmp_path).acquire()


def test_release_leaves_a_lock_taken_over_by_someone_else(tmp_path):
    lock = procs.RunLock(tmp_path).acquire()
    other = {"pid": 1, "start_time": 1, "hostname": "elsewhere"}
    lock.path.write_text(json.dumps(other))
    lock.release()
    assert json.loads(lock.path.read_text()) == other


# --- how many ranks fit, where horovodrun binds ------------------------------------------------------
def test_more_ranks_than_this_machine_holds_are_refused():
    limit = hvdrun.MAX_RANKS_PER_CORE * hvdrun.usable_cores()
    assert hvdrun.parse_hosts(None, limit)[0].slots == limit
    with pytest.raises(UsageError, match=f"100000 ranks on this machine: it has {hvdrun.usable_cores()} cores"):
        hvdrun.parse_hosts(None, 100000)
    with pytest.raises(UsageError, match="ranks on this machine"):
        hvdrun.parse_hosts(f"localhost:{limit + 1}", limit + 1)
    # Ranks placed on other hosts do not count against this machine.
    assert len(hvdrun.parse_hosts(f"localhost:1,far:{limit + 5}", limit + 6)) == 2


def test_build_command_goes_through_the_binding_wrapper():
    pytest.importorskip("horovod")
    cmd = hvdrun.build_command(2, [hvdrun.Host("localhost", 2)], "scalesim.measure.worker", ["--x"])
    assert cmd[:3] == [sys.executable, "-m", "scalesim.train.horovodrun"]
    assert cmd[3:8] == ["-np", "2", "-H", "localhost:2", "--gloo"]


def test_horovodrun_servers_bind_loopback_when_all_hosts_are_local():
    pytest.importorskip("horovod")
    from horovod.runner.http.http_server import KVStoreServer, RendezvousServer

    from scalesim.train import horovodrun

    assert horovodrun.bind_address(["-np", "2", "-H", "localhost:2", "--gloo"]) == "127.0.0.1"
    assert horovodrun.bind_address(["-np", "2", "-H", f"{socket.gethostname()}:2"]) == "127.0.0.1"
    horovodrun.patch_binding("127.0.0.1")
    rdv = RendezvousServer()
    port = rdv.start()
    kv = KVStoreServer(verbose=0)
    kv.start_server()
    try:
        assert rdv._httpd.socket.getsockname() == ("127.0.0.1", port)
        assert kv.httpd.socket.getsockname()[0] == "127.0.0.1"
    finally:
        rdv.stop()
        rdv._httpd.server_close()
        kv.shutdown_server()
