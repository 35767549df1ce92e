"""Line protocol from the worker's rank 0 to the campaign process.

Rank 0 prints one JSON object per line after a marker; horovodrun prefixes each line with
`[rank]<stdout>:`, so the parser looks for the marker anywhere in the line. Streaming events
(rather than waiting for the launch to end) drive the progress bar and let the manifest record
every finished configuration even when a later one kills the launch.
"""
from __future__ import annotations

import json
import re
import sys

MARKER = "@@scalesim "

# horovodrun's own lines when a rank dies (gloo_run.py / safe_shell_exec).
_EXIT_RE = re.compile(r"Process (\d+) exit with status code (-?\d+)")
_FIRST_RE = re.compile(r"The first process to do so was:\s*Process name:\s*(\d+)\s*Exit code:\s*(-?\d+)")
_RANK_ERR_RE = re.compile(r"^\[(\d+)\]<stderr>:(.*)$")


def emit(event: str, **fields) -> None:
    print(MARKER + json.dumps({"event": event, **fields}, default=_plain), flush=True)
    sys.stdout.flush()


def _plain(o):
    try:
        return o.item()
    except AttributeError:
        return str(o)


def parse(line: str) -> dict | None:
    i = line.find(MARKER)
    if i < 0:
        return None
    try:
        ev = json.loads(line[i + len(MARKER):])
    except json.JSONDecodeError:
        return None
    return ev if isinstance(ev, dict) and "event" in ev else None


# A rank whose peer died fails too, inside the collective; that is a consequence, not the cause.
_PEER_LOST_RE = re.compile(r"closed by peer|connection reset|broken pipe|HorovodInternalError|"
                           r"gloo.*(error|exception)|read error|write error", re.IGNORECASE)


def first_failed_rank(output: str) -> tuple[int, int] | None:
    """(rank, exit code) of the rank that caused the failure, if horovodrun's output shows it.

    horovodrun names the first process it saw exit, but when one rank dies the others fail in
    the allreduce within milliseconds and may be reaped first; so among the failed ranks prefer
    one whose own stderr does not just report a lost peer."""
    failed = []
    m = _FIRST_RE.search(output)
    if m:
        failed.append((int(m.group(1)), int(m.group(2))))
    for m in _EXIT_RE.finditer(output):
        code = int(m.group(2))
        if code not in (0, 143, -15) and (int(m.group(1)), code) not in failed:
            failed.append((int(m.group(1)), code))  # 143/-15: killed by horovodrun after another failed
    if not failed:
        return None
    lines = output.splitlines()
    for rank, code in failed:
        if not _PEER_LOST_RE.search(rank_stderr_tail(lines, rank, keep=20)):
            return rank, code
    return failed[0]


def rank_stderr_tail(lines: list[str], rank: int, keep: int = 3) -> str:
    """Last meaningful stderr lines of one rank (TensorFlow's info chatter filtered out)."""
    out = []
    for line in lines:
        m = _RANK_ERR_RE.match(line)
        if m and int(m.group(1)) == rank:
            text = m.group(2).strip()
            if text and not text.startswith(("I0000", "WARNING: All log messages", "To enable the following")):
                out.append(text)
    return " | ".join(out[-keep:])
