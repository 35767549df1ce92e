"""The record of everything one emulated cluster created, kept so teardown removes exactly that.

An object is recorded *before* it is created (names are unique per cluster, so removing one that
was never made is harmless) and processes right after they start; a crash at any point therefore
leaves a state file that `scalesim cluster down` can finish from. Written atomically.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

STATE_FILE = "state.json"
DIR_ENV = "SCALESIM_CLUSTER_DIR"


def clusters_root() -> Path:
    """Private (0700) folder for keys and state. Not /tmp: sshd's StrictModes refuses key files
    under a world-writable directory."""
    env = os.environ.get(DIR_ENV)
    root = Path(env) if env else Path.home() / ".local" / "state" / "scalesim" / "clusters"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


class State:
    def __init__(self, path: Path, data: dict):
        self.path, self.data = Path(path), data

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def cluster_id(self) -> str:
        return self.data["cluster_id"]

    @property
    def objects(self) -> list[dict]:
        return self.data.setdefault("objects", [])

    def record(self, kind: str, ident, **extra) -> None:
        self.objects.append({"kind": kind, "id": ident, **extra})
        self.save()

    def forget(self, obj: dict) -> None:
        self.objects.remove(obj)
        self.save()

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def create(cluster_id: str, data: dict) -> State:
    d = clusters_root() / cluster_id
    d.mkdir(mode=0o700)   # fails if the id is taken: ids never collide silently
    st = State(d / STATE_FILE, {"cluster_id": cluster_id, **data, "objects": []})
    st.save()
    return st


def load(cluster_id: str) -> State:
    p = clusters_root() / cluster_id / STATE_FILE
    if not p.is_file():
        raise FileNotFoundError(cluster_id)
    return State(p, json.loads(p.read_text()))


def list_ids() -> list[str]:
    return sorted(p.parent.name for p in clusters_root().glob(f"*/{STATE_FILE}"))
