"""The trainer's side of a run's progress: `python -m aigc.train
--progress-file PATH` keeps PATH (progress.json) up to date with a
ProgressWriter; aigc.runs reads it on the server's side."""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from .io import atomic_write_text

PROGRESS_EVERY_S = 2.0


class ProgressWriter:
    """Writes progress.json for a training process. on_step runs on every
    step, so it only keeps the latest step in memory; a daemon thread writes
    the file atomically every `every` seconds (the heartbeat), and on_epoch
    and finish write at once.

    Time left = the steps left at the seconds per step measured in this
    epoch, plus, per epoch, the time its end took last time (sample grid,
    quality check, files)."""

    def __init__(self, path: str | Path, every: float = PROGRESS_EVERY_S):
        self.path = Path(path)
        self.every = every
        self.state = "starting"
        self.message = ""
        self.epochs_done = 0
        self._info: dict = {}             # the latest on_step info
        self._epoch_t0: float | None = None
        self._step_s: float | None = None
        self._last_step_t: float | None = None
        self._end_s = 0.0                 # last epoch: from its last step to its files written
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, epochs_done: int = 0) -> None:
        self.epochs_done = epochs_done
        self.write()
        self._thread = threading.Thread(target=self._beat, name="progress", daemon=True)
        self._thread.start()

    def on_step(self, info: dict) -> None:
        now = time.monotonic()
        if info["step"] == 1:
            self._epoch_t0 = now          # step 1 includes warm-up: measure from its end
        elif self._epoch_t0 is not None:
            self._step_s = (now - self._epoch_t0) / (info["step"] - 1)
        self._last_step_t = now
        self._info = info
        self.state = "running"

    def on_epoch(self, row: dict) -> None:
        if self._last_step_t is not None:
            self._end_s = time.monotonic() - self._last_step_t
        self.epochs_done = int(row["epoch"])
        self.write()

    def finish(self, state: str, message: str = "") -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.state, self.message = state, message
        self.write()

    def snapshot(self) -> dict:
        info = self._info
        out = {"state": self.state, "pid": os.getpid(), "updated": time.time(), "epochs_done": self.epochs_done,
               "message": self.message}
        if info:
            keys = ("epoch", "epochs", "step", "steps")
            out.update({k: info[k] for k in keys})
            out["losses"] = {k: round(v, 5) for k, v in info.items() if k not in keys}
            if self._step_s is not None and self.state == "running":
                e, steps, sps = info["epoch"], info["steps"], self._step_s
                out["eta_s"] = round((steps - info["step"]) * sps + (self._end_s if self.epochs_done < e else 0.0)
                                     + (info["epochs"] - e) * (steps * sps + self._end_s), 1)
        return out

    def write(self) -> None:
        with self._write_lock:
            try:
                atomic_write_text(self.path, json.dumps(self.snapshot()) + "\n")
            except OSError as e:   # a full disk must not stop the training itself
                print(f"warning: could not write {self.path}: {e}", file=sys.stderr, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self.write()
