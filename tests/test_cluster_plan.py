"""Pure parts of the emulated cluster and of launch placement: rates, tbf burst, CPU shares,
host-list trimming and Horovod's rank placement (the `-np` regression's logic)."""
import pytest

from scalesim.cluster.plan import make_plan, parse_rate, tbf_burst
from scalesim.errors import UsageError
from scalesim.measure import placement
from scalesim.train.hvdrun import Host


def test_link_rates_in_bits_per_second():
    assert parse_rate("200mbit") == 200e6
    assert parse_rate("1gbit") == 1e9
    assert parse_rate("500Mbit/s") == 500e6
    assert parse_rate("25MB/s") == 200e6
    with pytest.raises(UsageError):
        parse_rate("fast")


def test_tbf_burst_is_at_least_64k_and_2ms():
    assert tbf_burst(200e6) == 65536                 # 2 ms at 200 Mbit/s is only 50 kB
    assert tbf_burst(1e9) == 250_000                 # 2 ms at 1 Gbit/s


def test_cores_split_evenly_and_never_exceed_the_machine():
    p = make_plan(4, "200mbit", None, machine_cores=2, cluster_id="abc123")
    assert p.cores_per_node == 0.5
    assert [n.address for n in p.nodes] == ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]
    assert len({n.netns for n in p.nodes} | {p.bridge_netns}) == 5
    assert all(n.netns.startswith("ssabc123-") for n in p.nodes)
    with pytest.raises(ValueError, match="need 4 cores; this machine has 2"):
        make_plan(4, None, 1.0, machine_cores=2, cluster_id="abc123")


def test_trim_gives_each_launch_exactly_its_slots():
    hosts = [Host("h1", 2), Host("h2", 2)]
    assert placement.trim(hosts, 1) == [Host("h1", 1)]
    assert placement.trim(hosts, 2) == [Host("h1", 2)]
    assert placement.trim(hosts, 3) == [Host("h1", 2), Host("h2", 1)]
    assert placement.trim([Host("h1", 1), Host("h2", 1)], 1) == [Host("h1", 1)]
    assert placement.trim(hosts, 2, per_node=1) == [Host("h1", 1), Host("h2", 1)]
    with pytest.raises(UsageError):
        placement.trim(hosts, 5)


def test_expected_placement_mirrors_horovod():
    want = placement.expected([Host("h1", 2), Host("h2", 1)])
    # rank, host, host_index, local_rank, local_size, cross_rank, cross_size
    assert [tuple(s) for s in want] == [(0, "h1", 0, 0, 2, 0, 2), (1, "h1", 0, 1, 2, 0, 1),
                                        (2, "h2", 1, 0, 1, 1, 2)]


def test_mismatch_names_the_np_bug():
    want = placement.expected([Host("h1", 1)])
    # horovodrun -np 1 -H h1:1,h2:1 started 2 ranks: every rank must refuse.
    assert "started 2 ranks, the launch asked for 1" in placement.mismatch(want, 0, 2, 0, 1, 0, 2)
    assert placement.mismatch(want, 0, 1, 0, 1, 0, 1) is None
    two = placement.expected([Host("h1", 1), Host("h2", 1)])
    assert "expected (0, 1, 1, 2) on h2" in placement.mismatch(two, 1, 2, 1, 2, 0, 1)


def test_without_root_one_line_error_names_what_is_missing(tmp_path):
    """Not root: exit 2, one line naming what is missing and the alternatives (no traceback)."""
    import os
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to drop it) and setpriv")
    env = {**os.environ, "HOME": str(tmp_path), "SCALESIM_CLUSTER_DIR": str(tmp_path / "c")}
    tmp_path.chmod(0o777)
    p = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", sys.executable, "-c",
                        "import sys; from scalesim.cli import main; sys.exit(main(['measure', '--nodes', '2']))"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "root" in err[0] and "--hosts" in err[0] and "--devices-per-node" in err[0], err
