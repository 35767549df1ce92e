"""A measurement campaign on emulated nodes (scalesim.cluster): `scalesim measure --nodes N` without
--hosts measures 1, 2, 4, ... N nodes of this machine, each node a network namespace with its own
address, sshd and CPU share, joined by a link shaped to --link. The cluster is built before the
campaign (or a --resume of it) and always torn down after; ranks start with `horovodrun -H` over ssh
from h1, exactly as on real machines."""
from __future__ import annotations

import contextlib

from ..cluster.plan import NODE_IFACE  # noqa: F401 (the nodes' interface, for horovodrun)
from ..errors import UsageError


def node_sweep(nodes: int) -> list[int]:
    """1, 2, 4, ... up to nodes (nodes itself included)."""
    out, h = [], 1
    while h < nodes:
        out.append(h)
        h *= 2
    return out + [nodes]


def plan(nodes: int, devices_per_node: tuple, link_bytes_per_s: float | None, cores_per_node: float | None) -> dict:
    """The manifest's `emulated` entry; refuses (exit 2) where this machine cannot emulate nodes."""
    from ..cluster import preflight
    from ..cluster.plan import DEFAULT_SUBNET, default_cores_per_node, format_rate
    from ..train.hvdrun import usable_cores

    if len(set(devices_per_node)) != 1:
        # One devices-per-node count keeps ranks <-> nodes one to one (config ids, tables, logs).
        raise UsageError("emulated nodes: give one --devices-per-node value (e.g. 1); sweep nodes with --nodes")
    preflight.check()
    preflight.check_subnet_free(DEFAULT_SUBNET)
    cores = usable_cores()
    share = default_cores_per_node(nodes, cores) if cores_per_node is None else float(cores_per_node)
    if share * nodes > cores + 1e-9:
        raise UsageError(f"--cores-per-node {share:g} x {nodes} nodes needs {share * nodes:g} cores; this machine "
                         f"has {cores} (at most {cores / nodes:g} per node)")
    bps = 8.0 * link_bytes_per_s if link_bytes_per_s else 0.0
    d = int(devices_per_node[0])
    return {"nodes": nodes, "node_counts": node_sweep(nodes), "devices_per_node": d, "link_bps": bps,
            "link": format_rate(bps) if bps else None, "cores_per_node": share, "machine_cores": cores}


def hosts(em: dict) -> list[str]:
    return [f"h{i}:{em['devices_per_node']}" for i in range(1, em["nodes"] + 1)]


@contextlib.contextmanager
def cluster_for(rd):
    """Bring the run's cluster up, record it in the manifest, yield the launch wrapper, tear down."""
    from ..cluster import lifecycle

    em = rd.read_manifest()["config"]["emulated"]
    with lifecycle.session(em["nodes"], em["link_bps"] or None, em["cores_per_node"]) as c:
        m = rd.read_manifest()
        # One per session (a --resume builds a new one), with every id it created: what teardown
        # removed, checkable afterwards (ip netns list, /proc/<pid>).
        recorded = lifecycle.st.load(c.cluster_id).objects
        m.setdefault("clusters", []).append({**c.manifest(), "created": [
            {k: o[k] for k in ("kind", "id", "node") if k in o} for o in recorded]})
        rd.write_manifest(m)
        print(f"emulated cluster {c.cluster_id}: {em['nodes']} nodes, link {em['link'] or 'unshaped'}, "
              f"{em['cores_per_node']:g} cores per node", flush=True)
        yield lambda cmd: c.argv(c.hosts[0], cmd)
