"""`scalesim measure` planning and bad input (no Horovod launched here), and the worker->campaign
event protocol including horovodrun's report of a dead rank."""
import subprocess
import sys

import pytest

from scalesim.errors import UsageError
from scalesim.measure import campaign, events

BAD = {
    "zero nodes": ["--nodes", "0"],
    "bad batches": ["--local-batches", "32,abc"],
    "negative batch": ["--local-batches", "-4"],
    "unknown host": ["--nodes", "2", "--hosts", "no-such-host.invalid:2"],
    "bad slots": ["--hosts", "h1:x"],
    "too few slots": ["--devices-per-node", "8", "--hosts", "localhost:2"],
    "emulated nodes, several devices": ["--nodes", "2", "--devices-per-node", "1,2"],
    "unknown arch": ["--arch", "resnet7"],
    "missing data": ["--data", "/nonexistent/fmnist"],
    "bad ar size": ["--ar-sizes", "4K,lots"],
    "zero steps": ["--steps", "0"],
    "bad threads": ["--threads-per-rank", "many"],
    "resume unknown": ["--resume", "no-such-run"],
}


@pytest.mark.parametrize("argv", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_exit_2(argv, tmp_path):
    r = subprocess.run([sys.executable, "-m", "scalesim.cli", "measure", *argv, "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalesim measure: error:"), r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


def test_rank_counts_are_nodes_times_devices_per_node():
    assert campaign.rank_counts(1, (1, 2, 4, 8)) == [1, 2, 4, 8]
    assert campaign.rank_counts(2, (4, 1, 4)) == [2, 8]
    with pytest.raises(UsageError):
        campaign.rank_counts(0, (1,))


def test_planned_configs_and_manifest(tmp_path):
    args = campaign.MeasureOptions(devices_per_node=(1, 2), local_batches=(16, 8), ar_max=2 ** 20)
    rd = campaign.create_run(campaign.config_from_args(args), str(tmp_path / "r"), None)
    m = rd.read_manifest()
    assert m["kind"] == "measure" and m["config"]["local_batches"] == [8, 16]
    assert [c["config_id"] for c in m["configs"]] == ["n1-b8", "n1-b16", "n2-b8", "n2-b16"]
    assert [c["global_batch"] for c in m["configs"]] == [8, 16, 16, 32]
    assert all(c["status"] == "pending" for c in m["configs"])
    assert m["config"]["allreduce"]["sizes"] == [4096, 16384, 65536, 262144, 1048576]
    assert m["cores_per_host"] >= 1 and m["threads_per_rank"] == 1
    with pytest.raises(UsageError):      # never overwrite a run: resume it instead
        campaign.create_run(campaign.config_from_args(args), str(tmp_path / "r"), None)


def test_event_lines_survive_horovodrun_prefix():
    ev = events.parse('[0]<stdout>:@@scalesim {"event": "config_done", "config_id": "n2-b8"}')
    assert ev == {"event": "config_done", "config_id": "n2-b8"}
    assert events.parse("[1]<stderr>: some warning") is None
    assert events.parse("@@scalesim {broken") is None


def test_failed_rank_from_horovodrun_output():
    out = ("[1]<stderr>:Traceback (most recent call last):\n[1]<stderr>:MemoryError: out of memory\n"
           "Process 1 exit with status code 17.\nTerminating remaining workers after failure of Process 1.\n"
           "Process 0 exit with status code 143.\n")
    assert events.first_failed_rank(out) == (1, 17)
    assert events.rank_stderr_tail(out.splitlines(), 1) == "Traceback (most recent call last): | MemoryError: out of memory"
    tail = ("RuntimeError: Horovod detected that one or more processes exited with non-zero status, thus "
            "causing the job to be terminated. The first process to do so was:\nProcess name: 3\nExit code: 9\n")
    assert events.first_failed_rank(tail) == (3, 9)
    assert events.first_failed_rank("Process 0 exit with status code 143.") is None


def test_rank_that_only_lost_its_peer_is_not_blamed():
    # rank 1 died; rank 0 then failed in the allreduce and horovodrun happened to reap it first
    out = ("[0]<stderr>:horovod.common.exceptions.HorovodInternalError: Gloo error: Connection closed by peer\n"
           "Process 0 exit with status code 1.\n"
           "Process 1 exit with status code 17.\n"
           "RuntimeError: Horovod detected that one or more processes exited with non-zero status, thus "
           "causing the job to be terminated. The first process to do so was:\nProcess name: 0\nExit code: 1\n")
    assert events.first_failed_rank(out) == (1, 17)
