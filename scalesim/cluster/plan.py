"""What an emulated cluster will be, decided before anything is created (pure: no I/O).

Link shaping uses tc's token bucket (tbf) on both ends of every node's veth. tbf passes at most
`burst` bytes at line rate before it throttles; veth hands the qdisc GSO super-packets of up to
64 KiB, and a burst below that (or below a few ms of traffic) starves TCP: at 1 Gbit/s a 16 KiB
burst gave 673 Mbit/s, max(64 KiB, 2 ms x rate) gave 950 Mbit/s (shared/notes/emulated-cluster.md).
"""
from __future__ import annotations

import ipaddress
from typing import NamedTuple

DEFAULT_SUBNET = "198.51.100.0/24"   # TEST-NET-2, a documentation range: never routed anywhere
BURST_MIN_BYTES = 64 << 10
BURST_SECONDS = 2e-3
NODE_IFACE = "eth0"                  # every node's interface: same name everywhere, like a real rack
BRIDGE = "br0"
# A short CFS period keeps a fractional core smooth: at 0.25 core and the default 100 ms period a rank
# runs 25 ms then stalls 75 ms, which shows up as step-time jitter and straggling, not just slowness.
CPU_PERIOD_US = 10_000
MIN_CORES = 0.1           # the kernel's smallest quota is 1 ms: 0.1 of this period



class Node(NamedTuple):
    name: str          # host name the ranks see: h1, h2, ...
    netns: str         # network namespace, unique per cluster: <prefix><id>-h1
    address: str
    bridge_port: str   # the veth end inside the bridge's namespace


class ClusterPlan(NamedTuple):
    cluster_id: str
    nodes: tuple[Node, ...]
    bridge_netns: str
    subnet: str
    link_rate_bps: float          # 0 = unshaped
    burst_bytes: int
    cores_per_node: float         # CPU share each node gets (cgroup cpu quota / period)
    machine_cores: int
    cgroup: str                   # relative to the cpu controller's mount point


def parse_rate(text: str) -> float:
    """'200mbit', '1gbit', '25MB/s' -> bits per second (scalesim.units, the one rate parser)."""
    from ..units import parse_rate as bytes_per_s

    return 8.0 * bytes_per_s(text, "link rate")


def format_rate(bps: float) -> str:
    for unit, f in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bps >= f:
            return f"{bps / f:g}{unit}"
    return f"{bps:g}bit"


def tbf_burst(rate_bps: float) -> int:
    return int(max(BURST_MIN_BYTES, BURST_SECONDS * rate_bps / 8))


def default_cores_per_node(nodes: int, machine_cores: int) -> float:
    """This machine's cores split evenly; 4 nodes on 2 cores get half a core each."""
    return machine_cores / nodes


def node_names(nodes: int) -> list[str]:
    return [f"h{i}" for i in range(1, nodes + 1)]


def make_plan(nodes: int, link_rate: str | float | None, cores_per_node: float | None, machine_cores: int,
              cluster_id: str, prefix: str = "ss", subnet: str = DEFAULT_SUBNET) -> ClusterPlan:
    if nodes < 1:
        raise ValueError(f"need at least 1 node, got {nodes}")
    net = ipaddress.ip_network(subnet)
    hosts = list(net.hosts())
    if nodes > len(hosts):
        raise ValueError(f"{subnet} has room for {len(hosts)} nodes, asked for {nodes}")
    rate = 0.0 if link_rate in (None, "", 0) else (parse_rate(link_rate) if isinstance(link_rate, str)
                                                   else float(link_rate))
    cores = default_cores_per_node(nodes, machine_cores) if cores_per_node is None else float(cores_per_node)
    if not cores >= MIN_CORES:
        raise ValueError(f"--cores-per-node must be at least {MIN_CORES:g}, got {cores:g}")
    if cores * nodes > machine_cores + 1e-9:
        # A share of cores that do not exist would make every manifest lie about compute.
        raise ValueError(f"{nodes} nodes x {cores:g} cores need {cores * nodes:g} cores; this machine has "
                         f"{machine_cores} (at most {machine_cores / nodes:g} per node)")
    base = f"{prefix}{cluster_id}"
    members = tuple(Node(name, f"{base}-{name}", str(hosts[i]), f"v{i + 1}")
                    for i, name in enumerate(node_names(nodes)))
    return ClusterPlan(cluster_id, members, f"{base}-br", str(net), rate, tbf_burst(rate) if rate else 0,
                       cores, machine_cores, f"scalesim-{base}")


def cpu_quota_us(cores: float) -> int:
    return int(round(cores * CPU_PERIOD_US))


def hosts_file(plan: ClusterPlan) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost"]
    lines += [f"{n.address}\t{n.name}" for n in plan.nodes]
    return "\n".join(lines) + "\n"


def resolv_conf() -> str:
    # No nameserver: a name that is not in hosts fails at once instead of leaving the namespace.
    return "# scalesim emulated cluster: names come from /etc/hosts only\noptions attempts:1 timeout:1\n"


def ssh_client_config(plan: ClusterPlan, identity: str) -> str:
    names = " ".join(n.name for n in plan.nodes) + " " + " ".join(n.address for n in plan.nodes)
    return (f"Host {names}\n  IdentityFile {identity}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n  ConnectTimeout 10\n")


def sshd_config(node: Node, host_key: str, authorized_keys: str, pid_file: str) -> str:
    return "\n".join([
        f"ListenAddress {node.address}", "Port 22", f"HostKey {host_key}", f"PidFile {pid_file}",
        f"AuthorizedKeysFile {authorized_keys}", "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "UsePAM no", "StrictModes yes", "PrintMotd no", "PrintLastLog no", "X11Forwarding no",
        # horovodrun opens one session per remote rank plus its checks, all at once.
        "MaxStartups 200", "MaxSessions 200", "LogLevel ERROR", ""])
