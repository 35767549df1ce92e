"""horovodrun, as scalesim launches it: `python -m scalesim.train.horovodrun <horovodrun args>`.

Two things Horovod 0.28.1 does not offer:
- Binding. horovodrun's rendezvous/KV-store HTTP servers (and its driver service) are unauthenticated
  and bind every interface (horovod/runner/util/network.py find_port binds ('', port)); there is no
  setting. Here find_port binds one address: 127.0.0.1 when every host is local (the ranks then
  rendezvous on 127.0.0.1 anyway: Horovod picks the interface holding 127.0.0.1), otherwise the
  address of the interface that reaches the remote hosts (--network-interfaces if given). Patched at
  run time, in this process only, so any Horovod build works.
- Lifetime. A watchdog ends horovodrun's process group when the scalesim driver that started it
  is gone (SIGKILL cannot be caught there), and DRIVER/LAUNCHER identities reach the ranks, whose
  own watchdog (scalesim.procs.watch_launch) makes them exit too.
"""
from __future__ import annotations

import os
import signal
import socket
import sys

from .. import procs


def _hosts_arg(argv: list[str]) -> list[str]:
    for i, a in enumerate(argv):
        if a in ("-H", "--hosts") and i + 1 < len(argv):
            return [h.partition(":")[0] for h in argv[i + 1].split(",") if h]
        if a.startswith("--hosts="):
            return [h.partition(":")[0] for h in a.split("=", 1)[1].split(",") if h]
    return ["localhost"]


def _nics_arg(argv: list[str]) -> list[str]:
    for i, a in enumerate(argv):
        if a in ("--network-interfaces", "--network-interface") and i + 1 < len(argv):
            return [n for n in argv[i + 1].split(",") if n]
    return []


def _iface_address(name: str) -> str | None:
    import psutil

    for addr in psutil.net_if_addrs().get(name, []):
        if addr.family == socket.AF_INET:
            return addr.address
    return None


def _route_source(host: str) -> str:
    """This machine's address on the route to host (a UDP connect sends no packet)."""
    target = socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((target, 9))
        return s.getsockname()[0]


def bind_address(argv: list[str]) -> str:
    from horovod.runner.util.network import filter_local_addresses

    remote = filter_local_addresses(_hosts_arg(argv))
    if not remote:
        return "127.0.0.1"
    for nic in _nics_arg(argv):
        addr = _iface_address(nic)
        if addr:
            return addr
    return _route_source(remote[0])


def patch_binding(address: str) -> None:
    """Make every horovodrun server bind `address` instead of all interfaces."""
    import random

    import horovod.runner.common.util.network as common_network
    import horovod.runner.http.http_server as http_server
    import horovod.runner.util.network as network

    def find_port(server_factory):
        # Same search as Horovod's own find_port, on one address.
        lo, hi = 1024, 65536
        start = random.randrange(0, hi - lo)
        for off in range(hi - lo):
            port = lo + (start + off) % (hi - lo)
            try:
                return server_factory((address, port)), port
            except OSError:
                pass
        raise RuntimeError(f"unable to find a free port on {address}")

    for mod in (network, http_server, common_network):
        mod.find_port = find_port


def _end_own_group(ident: str) -> None:
    print(f"scalesim: driver {ident.split(':')[0]} is gone; ending horovodrun {os.getpid()} and its ranks",
          file=sys.stderr, flush=True)
    if os.getpgrp() == os.getpid():   # the group the driver created for this launch
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(75)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ[procs.LAUNCHER_ENV] = procs.identity()   # inherited by the ranks
    if os.environ.get(procs.DRIVER_ENV):
        procs.die_with_parent(os.environ[procs.DRIVER_ENV])
        procs.watch([os.environ[procs.DRIVER_ENV]], _end_own_group)
    patch_binding(bind_address(argv))
    from horovod.runner.launch import run_commandline

    sys.argv = ["horovodrun", *argv]
    return run_commandline() or 0


if __name__ == "__main__":
    sys.exit(main())
