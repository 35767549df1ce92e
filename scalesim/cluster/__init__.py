"""Emulated multi-node clusters on one machine: network namespaces joined by a shaped bridge,
one sshd and one CPU share per node. See scalesim/cluster/lifecycle.py."""
from .lifecycle import Cluster, down, get, session, status, up
from .preflight import ClusterUnavailable
from .sh import ClusterError


def exec(node: str, cmd: list[str], cluster_id: str | None = None, **kw):  # noqa: A001 (API name)
    """Run cmd on a node of the (only, or named) cluster."""
    return get(cluster_id).exec(node, cmd, **kw)


__all__ = ["Cluster", "ClusterError", "ClusterUnavailable", "down", "exec", "get", "session", "status", "up"]
