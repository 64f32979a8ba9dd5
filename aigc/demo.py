"""The demo's handlers. Each takes the values of the page's widgets (or of an
API call), checks them, calls aigc, and returns what the widgets show; the
layout and the wiring live in app.py.

Widgets hand over values, not labels: each choice is a (label, value) pair
from one of the dicts below, and the handlers check the value against it.

Whatever a visitor can get wrong becomes a gr.Error in plain words. Anything
else is logged with its traceback and reported as a short apology, so the
page never shows a stack trace and the server keeps serving.
"""
from __future__ import annotations

import functools
import html
import json
import logging
import math
import os
import random
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont

from . import latent, load_folder, media, morph
from .card import training_facts
from .data import class_names
from .examples import EXAMPLES_DIR, Example, list_examples
from .hub import BUNDLED
from .io import read_jsonl
from .model import GenerativeModel
from .preprocess import NOT_AN_IMAGE, EmptyImageError, ImageError, prepare
from .runs import MAX_BATCH, MAX_EPOCHS, RunError, RunManager, RunStatus

log = logging.getLogger("aigc.demo")

# ---- what the widgets offer: label shown -> value the handlers receive -------
FAMILIES = {"GAN": "gan", "VAE": "vae"}
DATASETS = {"digits": "mnist", "fashion": "fashion"}
INTERPOLATIONS = {"two seeds": "seeds", "two classes": "classes", "two images": "images"}
PATHS = {"spherical": "spherical", "linear": "linear"}      # values are aigc.latent.PATHS keys
EVERY_CLASS = "every class"                                   # a class value meaning one row per class
BUNDLED_CHOICE = "bundled"   # the model pickers' value for the demo's own model; runs are "run:<name>"
RUN_PREFIX = "run:"
RUN_MODELS_KEPT = 8          # models of runs kept loaded (the pickers' cache)
TRAINING_OFF = ("Training from the page is turned off on this server: it is public (a shared link or a "
                "Hugging Face Space), and training would take its CPU from every visitor. Run the demo on "
                "your own machine (python app.py) to train, or start it with --allow-training.")

MAX_COUNT = 100          # images per class in a sample grid
MAX_SEED = 2**32 - 1     # seeds the page offers (a browser number is exact up to 2**53)
STEPS = (2, 60)          # frames in an interpolation
STRIP_COLUMNS = 12       # frames per row of the interpolation strip
SCALE = 8                # nearest-neighbour upscale of single 28x28 pictures: 224 px
GIF_LOOP_MS = 3000       # one back-and-forth of the animation, spread over its frames

# Loss columns of history.jsonl, per family, with the names the plot shows;
# other numeric columns (test_accuracy, class_accuracy, frechet, ...) are quality metrics.
LOSSES = {
    "gan": {"d_loss": "discriminator", "g_loss": "generator",
            "d_cls": "discriminator, class head", "g_cls": "generator, class head"},
    "vae": {"loss": "total (-ELBO)", "rec": "reconstruction", "kl": "KL",
            "iw_bound": "importance-weighted bound (training with iw_samples > 1)"},
    "classifier": {"loss": "cross-entropy"},
}
BOOKKEEPING = {"epoch", "step", "epoch_time_s", "images_per_s", "device", "time"}
# Quality columns that are fractions (0 to 1) go on one plot; distances and
# everything else on another, so a Frechet distance of 40 does not flatten them.
FRACTIONS = {"class_accuracy", "test_accuracy", "reconstruction_class_accuracy"}
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
}
# Reconstruction error (mean absolute pixel difference) of a decent VAE on
# test images; used for the verdict only when no bundled examples are found.
FALLBACK_TYPICAL_ERROR = 0.06


