"""Keys and one sshd per node, so `horovodrun -H h1:1,h2:1` starts remote ranks over ssh exactly
as on a real cluster. Keys live in the cluster's private folder (0700)."""
from __future__ import annotations

import time
from pathlib import Path

from .plan import Node, sshd_config
from .preflight import SSHD
from .sh import ClusterError, run

RUN_SSHD = Path("/run/sshd")   # sshd's privilege-separation directory


def make_client_key(d: Path) -> Path:
    key = d / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"scalesim-{d.name}", "-f", str(key)])
    auth = d / "authorized_keys"
    auth.write_text(Path(str(key) + ".pub").read_text())
    auth.chmod(0o600)
    return key


def write_node_config(d: Path, node: Node) -> Path:
    nd = d / node.name
    nd.mkdir(mode=0o700, exist_ok=True)
    host_key = nd / "ssh_host_ed25519_key"
    if not host_key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)])
    cfg = nd / "sshd_config"
    cfg.write_text(sshd_config(node, str(host_key), str(d / "authorized_keys"), str(nd / "sshd.pid")))
    return cfg


def start(enter_argv: list[str], cfg: Path, timeout_s: float = 10.0) -> int:
    """Start sshd (it daemonises) and return its pid, read from its pid file."""
    pid_file = cfg.parent / "sshd.pid"
    log = cfg.parent / "sshd.log"
    run(enter_argv)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid_file.is_file() and pid_file.read_text().strip().isdigit():
            pid = int(pid_file.read_text())
            if is_ours(pid, cfg):
                return pid
        time.sleep(0.05)
    detail = log.read_text().strip().splitlines()[-1:] if log.is_file() else []
    raise ClusterError(f"sshd for {cfg.parent.name} did not start{': ' + detail[0] if detail else ''}")


def command(cfg: Path) -> list[str]:
    return [SSHD, "-f", str(cfg), "-E", str(cfg.parent / "sshd.log")]


def is_ours(pid: int, cfg: Path) -> bool:
    """The recorded pid still is the sshd we started (pids get reused)."""
    try:
        return str(cfg) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
