"""Running system commands for the cluster: one failure becomes one line naming the command."""
from __future__ import annotations

import subprocess

from ..errors import ScalesimError


class ClusterError(ScalesimError):
    """A step of building or tearing down an emulated cluster failed."""


def run(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        why = (p.stderr or p.stdout).strip().splitlines()
        raise ClusterError(f"`{' '.join(argv[:6])}` failed: {why[-1] if why else f'exit {p.returncode}'}")
    return p