def serving_threads(concurrency: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """-> (requests run at once, torch threads each). The models are small:
    one thread per request, as many requests as cores, beats several threads
    fighting over the same cores (and a busy machine makes that fight worse)."""
    cores = cores or os.cpu_count() or 1
    concurrency = concurrency or max(2, cores)
    return concurrency, max(1, cores // concurrency)


def friendly(fn):
    """gr.Error passes through; an ImageError's message is already meant for
    the visitor; anything else is a bug on our side: log it, apologise."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ImageError, RunError) as e:   # messages already meant for the visitor
            raise gr.Error(str(e)) from None
        except Exception:
            log.exception("%s failed", fn.__name__)
            raise gr.Error("Sorry, that went wrong on our side. Please try again, "
                           "or try other settings.") from None

    return wrapper


# ---- argument checks: API callers can send anything ------------------------
def check_choice(value, choices: dict[str, str], what: str) -> str:
    if value not in choices.values():
        raise gr.Error(f"Unknown {what} {value!r}: choose one of {', '.join(map(repr, choices.values()))}.")
    return value


def check_int(value, lo: int, hi: int, what: str) -> int:
    # Sliders and numbers arrive as floats through the API (64.0): accept whole numbers.
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(value) and value == int(value) and lo <= value <= hi:
        return int(value)
    raise gr.Error(f"{what} must be a whole number from {lo} to {hi:,}; got {value!r}.")


def check_number(value, lo: float, hi: float, what: str) -> float:
    """A number in (lo, hi]."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(value) and lo < value <= hi:
        return float(value)
    raise gr.Error(f"{what} must be a number above {lo:g} and at most {hi:g}; got {value!r}.")


def picture(images: torch.Tensor, nrow: int) -> Image.Image:
    """(N, 1, 28, 28) in [0, 1] -> a grid, upscaled by nearest neighbour to
    about 960 px wide (crisp pixels, never blurred)."""
    g = latent.grid(images, nrow=nrow)                       # (H, W)
    return latent.to_pil(g, scale=latent.tile_scale(g.shape[1]))


def big(x: torch.Tensor) -> Image.Image:
    """One (1, 28, 28) image -> 224x224 grayscale, crisp."""
    return latent.to_pil(x, scale=SCALE)


def side_by_side(panels: list[Image.Image], captions: list[str], gap: int = 8, caption_h: int = 24) -> Image.Image:
    """Equal-sized panels in a row on white, each captioned underneath: one
    picture to show and to download (one file is also one download for an API caller)."""
    w, h = panels[0].size
    out = Image.new("RGB", (len(panels) * w + (len(panels) - 1) * gap, h + caption_h), "white")
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=14)
    for i, (panel, caption) in enumerate(zip(panels, captions)):
        x = i * (w + gap)
        out.paste(panel.convert("RGB"), (x, 0))
        draw.text((x + w / 2, h + caption_h / 2), caption, fill=(60, 60, 60), font=font, anchor="mm")
    return out


class Studio:
    """The handlers, around models loaded once. models: GANs and VAEs, at most
    one per (family, dataset); checkpoints_dir holds the training folders the
    train-status tab reads (history.jsonl, samples/, metrics.json).

    runs: the training runs (None: this demo lists none); their checkpoints
    join the model pickers, loaded on first use and cached. allow_training:
    whether visitors may start, stop and resume runs."""

    def __init__(self, models: Iterable[GenerativeModel], *, checkpoints_dir: str | Path,
                 examples_dir: str | Path = EXAMPLES_DIR, output_dir: str | Path | None = None,
                 runs: RunManager | None = None, allow_training: bool = False):
        self.models: dict[tuple[str, str], GenerativeModel] = {}
        for m in models:
            key = (m.family, m.dataset)
            if key[0] not in FAMILIES.values() or key[1] not in DATASETS.values():
                raise ValueError(f"the demo serves GANs and VAEs on {list(DATASETS.values())}, "
                                 f"not a {m.family} on {m.dataset!r}")
            if key in self.models:
                raise ValueError(f"two models for {key}")
            self.models[key] = m
        if not self.models:
            raise ValueError("the demo needs at least one model")
        self.checkpoints_dir = Path(checkpoints_dir)
        self.examples: dict[str, list[Example]] = {d: list_examples(d, examples_dir) for d in DATASETS.values()}
        self.outputs = media.OutputFolder(output_dir)
        # Reconstruction errors of the bundled test examples: what "typical" means in the verdict.
        self.reference_errors = {d: self._reference_errors(d) for d in DATASETS.values()}
        self.runs = runs
        self.allow_training = allow_training and runs is not None
        # Runs' models, keyed by (run name, weights file's mtime): a resumed run's new epoch is a new key.
        self._run_models: OrderedDict[tuple[str, int], tuple[GenerativeModel, np.ndarray]] = OrderedDict()
        self._run_models_lock = threading.Lock()

    # ---- lookups ----------------------------------------------------------
    def model(self, family: str, dataset: str, checkpoint: str | None = BUNDLED_CHOICE) -> GenerativeModel:
        """The demo's model for (family, dataset), or with checkpoint
        "run:<name>" the model of that finished or stopped run."""
        family = check_choice(family, FAMILIES, "model family")
        dataset = check_choice(dataset, DATASETS, "dataset")
        if checkpoint not in (None, "", BUNDLED_CHOICE):
            return self._run_model(checkpoint, family, dataset)[0]
        if (family, dataset) not in self.models:
            raise gr.Error(f"This demo has no {family.upper()} for {dataset} loaded.")
        return self.models[(family, dataset)]

    def checkpoint_choices(self, family: str, dataset: str) -> list[tuple[str, str]]:
        """What a model picker offers for (family, dataset): the demo's model,
        then the finished and stopped runs of that family and dataset."""
        choices = [("demo model", BUNDLED_CHOICE)]
        if self.runs is not None:
            choices += [(f"{s.name} (your run, {s.epochs_done} epoch{'s' * (s.epochs_done != 1)})",
                         RUN_PREFIX + s.name) for s in self.runs.checkpoints(family, dataset)]
        return choices

    def checkpoint_picker(self, family: str, dataset: str, current: str | None = None) -> gr.Dropdown:
        choices = self.checkpoint_choices(family, dataset)
        values = [v for _, v in choices]
        return gr.Dropdown(choices=choices, value=current if current in values else BUNDLED_CHOICE)

    def _run_model(self, checkpoint, family: str, dataset: str) -> tuple[GenerativeModel, np.ndarray]:
        """(model, reconstruction errors of the test examples) of run checkpoint, loaded once."""
        name = checkpoint[len(RUN_PREFIX):] if isinstance(checkpoint, str) and checkpoint.startswith(RUN_PREFIX) \
            else None
        if self.runs is None or name is None or not self.runs.exists(name):
            names = [v for _, v in self.checkpoint_choices(family, dataset)]
            raise gr.Error(f"No checkpoint called {checkpoint!r} for a {family.upper()} on {dataset}; "
                           f"choose one of: {', '.join(names)}.")
        st = self.runs.status(name)
        if (st.family, st.dataset) != (family, dataset):
            raise gr.Error(f"The run '{name}' is a {st.family.upper()} trained on {st.dataset}, "
                           f"not a {family.upper()} on {dataset}: pick it with those settings.")
        weights = self.runs.folder(name) / "model.safetensors"
        if st.live or not weights.is_file():
            raise gr.Error(f"The run '{name}' is {st.state}: its model can be used once it has finished "
                           f"or been stopped after at least one epoch.")
        key = (name, weights.stat().st_mtime_ns)
        with self._run_models_lock:
            if key not in self._run_models:
                device = next(iter(self.models.values())).device
                model = load_folder(self.runs.folder(name), device=device)
                model.source = f"run:{self.runs.folder(name)}"
                errors = self._reference_errors(dataset, model) if family == "vae" else np.array([])
                self._run_models[key] = (model, errors)
                while len(self._run_models) > RUN_MODELS_KEPT:
                    self._run_models.popitem(last=False)
            self._run_models.move_to_end(key)
            return self._run_models[key]

    @staticmethod
    def class_index(model: GenerativeModel, name) -> int:
        if name in model.classes:
            return model.classes.index(name)
        raise gr.Error(f"{name!r} is not a class of {model.dataset}; choose one of: {', '.join(model.classes)}.")

    @staticmethod
    def class_choices(dataset: str, every: bool = False) -> list[tuple[str, str]]:
        names = class_names(dataset)
        return ([(EVERY_CLASS, EVERY_CLASS)] if every else []) + [(n, n) for n in names]

    def model_sources(self) -> str:
        """Markdown: where each loaded model came from, and why if it fell back."""
        family_label = {v: k for k, v in FAMILIES.items()}
        dataset_label = {v: k for k, v in DATASETS.items()}
        lines = []
        for (family, dataset), m in sorted(self.models.items()):
            note = getattr(m, "source_note", "") or ""   # aigc.load says why it fell back from the Hub
            lines.append(f"**{family_label[family]} {dataset_label[dataset]}**: `{m.source or 'in memory'}`"
                         + (f" ({note})" if note else ""))
        return "Models: " + " · ".join(lines)

    def example_paths(self, dataset: str, n: int | None = None) -> list[str]:
        return [str(e.path) for e in self.examples[dataset][:n]]

    # ---- sample -----------------------------------------------------------
    @friendly
    def sample(self, family: str, dataset: str, class_name: str, count: int, seed: int,
               temperature: float, checkpoint: str = BUNDLED_CHOICE) -> str:
        """A grid of new pictures, as the path of a PNG. One class: `count`
        pictures. Every class: one row per class, `count` per row, the same
        noise down each column. checkpoint: "bundled" (the demo's model) or
        "run:<name>" (a finished or stopped training run)."""
        model = self.model(family, dataset, checkpoint)
        n = check_int(count, 1, MAX_COUNT, "How many")
        seed = check_int(seed, 0, MAX_SEED, "The seed")
        t = check_number(temperature, 0.0, 2.0, "The temperature")
        if class_name == EVERY_CLASS:
            k = len(model.classes)
            z = latent.seed_noise(seed, n, model.z_dim).repeat(k, 1) * t    # (k n, z_dim)
            y = torch.arange(k).repeat_interleave(n)                         # (k n,): row c is class c
            grid = picture(model.generate(z, y), nrow=n)
        else:
            images = model.sample(n, self.class_index(model, class_name), seed, t)   # (n, 1, 28, 28)
            grid = picture(images, nrow=math.ceil(math.sqrt(n)))
        return self._png(grid)

    @staticmethod
    def random_seed() -> int:
        return random.randint(0, MAX_SEED)

    # ---- interpolate ------------------------------------------------------
    @friendly
    def interpolate(self, mode: str, family: str, dataset: str, seed_a: int, seed_b: int,
                    class_a: str, class_b: str, image_a, image_b, path: str,
                    steps: int, checkpoint: str = BUNDLED_CHOICE) -> tuple[str, str]:
        """Frames from A to B -> paths of (a PNG strip of the frames, a back-and-forth GIF).
        seeds: class_a's pictures from seed_a's noise to seed_b's. classes: seed_a's
        noise, morphing class_a into class_b. images: the VAE's codes of two pictures."""
        mode = check_choice(mode, INTERPOLATIONS, "interpolation")
        path = check_choice(path, PATHS, "path")
        steps = check_int(steps, *STEPS, "Steps")
        if mode == "images":
            vae = self.model("vae", dataset, checkpoint)   # only the VAE can turn a picture into a code
            x = torch.cat([self._prepare(image_a, dataset, "first picture"),
                           self._prepare(image_b, dataset, "second picture")])   # (2, 1, 28, 28)
            za, zb = vae.encode_images(x)                                          # (z_dim,) each
            frames = vae.generate(latent.interpolate(za, zb, steps, path))
        else:
            model = self.model(family, dataset, checkpoint)
            seed_a = check_int(seed_a, 0, MAX_SEED, "Seed A")
            ca = self.class_index(model, class_a)
            za = latent.seed_noise(seed_a, 1, model.z_dim)                          # (1, z_dim)
            if mode == "seeds":
                zb = latent.seed_noise(check_int(seed_b, 0, MAX_SEED, "Seed B"), 1, model.z_dim)
                frames = model.generate(latent.interpolate(za, zb, steps, path), ca)
            else:
                cb = self.class_index(model, class_b)
                weights = latent.class_mix(ca, cb, len(model.classes), steps, path)  # (steps, K)
                frames = morph.generate_mixed(model, za.expand(steps, -1), weights)
        # frames: (steps, 1, 28, 28)
        strip = picture(frames, nrow=min(steps, STRIP_COLUMNS))
        loop = latent.bounce(frames)                                                 # (2 steps - 2, 1, 28, 28)
        gif = media.gif_bytes([big(f) for f in loop], duration_ms=max(40, min(500, GIF_LOOP_MS // len(loop))))
        return self._png(strip), str(self.outputs.write(gif, ".gif"))

    # ---- reconstruct ------------------------------------------------------
    @friendly
    def reconstruct(self, dataset: str, image, checkpoint: str = BUNDLED_CHOICE) -> tuple[str, float, str]:
        """A picture (file path, PIL image or array) -> (a PNG, side by side: the
        VAE's input after preprocessing, its reconstruction and a heat map of
        the difference; the error as a number; a verdict in words)."""
        self.model("vae", dataset, checkpoint)
        return self._reconstruct(dataset, self._prepare(image, dataset, "picture"), checkpoint)

    @friendly
    def reconstruct_sketch(self, dataset: str, sketch: dict | None, checkpoint: str = BUNDLED_CHOICE):
        """The sketchpad's value ({"background", "layers", "composite"}) -> as reconstruct."""
        self.model("vae", dataset, checkpoint)
        empty = "The sketchpad is empty: draw a digit or a piece of clothing first."
        composite = sketch.get("composite") if isinstance(sketch, dict) else None
        if composite is None:
            raise gr.Error(empty)
        try:
            x = prepare(composite, dataset)
        except EmptyImageError:   # a blank sheet
            raise gr.Error(empty) from None
        return self._reconstruct(dataset, x, checkpoint)

    def _png(self, img: Image.Image) -> str:
        # A file we encode quickly ourselves, named by its content, rather than a
        # PIL image gradio would encode at the slower default level.
        return str(self.outputs.write(media.png_bytes(img), ".png"))

    def _prepare(self, image, dataset: str, what: str) -> torch.Tensor:
        """-> (1, 1, 28, 28) in [0, 1], the way the dataset's images were made."""
        if image is None:
            raise gr.Error(f"Please give the {what}: upload one or pick an example.")
        return prepare(image, check_choice(dataset, DATASETS, "dataset"))

    def _reconstruct(self, dataset: str, x: torch.Tensor, checkpoint: str = BUNDLED_CHOICE):
        vae = self.model("vae", dataset, checkpoint)
        r = vae.reconstruct(x)                                   # (1, 1, 28, 28)
        diff = (x - r).abs()[0, 0]                               # (28, 28)
        error = float(diff.mean())
        heat = Image.fromarray(latent.heatmap(diff), mode="RGB").resize((28 * SCALE,) * 2, Image.NEAREST)
        panels = side_by_side([big(x[0]), big(r[0]), heat], ["what the VAE sees", "its reconstruction",
                                                            "difference (bright: wrong)"])
        ref = self._run_model(checkpoint, "vae", dataset)[1] if checkpoint not in (None, "", BUNDLED_CHOICE) \
            else None
        return self._png(panels), round(error, 4), self.verdict(dataset, error, ref)

    def _reference_errors(self, dataset: str, vae: GenerativeModel | None = None) -> np.ndarray:
        """Reconstruction errors of the test examples by vae (default: the demo's VAE)."""
        vae = vae or self.models.get(("vae", dataset))
        if vae is None or not self.examples[dataset]:
            return np.array([])
        x = torch.cat([prepare(e.path, dataset) for e in self.examples[dataset]])   # (N, 1, 28, 28)
        r = vae.reconstruct(x)
        return (x - r).abs().flatten(1).mean(1).numpy()

    def verdict(self, dataset: str, error: float, ref: np.ndarray | None = None) -> str:
        """ref: the same model's errors on the test examples (default: the demo VAE's)."""
        ref = self.reference_errors.get(dataset, np.array([])) if ref is None else ref
        typical = float(np.median(ref)) if len(ref) else FALLBACK_TYPICAL_ERROR
        high = float(np.quantile(ref, 0.9)) if len(ref) else 1.5 * FALLBACK_TYPICAL_ERROR
        what = {"mnist": "digits", "fashion": "clothing pictures"}[dataset]
        where = (f"On real test {what} the error is typically {typical:.3f}." if len(ref)
                 else f"A typical error on real test {what} is about {typical:.2f}.")
        if error <= high:
            return f"Good: the model redraws this about as well as real test {what}. {where}"
        if error <= 2 * high:
            return f"Fair: recognisable, but rougher than real test {what}. {where}"
        return (f"Poor: this is unlike the {what} the model learned from, so it redraws it as the "
                f"nearest thing it knows. {where}")

    # ---- train status -------------------------------------------------------
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
            raise gr.Error(f"No checkpoint called {name!r}; choose one of: {names}.")
        return self.checkpoints_dir / name

    @friendly
    def train_status(self, name: str):
        """-> (loss curves, fraction-type quality curves (accuracies), other
        quality curves (distances), epoch slider, grid of the last epoch, model
        card facts, evaluation metrics, progress bar (HTML) of the run shown,
        runs report (JSON: {"selected": the run named, "training_now": the run
        training now, "runs": all runs})): read afresh on every call, so a run
        in progress shows its latest epoch. Runs are named "run:<name>"."""
        folder = self._folder(name)
        return (*self._checkpoint_outputs(folder), *self._live(name))

    def _checkpoint_outputs(self, folder: Path) -> tuple:
        history = read_jsonl(folder / "history.jsonl")
        losses = LOSSES.get(self._family(folder), {})
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
        frames = [pd.DataFrame(curves[k], columns=["epoch", "value", "series"])
                  for k in ("loss", "fraction", "other")]
        return (*frames, slider, self._grid(folder, epochs), self._facts(folder), self._metrics(folder))

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
        family = family if family in FAMILIES.values() else "gan"
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
                        family=check_choice(family, FAMILIES, "model family"),
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
        return "**Evaluation**\n\n| metric | value |\n| --- | --- |\n" + "\n".join(rows)


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


def plain_errors(component: gr.components.Component, message: str) -> gr.components.Component:
    """Gradio converts each input before any handler runs, and when that fails
    (an upload that is not a picture, "abc" sent to a number) the visitor sees
    only "Error". Wrap this component's conversion so such a failure becomes a
    gr.Error with `message` instead. (A component subclass could do the same,
    but gradio writes a .pyi stub next to the source of every component class.)"""
    preprocess = component.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except gr.Error:   # gradio's own range checks already speak plainly
            raise
        except Exception:
            raise gr.Error(message) from None

    component.preprocess = checked
    return component


def plain_upload_errors(image: gr.Image) -> gr.Image:
    """For gr.Image(type="filepath", image_mode=None): gradio then only reads
    the file's header, and aigc.preprocess does the rest."""
    return plain_errors(image, NOT_AN_IMAGE)
