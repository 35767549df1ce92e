"""The command line that runs a program *on* a node: in its CPU cgroup, its network namespace
(which also bind-mounts /etc/netns/<ns>/ over /etc: hosts, resolv.conf, ssh_config) and a UTS
namespace of its own carrying the node's hostname. Every exec/launch path goes through here."""
from __future__ import annotations

from pathlib import Path

# $1 = cgroup.procs, $2 = namespace, $3 = hostname, the rest = the program. The shell joins the
# cgroup first (its pid is the program's, through the execs) and unshare --uts sets the hostname.
_ENTER = ('echo $$ > "$1" && ns="$2" && hn="$3" && shift 3 && '
          'exec ip netns exec "$ns" unshare --uts sh -c \'hostname "$0" && exec "$@"\' "$hn" "$@"')


def argv(cgroup_dir: Path, netns: str, hostname: str, cmd: list[str]) -> list[str]:
    if not cmd:
        raise ValueError("empty command")
    return ["sh", "-c", _ENTER, "scalesim-enter", str(Path(cgroup_dir) / "cgroup.procs"), netns, hostname,
            *map(str, cmd)]
