"""Can this machine host an emulated cluster? Each missing piece is named in one line, with the
alternatives that need none of it."""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import ScalesimError

CPU_CGROUP = Path("/sys/fs/cgroup/cpu")
SSHD = "/usr/sbin/sshd"
ALTERNATIVES = ("use --hosts h1:N,h2:N,... for real machines, or --nodes 1 --devices-per-node N "
                "for several ranks on this one")


class ClusterUnavailable(ScalesimError):
    """This machine cannot emulate nodes (not root, no network namespaces, no sshd, ...)."""


def missing() -> list[str]:
    out = []
    if os.name != "posix" or not Path("/proc/self/ns/net").exists():
        return ["Linux network namespaces"]
    if os.geteuid() != 0:
        out.append("root (network namespaces, veth and tc need CAP_NET_ADMIN)")
    for tool in ("ip", "tc", "unshare", "ssh", "ssh-keygen"):
        if not shutil.which(tool):
            out.append(f"the `{tool}` command")
    if not Path(SSHD).is_file():
        out.append(f"{SSHD} (apt-get install openssh-server; scripts/setup.sh does it)")
    if not (CPU_CGROUP / "cpu.cfs_quota_us").is_file():
        out.append(f"the cgroup v1 cpu controller at {CPU_CGROUP} (per-node CPU shares)")
    return out


def check() -> None:
    gaps = missing()
    if gaps:
        raise ClusterUnavailable(f"emulated nodes need {'; '.join(gaps)}; {ALTERNATIVES}")


def addresses_in(subnet: str) -> list[str]:
    """Addresses of this machine's own interfaces (root namespace) that fall in subnet."""
    net = ipaddress.ip_network(subnet)
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        for i, tok in enumerate(parts[:-1]):
            if tok in ("inet", "inet6"):
                addr = ipaddress.ip_interface(parts[i + 1]).ip
                if addr.version == net.version and addr in net:
                    found.append(f"{parts[1]} {parts[i + 1]}")
    return found


def check_subnet_free(subnet: str) -> None:
    used = addresses_in(subnet)
    if used:
        raise ClusterUnavailable(f"{subnet} is already in use on this machine ({', '.join(used)}); "
                                 "emulated nodes would shadow it. Pick another subnet")
