"""Progress of a training run as one-line events, so the launcher (which reads horovodrun's
line-prefixed output) can draw rank 0's tqdm bar on its own terminal. No TensorFlow here.

Rank 0 prints `@@scalesim {"event": ..., ...}`; `Renderer.feed` turns events into a tqdm bar per
epoch and a summary line per epoch. A worker started without the launcher renders locally.
"""
from __future__ import annotations

import json
import sys

TAG = "@@scalesim "


def emit(event: str, **data) -> None:
    print(TAG + json.dumps({"event": event, **data}), flush=True)


def parse(text: str) -> dict | None:
    if not text.startswith(TAG):
        return None
    try:
        return json.loads(text[len(TAG):])
    except json.JSONDecodeError:
        return None


def epoch_line(e: dict) -> str:
    test = (f"  test loss {e['test_loss']:.4f} acc {e['test_acc']:.4f}"
            if e.get("test_loss") == e.get("test_loss") and e.get("test_loss") is not None else "")
    return (f"epoch {e['epoch'] + 1}/{e['epochs']}: lr {e['lr']:.4g}  train loss {e['train_loss']:.4f} "
            f"acc {e['train_acc']:.4f}{test}  {e['images_per_sec']:.0f} images/s  {e['elapsed']:.1f} s")


class Renderer:
    def __init__(self, file=None, bar: bool = True):
        self.file = file or sys.stderr
        self.bar_enabled = bar
        self._bar = None

    def feed(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "epoch_start" and self.bar_enabled:
            from tqdm import tqdm

            self._close()
            self._bar = tqdm(total=ev["steps"], desc=f"epoch {ev['epoch'] + 1}/{ev['epochs']}",
                             unit="step", file=self.file, leave=False, dynamic_ncols=True,
                             disable=None)   # None: no bar when not on a terminal
        elif kind == "step" and self._bar is not None:
            self._bar.update(ev["step"] - self._bar.n)
            self._bar.set_postfix(loss=f"{ev['loss']:.3f}", lr=f"{ev['lr']:.3g}", refresh=False)
        elif kind == "epoch_end":
            self._close()
            print(epoch_line(ev), flush=True)
        elif kind == "message":
            self._close()
            print(ev["text"], flush=True)

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self):
        self._close()
