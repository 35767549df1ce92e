"""Bring an emulated cluster up, look at it, run commands on its nodes, take it down.

Teardown removes exactly what the state file recorded, in reverse dependency order: processes
(the recorded sshds, then whatever still runs in the cluster's namespaces or cgroups: all of it
started through this cluster), namespaces (their veths go with them), /etc/netns folders, cgroups,
then the private folder. It runs on every failure path of `up`, and `session()` also turns
SIGTERM into a clean teardown.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

from .. import procs
from . import cgroup, enter, net, preflight, sshd
from . import state as st
from .plan import DEFAULT_SUBNET, ClusterPlan, Node, format_rate, hosts_file, make_plan, resolv_conf, ssh_client_config
from .sh import ClusterError, run

ETC_NETNS = Path("/etc/netns")


class Cluster(NamedTuple):
    cluster_id: str
    plan: ClusterPlan
    state_dir: Path

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.plan.nodes

    @property
    def hosts(self) -> list[str]:
        return [n.name for n in self.plan.nodes]

    def node(self, name: str) -> Node:
        for n in self.plan.nodes:
            if n.name == name:
                return n
        raise ClusterError(f"cluster {self.cluster_id} has no node {name!r} (nodes: {', '.join(self.hosts)})")

    def argv(self, node: str, cmd: list[str]) -> list[str]:
        """Command line that runs cmd on node (for Popen)."""
        n = self.node(node)
        return enter.argv(cgroup.path_of(self.plan.cgroup, n.name), n.netns, n.name, cmd)

    def exec(self, node: str, cmd: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(node, cmd), **kw)

    def manifest(self) -> dict:
        """What a run directory records about the cluster it ran on."""
        p = self.plan
        return {"cluster_id": p.cluster_id, "emulated": True, "nodes": len(p.nodes),
                "link_rate_bps": p.link_rate_bps, "link": format_rate(p.link_rate_bps) if p.link_rate_bps else None,
                "tbf_burst_bytes": p.burst_bytes, "cores_per_node": p.cores_per_node,
                "machine_cores": p.machine_cores, "subnet": p.subnet}


def _new_id() -> str:
    while True:
        cid = secrets.token_hex(3)
        if cid not in st.list_ids() and not any(net.exists(f"ss{cid}-{x}") for x in ("br", "h1")):
            return cid


def up(nodes: int, link_rate: str | float | None = None, cores_per_node: float | None = None,
       subnet: str = DEFAULT_SUBNET) -> Cluster:
    """Create `nodes` emulated nodes h1..hN; raises ClusterUnavailable (exit 2) where it cannot."""
    from ..train.hvdrun import usable_cores

    preflight.check()
    preflight.check_subnet_free(subnet)
    cid = _new_id()
    try:
        plan = make_plan(nodes, link_rate, cores_per_node, usable_cores(), cid, subnet=subnet)
    except ValueError as e:
        raise ClusterError(str(e)) from None
    s = st.create(cid, {"created": _dt.datetime.now().astimezone().isoformat(), "status": "building",
                        "plan": _plan_dict(plan)})
    s.record("dir", str(s.dir))
    try:
        with _terminate_as_interrupt():
            _build(s, plan)
    except BaseException:
        down(cid)
        raise
    s.data["status"] = "up"
    s.save()
    return Cluster(cid, plan, s.dir)


def _build(s: st.State, plan: ClusterPlan) -> None:
    d = s.dir
    if not sshd.RUN_SSHD.is_dir():
        s.record("run_sshd", str(sshd.RUN_SSHD))
        sshd.RUN_SSHD.mkdir(mode=0o755)
    if not ETC_NETNS.is_dir():
        s.record("etc_netns_root", str(ETC_NETNS))
        ETC_NETNS.mkdir(mode=0o755)
    key = sshd.make_client_key(d)
    top = cgroup.path_of(plan.cgroup)
    s.record("cgroup", str(top))
    cgroup.create(top, priority=True)
    for ns in [plan.bridge_netns] + [n.netns for n in plan.nodes]:
        s.record("netns", ns)
        net.add_netns(ns)
    net.add_bridge(plan)
    for node in plan.nodes:
        net.add_link(plan, node)
        etc = ETC_NETNS / node.netns
        s.record("etc_netns", str(etc))
        (etc / "ssh").mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts_file(plan))
        (etc / "resolv.conf").write_text(resolv_conf())
        (etc / "ssh" / "ssh_config").write_text(ssh_client_config(plan, str(key)))
        cg = cgroup.path_of(plan.cgroup, node.name)
        s.record("cgroup", str(cg))
        cgroup.create(cg, plan.cores_per_node)
    for node in plan.nodes:
        cfg = sshd.write_node_config(d, node)
        pid = sshd.start(enter.argv(cgroup.path_of(plan.cgroup, node.name), node.netns, node.name,
                                    sshd.command(cfg)), cfg)
        s.record("sshd", pid, node=node.name, config=str(cfg))
    _check_ssh(Cluster(s.cluster_id, plan, d))


def _check_ssh(c: Cluster) -> None:
    """Every node answers ssh from h1, under its own hostname (what horovodrun will rely on)."""
    for n in c.nodes:
        p = c.exec(c.hosts[0], ["ssh", n.name, "hostname"], capture_output=True, text=True, timeout=30)
        if p.returncode != 0 or p.stdout.strip() != n.name:
            why = (p.stderr.strip().splitlines() or [p.stdout.strip() or f"exit {p.returncode}"])[-1]
            raise ClusterError(f"ssh {c.hosts[0]} -> {n.name} failed: {why}")


def _plan_dict(plan: ClusterPlan) -> dict:
    d = plan._asdict()
    d["nodes"] = [n._asdict() for n in plan.nodes]
    return d


def _plan_from(d: dict) -> ClusterPlan:
    return ClusterPlan(**{**d, "nodes": tuple(Node(**n) for n in d["nodes"])})


def get(cluster_id: str | None = None) -> Cluster:
    """A cluster that is up: by id, or the only one there is."""
    ids = st.list_ids()
    if cluster_id is None:
        if len(ids) != 1:
            raise ClusterError("no emulated cluster is up" if not ids else
                               f"{len(ids)} clusters are up ({', '.join(ids)}); name one")
        cluster_id = ids[0]
    try:
        s = st.load(cluster_id)
    except FileNotFoundError:
        raise ClusterError(f"no emulated cluster {cluster_id!r} (up: {', '.join(ids) or 'none'})") from None
    return Cluster(cluster_id, _plan_from(s.data["plan"]), s.dir)


def status(cluster_id: str | None = None) -> dict:
    """Each recorded object and whether it still exists; `reachable` from an ssh to every node."""
    c = get(cluster_id)
    s = st.load(c.cluster_id)
    sshds = {o["node"]: o for o in s.of_kind("sshd")}
    nodes = []
    for n in c.nodes:
        o = sshds.get(n.name)
        alive = bool(o) and sshd.is_ours(int(o["id"]), Path(o["config"]))
        ok = False
        if alive and net.exists(c.nodes[0].netns):
            p = c.exec(c.hosts[0], ["ssh", n.name, "hostname"], capture_output=True, text=True, timeout=30)
            ok = p.returncode == 0 and p.stdout.strip() == n.name
        nodes.append({"node": n.name, "address": n.address, "netns": n.netns, "netns_exists": net.exists(n.netns),
                      "sshd_pid": int(o["id"]) if o else None, "sshd_alive": alive, "reachable": ok,
                      "processes": len(net.pids(n.netns))})
    return {"cluster_id": c.cluster_id, "status": s.data.get("status"), "state_dir": str(c.state_dir),
            **c.manifest(), "node_status": nodes}


def down(cluster_id: str | None = None) -> list[str]:
    """Remove everything the cluster recorded; returns what could not be removed (empty = clean).
    The state file stays until everything else is gone, so a failed teardown can be retried."""
    s = st.load(cluster_id) if cluster_id else st.load(get().cluster_id)
    s.data["status"] = "tearing-down"
    s.save()
    left = []
    _stop_processes(s)
    for kind, remove in (("netns", net.delete_netns), ("etc_netns", lambda p: shutil.rmtree(p, ignore_errors=True)),
                         ("cgroup", lambda p: cgroup.remove(Path(p))), ("run_sshd", _rmdir_if_unused),
                         ("etc_netns_root", _rmdir_if_unused)):
        # Children before parents: reverse creation order.
        for o in reversed(s.of_kind(kind)):
            try:
                remove(o["id"])
                s.forget(o)
            except Exception as e:
                left.append(f"{kind} {o['id']}: {e}")
    if left:
        s.data["status"] = "teardown-incomplete"
        s.save()
        return left
    shutil.rmtree(s.dir)
    return []


def _stop_processes(s: st.State) -> None:
    mine = set()
    for o in s.of_kind("sshd"):
        if sshd.is_ours(int(o["id"]), Path(o["config"])):
            mine.add(int(o["id"]))
    for ns in [o["id"] for o in s.of_kind("netns")]:
        mine.update(net.pids(ns))
    for cg in [o["id"] for o in s.of_kind("cgroup")]:
        mine.update(cgroup.procs(Path(cg)))
    mine.discard(os.getpid())
    _signal_all(mine, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in mine):
        time.sleep(0.1)
    _signal_all({p for p in mine if _alive(p)}, signal.SIGKILL)
    for o in list(s.of_kind("sshd")):
        s.forget(o)


def _signal_all(pids, sig) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    return procs.start_time(pid) is not None   # None: gone, or a zombie (already exited)


def _rmdir_if_unused(path: str) -> None:
    # /run/sshd and /etc/netns were created for the clusters; leave them while another is up.
    if len(st.list_ids()) <= 1:
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(path)


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM -> KeyboardInterrupt in the main thread, so `finally` blocks tear down."""
    import threading

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def session(nodes: int, link_rate=None, cores_per_node=None):
    """`with session(4, '200mbit') as c:` — the cluster exists exactly for the block's life."""
    with _terminate_as_interrupt():
        c = up(nodes, link_rate, cores_per_node)
        try:
            yield c
        finally:
            left = down(c.cluster_id)
            if left:
                raise ClusterError(f"cluster {c.cluster_id} not fully torn down: {'; '.join(left)}")
