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
from ..guard import short

log = logging.getLogger("aigc.demo")

TRAINABLE = FAMILIES     # the page trains the families it serves
TRAINING_OFF = ("Training from the page is turned off on this server: it is public (a shared link or a "
                "Hugging Face Space), and training would take its CPU from every visitor. Run the demo on "
                "your own machine (python app.py) to train, or start it with --allow-training.")
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
LOG_AXIS = "log10 (1 = 10, 2 = 100, 3 = 1,000)"
FLOOR_SERIES = "real-data floor"
# Plain words for the evaluation numbers of metrics.json (aigc.evaluate); others show their key.
METRIC_NAMES = {
    "class_accuracy": "class accuracy: samples the classifier recognises as the class asked for",
    "frechet": "Frechet distance of samples to test images (lower: closer to real)",
    "frechet_floor": "Frechet distance of real training images to test images (the floor)",
    "frechet_ratio": "Frechet distance / floor (1 = as close as real data)",
    "nelbo": "negative ELBO on the test set, nats (lower: better)",
    "nll_iw": "importance-weighted negative log-likelihood bound, nats",
    "reconstruction_mse": "reconstruction mean squared error",
    "reconstruction_class_accuracy": "class accuracy of reconstructions",
    "precision": "precision: samples that fall among real images (k=3 neighbourhoods of the classifier's features)",
    "recall": "recall: real images the samples cover (low: mode collapse, the model draws too few kinds)",
    "precision_real": "precision of real training images against the test images (the reference)",
    "recall_real": "recall of real training images against the test images (the reference)",
    "copy_share": "samples whose nearest training image is much closer than the second (d1/d2 < 1/3): copies",
    "copy_share_real": "the same for real test images (the reference)",
    "nn_distance": "median distance of a sample to its nearest training image (pixels)",
    "nn_distance_real": "the same for real test images (pixels; a copying model sits well below)",
    "cas": "Classification Accuracy Score: a classifier trained on samples, tested on real test images",
    "cas_real": "the same classifier trained on real training images (the reference)",
}


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
            names = ", ".join(self.checkpoint_names()) or "none yet"
            raise gr.Error(f"No checkpoint called {short(name)}; choose one of: {names}.")
        return self.checkpoints_dir / name

    @friendly
    def train_status(self, name: str):
        """-> (loss curves, fraction-type quality curves (accuracies), other
        quality curves (distances: a gr.LinePlot update, log scale and the
        real-data floor, see distance_plot), epoch slider, grid of the last epoch, model
        card facts, evaluation metrics, progress bar (HTML) of the run shown,
        runs report (JSON: {"selected": the run named, "training_now": the run
        training now, "runs": all runs})): read afresh on every call, so a run
        in progress shows its latest epoch. Runs are named "run:<name>"."""
        folder = self._folder(name)
        return (*self._checkpoint_outputs(folder), *self._live(name))

    def _checkpoint_outputs(self, folder: Path) -> tuple:
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
                           visible=epochs >= 2, label=f"Epoch (1 to {epochs})")
        frames = [pd.DataFrame(curves[k], columns=["epoch", "value", "series"]) for k in ("loss", "fraction")]
        return (*frames, distance_plot(curves["other"], *self._floor(folder)), slider, self._grid(folder, epochs),
                self._facts(folder), self._metrics(folder))

    def _live(self, name) -> tuple[str, dict | None]:
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
        return (progress_html(shown, other=shown is not selected) if shown else ""), report

    def train_tick(self, name, seen: dict | None):
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
            heavy = self._checkpoint_outputs(folder) if folder and stamp != seen.get("stamp") else (skip,) * 7
            return (picker, *heavy, *self._live(name), {"names": names, "stamp": stamp})
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

    def tick(self, name, seen: dict | None):
        """The timer's tick -> train_tick's eleven outputs and the timer,
        switched off once no run is live."""
        return (*self.train_tick(name, seen), self.timer_state())

    @friendly
    def train_open(self, name):
        """The page opens -> (the checkpoint picker, with the run training now
        picked if there is one, else `name`; the nine train_status outputs)."""
        names = self.checkpoint_names()
        active = self.runs.active() if self.runs is not None else None
        value = RUN_PREFIX + active.name if active else name if name in names else (names[0] if names else None)
        shown = self.train_status(value) if value else (gr.skip(),) * 9
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
            raise gr.Error(TRAINING_OFF)
        return self.runs

    @friendly
    def train_start(self, family: str, dataset: str, epochs: int, batch_size: int, learning_rate: float,
                    name: str):
        """Start training a new run in the background (one run at a time)
        -> (what happened, in words; the run as the checkpoint pickers name it, "run:<name>")."""
        runs = self._training()
        st = runs.start(name.strip() if isinstance(name, str) else name,
                        family=check_choice(family, TRAINABLE, "model family"),
                        dataset=check_choice(dataset, DATASETS, "dataset"),
                        epochs=check_int(epochs, 1, MAX_EPOCHS, "Epochs"),
                        batch_size=check_int(batch_size, 1, MAX_BATCH, "Batch size"),
                        lr=check_number(learning_rate, 0.0, 1.0, "The learning rate"))
        # The picker gets the run's value; the page's timer adds it to the picker's choices.
        return (f"Started '{st.name}': {st.epochs} epochs in the background. You can close this page; "
                f"the run goes on, and this tab shows where it stands when you come back.", RUN_PREFIX + st.name)

    @friendly
    def train_stop(self, name: str) -> str:
        """Stop a run after the step in progress; its last finished epoch's checkpoint is kept."""
        st = self._training().stop(self._bare(name))
        return (f"Stopping '{st.name}' after the step in progress. Its last finished epoch ({st.epochs_done}) "
                f"is kept as a checkpoint; Resume continues from epoch {st.epochs_done + 1}.")

    @friendly
    def train_resume(self, name: str, epochs: int | None = None) -> tuple[str, str]:
        """Continue a stopped or interrupted run from its last finished epoch,
        to `epochs` in total (default: its own total) -> as train_start."""
        runs = self._training()
        epochs = None if epochs is None else check_int(epochs, 1, MAX_EPOCHS, "Epochs")
        st = runs.resume(self._bare(name), epochs)
        return (f"Resumed '{st.name}' from epoch {st.epochs_done + 1} of {st.epochs}, in the background.",
                RUN_PREFIX + st.name)

    @staticmethod
    def _bare(name):
        return name[len(RUN_PREFIX):] if isinstance(name, str) and name.startswith(RUN_PREFIX) else name

    @friendly
    def train_grid(self, name: str, epoch: int) -> Image.Image | None:
        """The fixed-noise grid written after `epoch` (one row per class)."""
        return self._grid(self._folder(name), check_int(epoch, 0, 100_000, "The epoch"))

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
    def _facts(folder: Path) -> str:
        if not (folder / "config.json").is_file():
            return f"**{folder.name}**: no epoch has finished yet."
        f = training_facts(folder)
        minutes = f["wall_time_s"] / 60
        params = f"{f['parameters']:,}" if f["parameters"] else "?"
        device = f"{f['device']} ({f['hardware']})" if f["hardware"] else f["device"]
        rows = [("family", f["family"]), ("dataset", f["dataset"]),
                ("epochs", f"{f['epochs']} ({f['steps']:,} steps)"), ("parameters", params),
                ("wall time", f"{minutes:.1f} min"), ("device", device), ("date", f["date"]),
                ("batch size, learning rate, seed", f"{f['batch_size']}, {f['lr']}, {f['seed']}")]
        table = "\n".join(f"| {k} | {v} |" for k, v in rows)
        return f"**{folder.name}**\n\n| fact | value |\n| --- | --- |\n{table}"

    @staticmethod
    def _metrics(folder: Path) -> str:
        path = folder / "metrics.json"
        if not path.is_file():
            return "Evaluation metrics appear here once the checkpoint has been evaluated."
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError):
            return "metrics.json is being written or is unreadable; refresh in a moment."
        rows = []
        for k, v in (metrics.items() if isinstance(metrics, dict) else []):
            if isinstance(v, dict):   # e.g. accuracy per class: one line, "T-shirt/top 0.93, Trouser 0.99, ..."
                v = ", ".join(f"{k2} {v2}" for k2, v2 in v.items() if not isinstance(v2, (dict, list)))
            elif isinstance(v, list):
                continue
            rows.append(f"| {METRIC_NAMES.get(k, k)} | {v} |")
        head = "**Evaluation**"
        if isinstance(metrics, dict) and metrics.get("precision") is not None and metrics.get("recall") is not None:
            ref = (f" (real data: {metrics['precision_real']:.2f} / {metrics['recall_real']:.2f})"
                   if metrics.get("precision_real") is not None and metrics.get("recall_real") is not None else "")
            head += (f"\n\nCoverage: precision {metrics['precision']:.2f} / recall {metrics['recall']:.2f}{ref}. "
                     f"Low recall means mode collapse: the model draws too few kinds of picture.")
        return head + "\n\n| metric | value |\n| --- | --- |\n" + "\n".join(rows)


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


