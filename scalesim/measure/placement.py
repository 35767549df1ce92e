"""Where the ranks of one launch go, decided by the launcher and checked by every rank.

horovodrun --gloo treats `-np` as a minimum: it starts a rank on every slot of `-H`. So each launch
is given exactly the slots it asks for (`trim`), and each rank compares what Horovod actually gave
it (size, local and cross rank/size) with `expected`, which mirrors Horovod's own assignment
(horovod/runner/common/util/hosts.py: hosts in order, ranks contiguous per host, cross_rank = index
among the hosts that have that local_rank). A rank's host is identified by that placement, never
by socket.gethostname() (emulated nodes, containers and NAT all break host names).
"""
from __future__ import annotations

from typing import NamedTuple

from ..errors import UsageError
from ..train.hvdrun import Host, hosts_arg


class Slot(NamedTuple):
    rank: int
    host: str
    host_index: int
    local_rank: int
    local_size: int
    cross_rank: int
    cross_size: int


def trim(hosts: list[Host], num_ranks: int, per_node: int | None = None) -> list[Host]:
    """The first hosts of the list, filled in order, holding exactly num_ranks slots; with
    per_node, exactly num_ranks / per_node hosts of per_node slots each."""
    out, left = [], num_ranks
    for h in hosts:
        if left <= 0:
            break
        take = min(h.slots, left, per_node or h.slots)
        if per_node and take < per_node:
            raise UsageError(f"host {h.name} has {h.slots} slots; {per_node} per node were asked for")
        out.append(Host(h.name, take))
        left -= take
    if left > 0:
        raise UsageError(f"--hosts {hosts_arg(hosts)} has too few slots for {num_ranks} ranks")
    return out


def expected(hosts: list[Host]) -> list[Slot]:
    cross: dict[int, list[str]] = {}
    for h in hosts:
        for lr in range(h.slots):
            cross.setdefault(lr, []).append(h.name)
    slots, rank = [], 0
    for i, h in enumerate(hosts):
        for lr in range(h.slots):
            slots.append(Slot(rank, h.name, i, lr, h.slots, cross[lr].index(h.name), len(cross[lr])))
            rank += 1
    return slots


def mismatch(want: list[Slot], rank: int, size: int, local_rank: int, local_size: int, cross_rank: int,
             cross_size: int) -> str | None:
    """None when Horovod placed this rank where the launch asked; else one line saying how not."""
    if size != len(want):
        return (f"Horovod started {size} ranks, the launch asked for {len(want)} "
                f"({hosts_arg(_hosts_of(want))}); refusing to record wrong data")
    w = want[rank]
    got = (local_rank, local_size, cross_rank, cross_size)
    if got != (w.local_rank, w.local_size, w.cross_rank, w.cross_size):
        return (f"rank {rank}: placement (local_rank, local_size, cross_rank, cross_size) = {got}, "
                f"expected {tuple(w)[3:]} on {w.host}")
    return None


def _hosts_of(slots: list[Slot]) -> list[Host]:
    out: dict[str, int] = {}
    for s in slots:
        out[s.host] = s.local_size
    return [Host(h, n) for h, n in out.items()]


def parse(text: str) -> list[Host]:
    hosts = []
    for item in text.split(","):
        name, _, n = item.partition(":")
        hosts.append(Host(name, int(n)))
    return hosts
