"""Namespaces, the bridge and shaped veth links. The bridge sits in a namespace of its own and
both veth ends are created directly inside their namespaces, so the root namespace never gets an
interface, address or route for the emulated nodes."""
from __future__ import annotations

from pathlib import Path

from .plan import BRIDGE, NODE_IFACE, ClusterPlan, Node
from .sh import ClusterError, run

NETNS_DIR = Path("/run/netns")


def exists(netns: str) -> bool:
    return (NETNS_DIR / netns).exists()


def add_netns(netns: str) -> None:
    try:
        run(["ip", "netns", "add", netns])
    except ClusterError as e:
        if "not permitted" in str(e).lower() or "permission denied" in str(e).lower():
            from .preflight import ALTERNATIVES, ClusterUnavailable

            raise ClusterUnavailable(f"emulated nodes need permission to create network namespaces "
                                     f"(CAP_SYS_ADMIN/CAP_NET_ADMIN; {e}); {ALTERNATIVES}") from None
        raise
    run(["ip", "-n", netns, "link", "set", "lo", "up"])


def add_bridge(plan: ClusterPlan) -> None:
    ns = plan.bridge_netns
    run(["ip", "-n", ns, "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "-n", ns, "link", "set", BRIDGE, "up"])


def add_link(plan: ClusterPlan, node: Node) -> None:
    prefix = plan.subnet.split("/")[1]
    run(["ip", "link", "add", NODE_IFACE, "netns", node.netns, "type", "veth",
         "peer", "name", node.bridge_port, "netns", plan.bridge_netns])
    run(["ip", "-n", plan.bridge_netns, "link", "set", node.bridge_port, "master", BRIDGE])
    run(["ip", "-n", plan.bridge_netns, "link", "set", node.bridge_port, "up"])
    run(["ip", "-n", node.netns, "addr", "add", f"{node.address}/{prefix}", "dev", NODE_IFACE])
    run(["ip", "-n", node.netns, "link", "set", NODE_IFACE, "up"])
    if plan.link_rate_bps:
        # Both directions: the node's egress and the bridge port's egress (the node's ingress).
        shape(node.netns, NODE_IFACE, plan)
        shape(plan.bridge_netns, node.bridge_port, plan)


def shape(netns: str, dev: str, plan: ClusterPlan) -> None:
    run(["ip", "netns", "exec", netns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
         "rate", f"{int(plan.link_rate_bps)}bit", "burst", str(plan.burst_bytes), "latency", "50ms"])


def pids(netns: str) -> list[int]:
    if not exists(netns):
        return []
    p = run(["ip", "netns", "pids", netns], check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def delete_netns(netns: str) -> None:
    if exists(netns):
        run(["ip", "netns", "delete", netns])
