"""The Train-status tab: how each checkpoint learned (loss and quality
curves, the fixed-noise grid of every epoch, its card's facts and its
evaluation), and training runs started, followed, stopped and resumed from
the page (aigc.runs does the work)."""
from __future__ import annotations

import html
import json
import logging
import math
from pathlib import Path

import gradio as gr
import pandas as pd
from PIL import Image

from ..card import training_facts
from ..families import FAMILIES as REGISTRY
from ..hub import BUNDLED
from ..io import read_jsonl
from ..runs import MAX_BATCH, MAX_EPOCHS, RunManager, RunStatus
from .catalog import Catalog
from .common import DATASETS, FAMILIES, RUN_PREFIX, check_choice, check_int, check_number, friendly
from .i18n import DEFAULT, EN, Problem, Text, say, say_known
from ..guard import short

log = logging.getLogger("aigc.demo")

TRAINABLE = FAMILIES     # the page trains the families it serves
TRAINING_OFF = EN["ui.train.off"]
# Loss columns of history.jsonl, per family (aigc.families), with the names the plot shows;
# other numeric columns (test_accuracy, class_accuracy, frechet, ...) are quality metrics.
BOOKKEEPING = {"epoch", "step", "epoch_time_s", "images_per_s", "device", "time", "processes", "devices"}
# Quality columns that are fractions (0 to 1) go on one plot; distances and
# everything else on another, so a Frechet distance of 40 does not flatten them.
FRACTIONS = {"class_accuracy", "test_accuracy", "reconstruction_class_accuracy"}
# The distances plot draws log10 of each value: a Frechet distance falls from
# over 1,000 after epoch 1 to about 20, and on a linear axis every later epoch
# lies flat at the bottom. gr.LinePlot has no log axis, so the plot draws a
# log10 column, names it on the axis, and shows the measured value on hover.
LOG_AXIS = EN["msg.train.log_axis"]
FLOOR_SERIES = "real-data floor"
# Plain words for the evaluation numbers of metrics.json (aigc.evaluate), msg.metric.<key> in the
# catalogues; others show their key. Series of the plots likewise, msg.series.<name>.


def metric_name(key: str, lang: str = DEFAULT) -> str:
    return say_known(lang, f"msg.metric.{key}", key)


def series_name(name: str, lang: str = DEFAULT) -> str:
    """A plotted series (a loss as aigc.families names it, a history column, the floor) in `lang`."""
    return say_known(lang, f"msg.series.{name}", name)


