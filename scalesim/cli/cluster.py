"""`scalesim cluster up|status|exec|down`: an emulated multi-node cluster on this machine, by hand
(for trying a training script on N nodes). `scalesim measure --nodes N` builds and removes its own."""
import json as _json
import sys
from typing import Annotated, List, Optional

import typer

app = typer.Typer(name="cluster", no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                  help="Emulated nodes on this machine: network namespaces joined by a shaped link, one sshd "
                       "and one CPU share per node (needs root).")

ClusterId = Annotated[Optional[str], typer.Option("--id", metavar="ID",
                                                  help="cluster id (default: the only cluster that is up)")]


@app.command("up")
def up(nodes: Annotated[int, typer.Option("--nodes", metavar="N", help="emulated nodes h1..hN")] = 2,
       link: Annotated[Optional[str], typer.Option(
           "--link", metavar="RATE", help="rate of every node's link, both directions, e.g. 200mbit, 1gbit "
                                          "(default: unshaped)")] = None,
       cores_per_node: Annotated[Optional[float], typer.Option(
           "--cores-per-node", metavar="X", help="CPU share per node (default: this machine's cores split "
                                                 "evenly; never more than exist)")] = None,
       json: Annotated[bool, typer.Option("--json", help="print the cluster as JSON")] = False):
    """Create N emulated nodes; prints the id to use with status / exec / down."""
    from ..cluster import lifecycle
    from ..cluster.plan import parse_rate

    c = lifecycle.up(nodes, parse_rate(link) if link else None, cores_per_node)
    info = lifecycle.status(c.cluster_id)
    if json:
        print(_json.dumps(info, indent=1))
    else:
        _print_status(info)
        print(f"run on a node: scalesim cluster exec h1 -- CMD ...   remove: scalesim cluster down --id {c.cluster_id}")


@app.command("status")
def status(cluster_id: ClusterId = None,
           json: Annotated[bool, typer.Option("--json", help="print JSON")] = False):
    """Each node's namespace, address, sshd and whether it answers ssh."""
    from ..cluster import lifecycle, state

    if cluster_id is None and not state.list_ids():
        print("no emulated cluster is up")
        return 0
    info = lifecycle.status(cluster_id)
    if json:
        print(_json.dumps(info, indent=1))
    else:
        _print_status(info)
    return 0 if all(n["reachable"] for n in info["node_status"]) else 1


@app.command("exec", context_settings={"allow_interspersed_args": False})
def exec_(node: Annotated[str, typer.Argument(metavar="NODE", help="h1, h2, ...")],
          cmd: Annotated[List[str], typer.Argument(metavar="CMD...", help="command to run on the node")],
          cluster_id: ClusterId = None):
    """Run a command on a node (its namespace, hostname and CPU share), e.g.
    `scalesim cluster exec h1 -- horovodrun -np 2 -H h1:1,h2:1 python train.py`."""
    from ..cluster import lifecycle

    cmd = cmd[1:] if cmd[:1] == ["--"] else cmd   # `exec h1 -- CMD`: the separator is not part of CMD
    if not cmd:
        from ..errors import UsageError

        raise UsageError("give the command to run, e.g. scalesim cluster exec h1 -- hostname")
    return lifecycle.get(cluster_id).exec(node, cmd).returncode


@app.command("down")
def down(cluster_id: ClusterId = None):
    """Remove everything the cluster created (by the ids it recorded)."""
    from ..cluster import lifecycle
    from ..errors import ScalesimError

    c = lifecycle.get(cluster_id)
    left = lifecycle.down(c.cluster_id)
    if left:
        raise ScalesimError(f"cluster {c.cluster_id}: could not remove {'; '.join(left)}; retry "
                            f"`scalesim cluster down --id {c.cluster_id}`")
    print(f"cluster {c.cluster_id}: removed")


def _print_status(info: dict) -> None:
    link = info["link"] or "unshaped"
    print(f"cluster {info['cluster_id']} ({info['status']}): {info['nodes']} nodes, link {link}, "
          f"{info['cores_per_node']:g} of {info['machine_cores']} cores per node")
    for n in info["node_status"]:
        ok = "ok" if n["reachable"] else ("sshd down" if not n["sshd_alive"] else "unreachable")
        print(f"  {n['node']:4s} {n['address']:15s} netns {n['netns']:16s} sshd {n['sshd_pid'] or '-':>7}  {ok}")
    sys.stdout.flush()
