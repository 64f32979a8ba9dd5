"""Training runs in the background, one folder per run under a runs directory.

Two sides share the files:
    ProgressWriter  the trainer's side (aigc.progress): `python -m aigc.train
                    --progress-file` writes progress.json with it
    RunManager      the server's side: start, stop, resume and list runs; each
                    run is a separate `python -m aigc.train` process

runs/<name>/
    run.json        the run's settings, and the record of its process: pid and
                    start token (boot id + the kernel's start time of that pid),
                    so a pid reused by another program is not taken for the run
    progress.json   epoch, step, steps per epoch, time left; rewritten every
                    2 s by the trainer, which makes it the run's heartbeat too
    train.log       the trainer's output
    config.json, model.safetensors, history.jsonl, samples/, train_state.pt, ...
                    the checkpoint, as aigc.train writes it after each epoch

A run is in one of these states:
    starting     the process is loading data and building the model
    running      it is training
    stopping     a stop was asked for; it ends after the step in progress
    finished     all its epochs are done
    stopped      stopped on request, after its last finished epoch
    interrupted  its process is gone without finishing or being stopped
                 (killed, the machine or the server went down)
    failed       the trainer refused or crashed; `message` says why
Stopped, interrupted and finished runs resume from their last finished epoch.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .families import generative, get as family_of, parse_model_kwargs
from .io import atomic_write_text, read_jsonl

RUN_FILE = "run.json"
PROGRESS_FILE = "progress.json"
LOG_FILE = "train.log"
STATE_FILE = "train_state.pt"     # aigc.train.STATE_NAME, without importing torch here
STALE_S = 30.0                    # no heartbeat for this long: the process is gone (where /proc cannot tell)
KILL_AFTER_S = 30.0               # a second stop this long after the first kills the process
MAX_EPOCHS = 50
MAX_BATCH = 1024
FAMILIES = {f.name: f.label for f in generative()}   # what the page can train: the families the demo serves
DATASETS = {"mnist": "digits", "fashion": "fashion"}
LIVE = ("starting", "running", "stopping")
FINAL = ("finished", "stopped", "failed")   # what a trainer writes last, as it exits
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent   # the folder holding aigc/: the trainer imports from it


class RunError(ValueError):
    """A request the manager refuses; str() is meant for the person who asked."""


def check_name(name) -> str:
    """A run name is a folder name: letters, digits, - and _, so it cannot
    walk out of the runs directory ("..", "/", "~")."""
    if isinstance(name, str) and NAME_RE.fullmatch(name):
        return name
    raise RunError(f"Run name {name!r} is not allowed: use 1 to 64 letters, digits, '-' or '_', "
                   f"starting with a letter or digit (for example gan-digits-1).")


def duration(seconds: float | None) -> str:
    """Seconds -> "about 40 s", "about 4 min", "about 1 h 20 min"."""
    if seconds is None or not math.isfinite(seconds):
        return "time left not known yet"
    s = max(0, round(seconds))
    if s < 60:
        return f"about {max(s, 1)} s"
    if s < 3600:
        return f"about {round(s / 60)} min"
    h, m = divmod(round(s / 60), 60)
    return f"about {h} h {m} min" if m else f"about {h} h"


def read_json(path: Path) -> dict:
    """{} for a missing or unreadable file (both are written atomically, so
    unreadable means someone else's file: treat it as absent)."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# ---- the server's side ---------------------------------------------------------
def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_token(pid: int) -> str | None:
    """Who pid is: boot id + the kernel's start time of pid (Linux /proc).
    None when pid is not running (or is a zombie: exited, not yet reaped),
    or when there is no /proc to ask."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()   # the name in (...) may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return f"{boot_id()}:{fields[19]}"             # field 22 of stat: start time in clock ticks


def has_proc() -> bool:
    return Path("/proc/self/stat").is_file()


@dataclass
class RunStatus:
    """Where one run stands, read afresh from its folder."""
    name: str
    state: str
    family: str
    dataset: str
    epochs: int                       # the total it trains to
    epochs_done: int
    epoch: int | None = None          # the epoch running now
    step: int | None = None           # within that epoch
    steps: int | None = None          # per epoch
    eta_s: float | None = None
    losses: dict = field(default_factory=dict)
    message: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.state in LIVE

    @property
    def has_checkpoint(self) -> bool:
        return self.epochs_done >= 1

    @property
    def fraction(self) -> float:
        """How much of the run is done, 0 to 1."""
        done = self.epochs_done
        if self.live and self.steps and self.epoch and self.epoch > done:
            done += (self.step or 0) / self.steps
        return min(1.0, done / self.epochs) if self.epochs else 0.0

    def describe(self) -> str:
        """One line in plain words: "'gan-1' (GAN on digits) is running: epoch 3 of 10, ..."."""
        what = f"'{self.name}' ({FAMILIES.get(self.family, self.family)} on {DATASETS.get(self.dataset, self.dataset)})"
        if self.state == "starting":
            return f"{what} is starting (loading data, building the model), {self.epochs} epochs"
        if self.live:
            where = f"epoch {self.epoch or self.epochs_done + 1} of {self.epochs}"
            if self.step and self.steps:
                where += f", step {self.step:,} of {self.steps:,}"
            if self.state == "stopping":
                return f"{what} is stopping after the step in progress ({where})"
            left = "time left not known yet" if self.eta_s is None else f"it should finish in {duration(self.eta_s)}"
            return f"{what} is running: {where}; {left}"
        done = f"{self.epochs_done} of {self.epochs} epochs done"
        return {"finished": f"{what} finished: {done}",
                "stopped": f"{what} was stopped: {done}; resume continues from epoch {self.epochs_done + 1}",
                "interrupted": f"{what} was interrupted ({self.message or 'its process is gone'}): {done}; "
                               f"resume continues from epoch {self.epochs_done + 1}",
                "failed": f"{what} failed: {self.message or 'see train.log'}"}.get(self.state, f"{what}: {self.state}")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["fraction"] = round(self.fraction, 4)
        return d


class RunManager:
    """Starts, stops, resumes and lists training runs under runs_dir, one at
    a time. Each run is a separate `python -m aigc.train` process in its own
    session: a request ending, a page closing or Ctrl-C in the server's
    terminal does not reach it. Nothing is created until the first start.

    Options every run of this manager gets (the page does not offer them):
    data_dir (for the trainer), device, max_images (train on the first N
    images: tiny runs for tests and quick demos), model_kwargs ({family:
    constructor arguments}, e.g. {"gan": {"ch": 4}}), eval_classifiers
    ({dataset: classifier folder} for the per-epoch quality check; default:
    the bundled classifier, when present), python (the interpreter)."""

    def __init__(self, runs_dir: str | Path, *, data_dir: str | None = None, device: str = "auto",
                 max_images: int | None = None, model_kwargs: dict | None = None,
                 eval_classifiers: dict | None = None, python: str = sys.executable):
        self.runs_dir = Path(runs_dir)
        self.data_dir = data_dir
        self.device = device
        if max_images is not None and max_images < 1:
            raise ValueError(f"max_images must be at least 1, got {max_images}")
        self.max_images = max_images
        self.model_kwargs = {f: parse_model_kwargs(f, json.dumps(kw)) for f, kw in (model_kwargs or {}).items()}
        self.eval_classifiers = {d: str(Path(p).resolve()) for d, p in (eval_classifiers or {}).items()}
        self.python = python
        self._lock = threading.RLock()     # handlers run in several threads: one start at a time
        self._procs: dict[str, subprocess.Popen] = {}   # ours, to reap them when they exit

    # ---- reading -------------------------------------------------------------
    def folder(self, name) -> Path:
        return self.runs_dir / check_name(name)

    def names(self) -> list[str]:
        """Runs in the runs directory, newest first."""
        if not self.runs_dir.is_dir():
            return []
        runs = [p for p in self.runs_dir.iterdir() if p.is_dir() and NAME_RE.fullmatch(p.name)
                and (p / RUN_FILE).is_file()]
        return [p.name for p in sorted(runs, key=lambda p: (read_json(p / RUN_FILE).get("created", ""), p.name),
                                       reverse=True)]

    def exists(self, name) -> bool:
        return isinstance(name, str) and bool(NAME_RE.fullmatch(name)) and (self.runs_dir / name / RUN_FILE).is_file()

    def status(self, name) -> RunStatus:
        folder = self.folder(name)
        run = read_json(folder / RUN_FILE)
        if not run:
            known = ", ".join(self.names()) or "none yet"
            raise RunError(f"There is no run called {name!r}; the runs are: {known}.")
        for proc in list(self._procs.values()):
            proc.poll()                    # reap ours that exited, so /proc no longer lists them
        progress = read_json(folder / PROGRESS_FILE)
        history = read_jsonl(folder / "history.jsonl")
        st = RunStatus(name=name, state="", family=run.get("family", ""), dataset=run.get("dataset", ""),
                       epochs=int(run.get("epochs", 0)), epochs_done=int(history[-1]["epoch"]) if history else 0,
                       settings={k: run.get(k) for k in ("batch_size", "lr", "seed", "max_images", "model_kwargs")})
        # A trainer that wrote its final state is only exiting: read it as gone.
        if self._alive(run.get("process"), progress) and progress.get("state") not in FINAL:
            st.state = "stopping" if run.get("stop_requested") else \
                "running" if progress.get("state") == "running" else "starting"
            if st.state != "starting" and progress.get("epoch"):
                st.epoch, st.step, st.steps = progress["epoch"], progress.get("step"), progress.get("steps")
                st.losses = progress.get("losses", {})
                if progress.get("eta_s") is not None:   # as of the last heartbeat
                    st.eta_s = max(0.0, progress["eta_s"] - max(0.0, time.time() - progress.get("updated", 0)))
        elif st.epochs_done >= st.epochs > 0:
            st.state = "finished"
        elif progress.get("state") == "failed":
            st.state, st.message = "failed", progress.get("message") or self._last_log_line(folder)
        elif run.get("stop_requested"):
            st.state = "stopped"
        elif run.get("note"):   # the server that ran it shut down (see shutdown)
            st.state, st.message = "interrupted", run["note"]
        elif progress.get("state") == "stopped":   # SIGTERM from elsewhere (kill, the system shutting down)
            st.state = "stopped"
        else:
            st.state = "interrupted"
            st.message = "its process is gone: killed, or the server or machine went down"
        return st

    def statuses(self) -> list[RunStatus]:
        out = []
        for name in self.names():
            try:
                out.append(self.status(name))
            except RunError:   # removed in the meantime
                continue
        return out

    def active(self) -> RunStatus | None:
        """The run training now, if any (this server's, or one still running
        from before a restart)."""
        return next((s for s in self.statuses() if s.live), None)

    def checkpoints(self, family: str | None = None, dataset: str | None = None) -> list[RunStatus]:
        """Runs not training now that have a finished epoch's model: the
        ones the model pickers offer."""
        return [s for s in self.statuses() if not s.live and s.has_checkpoint
                and (family is None or s.family == family) and (dataset is None or s.dataset == dataset)
                and (self.runs_dir / s.name / "model.safetensors").is_file()]

    @staticmethod
    def _alive(record, progress: dict) -> bool:
        if not isinstance(record, dict) or not isinstance(record.get("pid"), int):
            return False
        if has_proc():
            return record.get("token") is not None and start_token(record["pid"]) == record["token"]
        # No /proc (macOS, Windows): trust the heartbeat of that same pid.
        return progress.get("pid") == record["pid"] and time.time() - progress.get("updated", 0) < STALE_S

    @staticmethod
    def _last_log_line(folder: Path) -> str:
        try:
            lines = [ln.strip() for ln in (folder / LOG_FILE).read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""

    # ---- acting --------------------------------------------------------------
    def start(self, name, *, family: str, dataset: str, epochs: int, batch_size: int | None = None,
              lr: float | None = None, seed: int = 0) -> RunStatus:
        """A new run, trained in the background. Refused while another run is live."""
        name = check_name(name)
        if family not in FAMILIES:
            raise RunError(f"Unknown model family {family!r}: choose one of {', '.join(FAMILIES)}.")
        if dataset not in DATASETS:
            raise RunError(f"Unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}.")
        epochs = self._check_epochs(epochs)
        batch_size = family_of(family).batch_size if batch_size is None else batch_size
        lr = family_of(family).lr if lr is None else lr
        limit = min(MAX_BATCH, self.max_images or MAX_BATCH)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= limit:
            raise RunError(f"Batch size must be a whole number from 1 to {limit}"
                           + (f" (this server trains on {self.max_images} images)" if limit < MAX_BATCH else "")
                           + f"; got {batch_size!r}.")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 1e-6 <= lr <= 1.0:
            raise RunError(f"Learning rate must be a number from 0.000001 to 1; got {lr!r}.")
        with self._lock:
            self._refuse_if_busy()
            folder = self.runs_dir / name
            if (folder / RUN_FILE).is_file():
                st = self.status(name)
                raise RunError(f"A run called '{name}' already exists ({st.state}, {st.epochs_done} of {st.epochs} "
                               f"epochs done): resume it, or choose another name.")
            if folder.exists():
                raise RunError(f"'{name}' is taken by a folder in {self.runs_dir} that is not a run: "
                               f"choose another name.")
            folder.mkdir(parents=True)
            run = {"name": name, "family": family, "dataset": dataset, "epochs": epochs, "batch_size": batch_size,
                   "lr": float(lr), "seed": seed, "max_images": self.max_images,
                   "model_kwargs": self.model_kwargs.get(family, {}),
                   "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")}
            args = [family, "--dataset", dataset, "--batch-size", str(batch_size), "--lr", repr(float(lr)),
                    "--seed", str(seed)]
            if self.max_images:
                args += ["--max-images", str(self.max_images)]
            if run["model_kwargs"]:
                args += ["--model-kwargs", json.dumps(run["model_kwargs"])]
            self._spawn(folder, run, args, epochs)
            return self.status(name)

    def resume(self, name, epochs: int | None = None) -> RunStatus:
        """Continue a stopped, interrupted or failed run from its last
        finished epoch, to `epochs` in total (default: its own total); a
        finished run trains on when `epochs` is above what it has done."""
        with self._lock:
            st = self.status(name)
            if st.live:
                raise RunError(f"{st.describe()}. It is running already: there is nothing to resume.")
            self._refuse_if_busy()
            target = st.epochs if epochs is None else self._check_epochs(epochs)
            if target <= st.epochs_done:
                raise RunError(f"'{name}' has trained {st.epochs_done} epochs already: to train it further, "
                               f"set Epochs above {st.epochs_done} (at most {MAX_EPOCHS}) and resume.")
            folder = self.folder(name)
            run = read_json(folder / RUN_FILE)
            run["epochs"] = target
            if (folder / STATE_FILE).is_file():
                args = [run["family"], "--resume"]   # settings, model size and image count come from the state
            else:   # stopped before its first epoch ended: nothing to continue, so begin again with its settings
                args = [run["family"], "--dataset", run["dataset"], "--batch-size", str(run["batch_size"]),
                        "--lr", repr(float(run["lr"])), "--seed", str(run.get("seed", 0))]
                if run.get("max_images"):
                    args += ["--max-images", str(run["max_images"])]
                if run.get("model_kwargs"):
                    args += ["--model-kwargs", json.dumps(run["model_kwargs"])]
            self._spawn(folder, run, args, target)
            return self.status(name)

    def stop(self, name) -> RunStatus:
        """Ask a live run to stop after the step in progress (SIGTERM: the
        trainer leaves its last finished epoch's files intact). Asked again
        after KILL_AFTER_S, the process is killed."""
        with self._lock:
            st = self.status(name)
            if not st.live:
                raise RunError(f"{st.describe()}. It is not running: there is nothing to stop.")
            folder = self.folder(name)
            run = read_json(folder / RUN_FILE)
            pid = run["process"]["pid"]
            if run.get("stop_requested") and time.time() - run.get("stop_time", 0) > KILL_AFTER_S:
                self._signal(pid, signal.SIGKILL, group=True)
            else:
                run["stop_requested"], run["stop_time"] = True, time.time()
                atomic_write_text(folder / RUN_FILE, json.dumps(run, indent=2) + "\n")
                self._signal(pid, signal.SIGTERM)
            return self.status(name)

    def shutdown(self, timeout: float = 20.0) -> None:
        """The server is going away: stop the runs it started (each ends
        after its step in progress) and mark them interrupted, so the next
        server lists them as such and resumes them on request."""
        with self._lock:
            for name, proc in list(self._procs.items()):
                if proc.poll() is not None:
                    continue
                folder = self.runs_dir / name
                run = read_json(folder / RUN_FILE)
                run["note"] = "the server shut down"
                atomic_write_text(folder / RUN_FILE, json.dumps(run, indent=2) + "\n")
                self._signal(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for proc in self._procs.values():
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._signal(proc.pid, signal.SIGKILL, group=True)
                    proc.wait()

    def _refuse_if_busy(self) -> None:
        active = self.active()
        if active is not None:
            raise RunError(f"One run at a time: {active.describe()}. Stop it, or start yours when it is done.")

    @staticmethod
    def _check_epochs(epochs) -> int:
        if isinstance(epochs, float) and epochs.is_integer():
            epochs = int(epochs)   # numbers arrive as floats from the page
        if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
            raise RunError(f"Epochs must be a whole number from 1 to {MAX_EPOCHS}; got {epochs!r}.")
        return epochs

    def _spawn(self, folder: Path, run: dict, args: list[str], epochs: int) -> None:
        folder = folder.resolve()
        cmd = [self.python, "-m", "aigc.train", *args, "--epochs", str(epochs), "--out", str(folder),
               "--device", self.device, "--no-progress", "--progress-file", str(folder / PROGRESS_FILE)]
        if self.data_dir:
            cmd += ["--data-dir", str(self.data_dir)]
        if run["dataset"] in self.eval_classifiers:
            cmd += ["--eval-classifier", self.eval_classifiers[run["dataset"]]]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"   # the log shows each epoch as it ends
        # The run is on record before its process exists, and the progress file is fresh, so the
        # last process's "stopped" is not read as this one's.
        run.update(process=None, stop_requested=False, note="")
        run.pop("stop_time", None)
        atomic_write_text(folder / RUN_FILE, json.dumps(run, indent=2) + "\n")
        atomic_write_text(folder / PROGRESS_FILE, json.dumps({"state": "starting", "updated": time.time()}) + "\n")
        with open(folder / LOG_FILE, "ab") as log:
            log.write(f"\n== {dt.datetime.now().isoformat(timespec='seconds')}: {' '.join(cmd)}\n".encode())
            log.flush()
            try:   # its own session: signals to the server's process group (Ctrl-C) do not reach it
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True, close_fds=True)
            except OSError as e:
                message = f"could not start {self.python}: {e}"
                atomic_write_text(folder / PROGRESS_FILE, json.dumps({"state": "failed", "message": message}) + "\n")
                raise RunError(f"The training process could not be started ({message}).") from None
        try:   # a lower priority, so visitors of the page are served first
            os.setpriority(os.PRIO_PROCESS, proc.pid, 10)
        except (AttributeError, OSError):
            pass
        self._procs[folder.name] = proc
        run["process"] = {"pid": proc.pid, "token": start_token(proc.pid), "started": time.time()}
        atomic_write_text(folder / RUN_FILE, json.dumps(run, indent=2) + "\n")

    def _signal(self, pid: int, sig: int, group: bool = False) -> None:
        try:
            if group and hasattr(os, "killpg"):
                os.killpg(pid, sig)   # the trainer leads its own session: its group id is its pid
            else:
                os.kill(pid, sig)
        except ProcessLookupError:   # it ended in the meantime
            pass