class TrainStatusTab:
    """checkpoints_dir: the training folders this tab reads (history.jsonl,
    samples/, metrics.json); runs come from the catalog. allow_training:
    whether visitors may start, stop and resume runs."""

    def __init__(self, catalog: Catalog, checkpoints_dir: str | Path, allow_training: bool = False):
        self.catalog = catalog
        self.runs: RunManager | None = catalog.runs
        self.checkpoints_dir = Path(checkpoints_dir)
        self.allow_training = allow_training and self.runs is not None

    def checkpoint_names(self) -> list[str]:
        """Folders under checkpoints_dir with a training history or a model,
        bundled ones first; then the training runs, newest first, as "run:<name>"."""
        names = []
        if self.checkpoints_dir.is_dir():
            names = [p.name for p in self.checkpoints_dir.iterdir()
                     if p.is_dir() and ((p / "history.jsonl").is_file() or (p / "config.json").is_file())]
            names.sort(key=lambda n: (n not in BUNDLED, BUNDLED.index(n) if n in BUNDLED else 0, n))
        if self.runs is not None:
            names += [RUN_PREFIX + n for n in self.runs.names()]
        return names

    def checkpoint_dropdown(self, name: str | None = None) -> gr.Dropdown:
        names = self.checkpoint_names()
        return gr.Dropdown(choices=names, value=name if name in names else (names[0] if names else None))

    def _run_name(self, name) -> str | None:
        """"run:<name>" of an existing run -> <name>; anything else -> None."""
        if self.runs is None or not isinstance(name, str) or not name.startswith(RUN_PREFIX):
            return None
        bare = name[len(RUN_PREFIX):]
        return bare if self.runs.exists(bare) else None

    def _folder(self, name) -> Path:
        # Only names from the listings: a name from the API never walks out of checkpoints_dir or runs_dir.
        run = self._run_name(name)
        if run is not None:
            return self.runs.folder(run)
        if not isinstance(name, str) or name.startswith(RUN_PREFIX) or name not in self.checkpoint_names():
            names = self.checkpoint_names()
            raise Problem("msg.error.no_such_checkpoint", name=short(name),
                          names=", ".join(names) if names else Text("msg.train.none_yet"))
        return self.checkpoints_dir / name

    @friendly
    def train_status(self, name: str, *, lang: str = DEFAULT):
        """-> (loss curves, fraction-type quality curves (accuracies), other
        quality curves (distances: a gr.LinePlot update, log scale and the
        real-data floor, see distance_plot), epoch slider, grid of the last epoch, model
        card facts, evaluation metrics, progress bar (HTML) of the run shown,
        runs report (JSON: {"selected": the run named, "training_now": the run
        training now, "runs": all runs})): read afresh on every call, so a run
        in progress shows its latest epoch. Runs are named "run:<name>".
        lang: the language of its words (the page's; API callers: English)."""
        folder = self._folder(name)
        return (*self._checkpoint_outputs(folder, lang), *self._live(name, lang))

    def _checkpoint_outputs(self, folder: Path, lang: str = DEFAULT) -> tuple:
        history = read_jsonl(folder / "history.jsonl")
        family = REGISTRY.get(self._family(folder))
        losses = family.losses if family else {}
        curves: dict[str, list[dict]] = {"loss": [], "fraction": [], "other": []}
        for row in history:
            for key, value in row.items():
                if key in BOOKKEEPING or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                plot = "loss" if key in losses else "fraction" if key in FRACTIONS else "other"
                curves[plot].append({"epoch": row["epoch"], "value": value, "series": losses.get(key, key)})
        epochs = int(history[-1]["epoch"]) if history else 0
        slider = gr.Slider(minimum=1, maximum=max(epochs, 2), value=max(epochs, 1), step=1,
                           visible=epochs >= 2, label=say(lang, "msg.train.epoch_slider", n=epochs))
        frames = [pd.DataFrame(curves[k], columns=["epoch", "value", "series"]) for k in ("loss", "fraction")]
        for frame in frames:
            frame["series"] = [series_name(v, lang) for v in frame["series"]]
        return (*frames, distance_plot(curves["other"], *self._floor(folder), lang=lang), slider,
                self._grid(folder, epochs), self._facts(folder, lang), self._metrics(folder, lang))

    def _live(self, name, lang: str = DEFAULT) -> tuple[str, dict | None]:
        """(progress bar of the run named, or else of the run training now;
        the runs report), or ("", None) without runs."""
        if self.runs is None:
            return "", None
        statuses = self.runs.statuses()
        run = self._run_name(name)
        selected = next((s for s in statuses if s.name == run), None)
        active = next((s for s in statuses if s.live), None)
        report = {"selected": selected.as_dict() if selected else None,
                  "training_now": active.as_dict() if active else None,
                  "runs": [{"name": s.name, "state": s.state, "epochs_done": s.epochs_done, "epochs": s.epochs}
                           for s in statuses]}
        shown = selected or active
        return (progress_html(shown, other=shown is not selected, lang=lang) if shown else ""), report

    def train_tick(self, name, seen: dict | None, *, lang: str = DEFAULT):
        """The page's timer (every few seconds): -> (runs picker, the seven
        train_status outputs, progress bar, runs report, what was shown). The
        bar and report are new every time; the picker only when the runs
        changed; curves, grid and facts only when an epoch ended, so the page
        does not redraw them while nothing changed."""
        skip = gr.skip()
        try:
            names = self.checkpoint_names()
            folder = self._folder(name) if name in names else None
            stamp = [name, _mtime(folder / "history.jsonl") if folder else 0]
            seen = seen if isinstance(seen, dict) else {}
            picker = gr.Dropdown(choices=names) if names != seen.get("names") else skip
            stamp.append(lang)   # a language switch redraws the words too
            heavy = self._checkpoint_outputs(folder, lang) if folder and stamp != seen.get("stamp") else (skip,) * 7
            return (picker, *heavy, *self._live(name, lang), {"names": names, "stamp": stamp})
        except Exception:   # a refresh that fails must not put an error on the page every few seconds
            log.exception("train_tick failed")
            return (skip,) * 11

    def training_live(self) -> bool:
        """Whether a run is starting, training or stopping now."""
        try:
            return self.runs is not None and self.runs.active() is not None
        except Exception:   # an unreadable runs folder: nothing to follow
            log.exception("listing runs failed")
            return False

    def timer_state(self) -> gr.Timer:
        """The page's refresh timer runs only while a run is live: an open page
        with nothing training costs the server nothing."""
        return gr.Timer(active=self.training_live())

    def tick(self, name, seen: dict | None, *, lang: str = DEFAULT):
        """The timer's tick -> train_tick's eleven outputs and the timer,
        switched off once no run is live."""
        return (*self.train_tick(name, seen, lang=lang), self.timer_state())

    @friendly
    def train_open(self, name, *, lang: str = DEFAULT):
        """The page opens -> (the checkpoint picker, with the run training now
        picked if there is one, else `name`; the nine train_status outputs)."""
        names = self.checkpoint_names()
        active = self.runs.active() if self.runs is not None else None
        value = RUN_PREFIX + active.name if active else name if name in names else (names[0] if names else None)
        shown = self.train_status(value, lang=lang) if value else (gr.skip(),) * 9
        return (gr.Dropdown(choices=names, value=value), *shown)

    def suggest_run_name(self, family: str = "gan", dataset: str = "mnist") -> str:
        """The first free "<family>-<dataset>-<n>"."""
        family = family if family in TRAINABLE.values() else "gan"
        dataset = dataset if dataset in DATASETS.values() else "mnist"
        n = 1
        while self.runs is not None and self.runs.folder(f"{family}-{dataset}-{n}").exists():
            n += 1
        return f"{family}-{dataset}-{n}"

    def train_settings(self, name):
        """A run picked on the page -> its settings into the training controls
        (family, dataset, epochs, batch size, learning rate), so Resume goes
        on with them; another checkpoint -> no change."""
        run = self._run_name(name)
        if run is None:
            return (gr.skip(),) * 5
        st = self.runs.status(run)
        return st.family, st.dataset, st.epochs, st.settings.get("batch_size"), st.settings.get("lr")

    def _training(self) -> RunManager:
        if not self.allow_training:
            raise Problem("ui.train.off")   # the words the page shows beside the training controls
        return self.runs

    @friendly
    def train_start(self, family: str, dataset: str, epochs: int, batch_size: int, learning_rate: float,
                    name: str, *, lang: str = DEFAULT):
        """Start training a new run in the background (one run at a time)
        -> (what happened, in words; the run as the checkpoint pickers name it, "run:<name>")."""
        runs = self._training()
        st = runs.start(name.strip() if isinstance(name, str) else name,
                        family=check_choice(family, TRAINABLE, Text("msg.what.family")),
                        dataset=check_choice(dataset, DATASETS, Text("msg.what.dataset")),
                        epochs=check_int(epochs, 1, MAX_EPOCHS, Text("msg.what.epochs")),
                        batch_size=check_int(batch_size, 1, MAX_BATCH, Text("msg.what.batch_size")),
                        lr=check_number(learning_rate, 0.0, 1.0, Text("msg.what.learning_rate")))
        # The picker gets the run's value; the page's timer adds it to the picker's choices.
        return say(lang, "msg.train.started", name=st.name, epochs=st.epochs), RUN_PREFIX + st.name

    @friendly
    def train_stop(self, name: str, *, lang: str = DEFAULT) -> str:
        """Stop a run after the step in progress; its last finished epoch's checkpoint is kept."""
        st = self._training().stop(self._bare(name))
        return say(lang, "msg.train.stopping", name=st.name, done=st.epochs_done, next=st.epochs_done + 1)

    def train_resume(self, name: str, epochs: int | None = None) -> tuple[str, str]:
        """Continue a stopped or interrupted run from its last finished epoch,
        to `epochs` in total (default: its own total) -> as train_start."""
        return self.train_resume_page(name, epochs)

    @friendly
    def train_resume_page(self, name: str, epochs: int | None = None, *, lang: str = DEFAULT) -> tuple[str, str]:
        """train_resume, its words in the page's language (the /train_resume
        endpoint is gr.api's view of train_resume, whose parameters are its
        API: it has no language)."""
        runs = self._training()
        epochs = None if epochs is None else check_int(epochs, 1, MAX_EPOCHS, Text("msg.what.epochs"))
        st = runs.resume(self._bare(name), epochs)
        return (say(lang, "msg.train.resumed", name=st.name, next=st.epochs_done + 1, epochs=st.epochs),
                RUN_PREFIX + st.name)

    @staticmethod
    def _bare(name):
        return name[len(RUN_PREFIX):] if isinstance(name, str) and name.startswith(RUN_PREFIX) else name

    @friendly
    def train_grid(self, name: str, epoch: int, *, lang: str = DEFAULT) -> Image.Image | None:
        """The fixed-noise grid written after `epoch` (one row per class)."""
        return self._grid(self._folder(name), check_int(epoch, 0, 100_000, Text("msg.what.epoch")))

    @staticmethod
    def _family(folder: Path) -> str:
        # Before the first epoch ends there is no config.json yet; training.json names the kind.
        for name, key in (("config.json", "family"), ("training.json", "kind")):
            try:
                return json.loads((folder / name).read_text())[key]
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return ""

    @staticmethod
    def _floor(folder: Path) -> tuple[float | None, int | None]:
        """(the Frechet distance real training images reach to the test images,
        how many images each) from the folder's own evaluation; (None, None)
        when it has none. Not borrowed from another checkpoint of the dataset:
        a run may judge its epochs with another classifier (aigc.runs'
        eval_classifiers), and a distance means something only in the
        features of the classifier that measured it."""
        try:
            m = json.loads((folder / "metrics.json").read_text())
            floor = m["frechet_floor"]
        except (OSError, ValueError, KeyError, TypeError):
            return None, None
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not floor > 0:
            return None, None
        count = m.get("frechet_real")
        return float(floor), count if isinstance(count, int) and not isinstance(count, bool) else None

    @staticmethod
    def _grid(folder: Path, epoch: int) -> Image.Image | None:
        path = folder / "samples" / f"epoch_{epoch:03d}.png"
        if not path.is_file():
            return None
        with Image.open(path) as img:
            return img.convert("L")

    @staticmethod
    def _facts(folder: Path, lang: str = DEFAULT) -> str:
        if not (folder / "config.json").is_file():
            return say(lang, "msg.facts.not_yet", name=folder.name)
        f = training_facts(folder)
        params = f"{f['parameters']:,}" if f["parameters"] else "?"
        device = f"{f['device']} ({f['hardware']})" if f["hardware"] else f["device"]
        family = say_known(lang, f"ui.family.{f['family']}", f["family"])
        dataset = say_known(lang, f"ui.dataset.{f['dataset']}", f["dataset"])
        rows = [("family", family), ("dataset", dataset),
                ("epochs", say(lang, "msg.facts.epochs_value", epochs=f["epochs"], steps=f["steps"])),
                ("parameters", params), ("wall_time", say(lang, "msg.facts.minutes", m=f["wall_time_s"] / 60)),
                ("device", device), ("date", f["date"]),
                ("settings", f"{f['batch_size']}, {f['lr']}, {f['seed']}")]
        table = "\n".join(f"| {say(lang, 'msg.facts.' + k)} | {v} |" for k, v in rows)
        return (f"**{folder.name}**\n\n| {say(lang, 'msg.facts.fact')} | {say(lang, 'msg.facts.value')} |\n"
                f"| --- | --- |\n{table}")

    @staticmethod
    def _metrics(folder: Path, lang: str = DEFAULT) -> str:
        path = folder / "metrics.json"
        if not path.is_file():
            return say(lang, "msg.metrics.not_yet")
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError):
            return say(lang, "msg.metrics.unreadable")
        rows = []
        for k, v in (metrics.items() if isinstance(metrics, dict) else []):
            if isinstance(v, dict):   # e.g. accuracy per class: one line, "T-shirt/top 0.93, Trouser 0.99, ..."
                v = ", ".join(f"{k2} {v2}" for k2, v2 in v.items() if not isinstance(v2, (dict, list)))
            elif isinstance(v, list):
                continue
            rows.append(f"| {metric_name(k, lang)} | {v} |")
        head = say(lang, "msg.metrics.heading")
        if isinstance(metrics, dict) and metrics.get("precision") is not None and metrics.get("recall") is not None:
            ref = (say(lang, "msg.metrics.coverage_real", p=metrics["precision_real"], r=metrics["recall_real"])
                   if metrics.get("precision_real") is not None and metrics.get("recall_real") is not None else "")
            head += "\n\n" + say(lang, "msg.metrics.coverage", p=metrics["precision"], r=metrics["recall"], ref=ref)
        return (head + f"\n\n| {say(lang, 'msg.metrics.metric')} | {say(lang, 'msg.facts.value')} |\n| --- | --- |\n"
                + "\n".join(rows))


