"""One cgroup v1 `cpu` group per node: quota/period = the node's share of this machine's cores.
A process joins before it enters the node's namespace (`ip netns exec` remounts /sys, hiding the
cgroup mount) and everything it starts inherits the group."""
from __future__ import annotations

import os
import time
from pathlib import Path

from .plan import CPU_PERIOD_US, cpu_quota_us
from .preflight import CPU_CGROUP


def path_of(group: str, node: str | None = None) -> Path:
    return CPU_CGROUP / group / node if node else CPU_CGROUP / group


# A quota only caps a node; under other load it would get less than its share and its compute rate
# would drift with whatever else runs. The cluster's top group gets the largest weight, so the nodes
# get their full quota first (the quotas sum to at most this machine's cores, the rest stays free).
PRIORITY_SHARES = 262144


def create(path: Path, cores: float | None = None, priority: bool = False) -> None:
    path.mkdir(exist_ok=True)
    if priority:
        (path / "cpu.shares").write_text(str(PRIORITY_SHARES))
    if cores is not None:
        (path / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (path / "cpu.cfs_quota_us").write_text(str(cpu_quota_us(cores)))


def procs(path: Path) -> list[int]:
    try:
        return [int(x) for x in (path / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def remove(path: Path, wait_s: float = 5.0) -> None:
    """rmdir once the group is empty (an exiting process leaves it a moment after its signal)."""
    deadline = time.monotonic() + wait_s
    while path.exists():
        try:
            os.rmdir(path)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
