"""Progress of a long command: a tqdm bar on a terminal; in a log (stdout not a terminal) one line
per finished item instead of carriage-return frames. Both have the slice of tqdm's interface the
campaign uses (update, write, set_postfix_str, close)."""
from __future__ import annotations

import sys
import time


class LogLines:
    """One line per finished item: 'measure: 3/9 done (n2-b64), 52 s'."""

    def __init__(self, total: int, desc: str, file=None):
        self.total, self.desc, self.n, self.postfix = total, desc, 0, ""
        self.file = file or sys.stdout
        self.t0 = time.monotonic()

    def update(self, k: int = 1) -> None:
        self.n += k
        last = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.desc}: {self.n}/{self.total} done{last}, {time.monotonic() - self.t0:.0f} s",
              file=self.file, flush=True)

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def write(self, text: str) -> None:
        print(text, file=self.file, flush=True)

    def close(self) -> None:
        pass


class Silent(LogLines):
    def update(self, k: int = 1) -> None:
        self.n += k


def progress(total: int, desc: str, unit: str = "config", enabled: bool = True, file=None):
    """A bar on a terminal, one line per finished item in a log, nothing when not enabled."""
    stream = file or sys.stdout
    if not enabled:
        return Silent(total, desc, stream)
    if not stream.isatty():
        return LogLines(total, desc, stream)
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, file=stream)