def distance_curves(points: list[dict], floor: float | None = None) -> pd.DataFrame:
    """Points of the distances plot ({"epoch", "value", "series"} each) ->
    a frame (epoch, value, series, log10): value as measured, log10 what the
    plot draws (NaN for a value of 0 or less). floor: the real-data Frechet
    floor, drawn as the series FLOOR_SERIES, flat over the epochs the
    Frechet distance was measured at (None, or no Frechet distance: no line)."""
    rows = list(points)
    if floor is not None:
        epochs = sorted({p["epoch"] for p in points if p["series"] == "frechet"})
        rows += [{"epoch": e, "value": floor, "series": FLOOR_SERIES} for e in epochs]
    frame = pd.DataFrame(rows, columns=["epoch", "value", "series"])
    frame["log10"] = [round(math.log10(v), 4) if v > 0 else math.nan for v in frame["value"]]
    return frame


def distance_plot(points: list[dict], floor: float | None = None, floor_images: int | None = None, *,
                  lang: str = DEFAULT) -> gr.LinePlot:
    """The distances plot, as an update of the page's gr.LinePlot: the curves
    of distance_curves on a log scale (the axis and caption say so; hovering
    shows the measured value), with the real-data floor when it is known. A
    plot with a value of 0 or less (no logarithm) stays linear. Every call
    sets y, the axis title, the hover and the caption, so a plot drawn for
    one checkpoint never keeps another's."""
    frame = distance_curves(points, floor)
    log = not frame.empty and bool((frame["value"] > 0).all())
    caption = None
    if log and "frechet" in set(frame["series"]):
        if floor is None:
            caption = say(lang, "msg.train.floor_unknown")
        else:
            each = say(lang, "msg.train.floor_each", n=floor_images) if floor_images else ""
            caption = say(lang, "msg.train.floor", floor=floor, each=each)
    elif log:
        caption = say(lang, "msg.train.log_scale")
    frame["series"] = [series_name(v, lang) for v in frame["series"]]
    # Every call sets the axis title too: a log plot's title would otherwise stay on a linear one.
    return gr.LinePlot(value=frame, y="log10" if log else "value",
                       y_title=say(lang, "msg.train.log_axis" if log else "ui.train.value_axis"),
                       tooltip=["value"] if log else "axis", caption=caption)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def duration(seconds: float | None, lang: str = DEFAULT) -> str:
    """Seconds -> "about 40 s", "about 4 min", "about 1 h 20 min" (aigc.runs.duration, in `lang`)."""
    if seconds is None or not math.isfinite(seconds):
        return say(lang, "msg.run.left_unknown")
    s = max(0, round(seconds))
    if s < 60:
        return say(lang, "msg.duration.s", s=max(s, 1))
    if s < 3600:
        return say(lang, "msg.duration.min", m=round(s / 60))
    h, m = divmod(round(s / 60), 60)
    return say(lang, "msg.duration.h_min", h=h, m=m) if m else say(lang, "msg.duration.h", h=h)