def distance_plot(points: list[dict], floor: float | None = None, floor_images: int | None = None) -> gr.LinePlot:
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
            caption = ("Log scale. Real-data floor unknown: it comes from the checkpoint's evaluation "
                       "(python -m aigc.evaluate), and this one has none.")
        else:
            each = f", {floor_images:,} each" if floor_images else ""
            caption = (f"Log scale. Flat line: the real-data floor, {floor:g}, the distance real training "
                       f"images reach to the test images in this checkpoint's evaluation{each}. The per-epoch "
                       f"check compares 2,000 images and reads higher, so its curve levels off above the floor.")
    elif log:
        caption = "Log scale."
    return gr.LinePlot(value=frame, y="log10" if log else "value", y_title=LOG_AXIS if log else None,
                       tooltip=["value"] if log else "axis", caption=caption)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


STATE_WORDS = {"starting": "starting", "running": "training", "stopping": "stopping", "finished": "finished",
               "stopped": "stopped", "interrupted": "interrupted", "failed": "failed"}


def progress_html(st: RunStatus, other: bool = False) -> str:
    """A run's progress bar and where it stands, in words. other: the run
    shown is not the checkpoint picked (it is the one training now)."""
    pct = round(100 * st.fraction)
    note = f" Pick run:{st.name} above to follow its curves." if other else ""
    return (f'<div class="run-live" data-state="{st.state}">'
            f'<div class="run-bar" role="progressbar" aria-valuenow="{pct}" aria-valuemin="0" aria-valuemax="100">'
            f'<div style="width: {pct}%"></div></div>'
            f'<p><b>{STATE_WORDS.get(st.state, st.state)} · {pct}%</b> · {html.escape(st.describe())}.'
            f'{html.escape(note)}</p></div>')