def describe(st: RunStatus, lang: str = DEFAULT) -> str:
    """One line in plain words, as RunStatus.describe() says it (in English, for
    logs and the API's JSON), in `lang` for the page's progress bar."""
    what = say(lang, "msg.run.what", name=st.name, family=FAMILIES_BY_NAME.get(st.family, st.family),
               dataset=say(lang, f"ui.dataset.{st.dataset}") if st.dataset in DATASETS.values() else st.dataset)
    if st.state == "starting":
        return say(lang, "msg.run.starting", what=what, epochs=st.epochs)
    if st.live:
        where = (say(lang, "msg.run.where_step", epoch=st.epoch or st.epochs_done + 1, epochs=st.epochs,
                     step=st.step, steps=st.steps) if st.step and st.steps else
                 say(lang, "msg.run.where", epoch=st.epoch or st.epochs_done + 1, epochs=st.epochs))
        if st.state == "stopping":
            return say(lang, "msg.run.stopping", what=what, where=where)
        left = duration(None, lang) if st.eta_s is None else \
            say(lang, "msg.run.left", duration=duration(st.eta_s, lang))
        return say(lang, "msg.run.running", what=what, where=where, left=left)
    done = say(lang, "msg.run.done", done=st.epochs_done, epochs=st.epochs)
    why = st.message or say(lang, "msg.run.gone" if st.state == "interrupted" else "msg.run.see_log")
    if st.state in ("finished", "stopped", "interrupted", "failed"):
        return say(lang, f"msg.run.{st.state}", what=what, done=done, next=st.epochs_done + 1, why=why)
    return f"{what}: {st.state}"


FAMILIES_BY_NAME = {v: k for k, v in FAMILIES.items()}


def progress_html(st: RunStatus, other: bool = False, lang: str = DEFAULT) -> str:
    """A run's progress bar and where it stands, in words. other: the run
    shown is not the checkpoint picked (it is the one training now)."""
    pct = round(100 * st.fraction)
    note = " " + say(lang, "msg.run.pick_to_follow", name=st.name) if other else ""
    state = say_known(lang, f"msg.state.{st.state}", st.state)
    return (f'<div class="run-live" data-state="{st.state}">'
            f'<div class="run-bar" role="progressbar" aria-valuenow="{pct}" aria-valuemin="0" aria-valuemax="100">'
            f'<div style="width: {pct}%"></div></div>'
            f'<p><b>{html.escape(state)} · {pct}%</b> · {html.escape(describe(st, lang))}.'
            f'{html.escape(note)}</p></div>')
