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
import json
import logging
import math
import os
import random
from pathlib import Path
from typing import Iterable

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw, ImageFont

from . import latent, media, morph
from .card import training_facts
from .data import class_names
from .examples import EXAMPLES_DIR, Example, list_examples
from .hub import BUNDLED
from .io import read_jsonl
from .model import GenerativeModel
from .preprocess import NOT_AN_IMAGE, EmptyImageError, ImageError, prepare

log = logging.getLogger("aigc.demo")

# ---- what the widgets offer: label shown -> value the handlers receive -------
FAMILIES = {"GAN": "gan", "VAE": "vae"}
DATASETS = {"digits": "mnist", "fashion": "fashion"}
INTERPOLATIONS = {"two seeds": "seeds", "two classes": "classes", "two images": "images"}
PATHS = {"spherical": "spherical", "linear": "linear"}      # values are aigc.latent.PATHS keys
EVERY_CLASS = "every class"                                   # a class value meaning one row per class

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
    "vae": {"loss": "total (-ELBO)", "rec": "reconstruction", "kl": "KL"},
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
        except ImageError as e:
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
    train-status tab reads (history.jsonl, samples/, metrics.json)."""

    def __init__(self, models: Iterable[GenerativeModel], *, checkpoints_dir: str | Path,
                 examples_dir: str | Path = EXAMPLES_DIR, output_dir: str | Path | None = None):
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

    # ---- lookups ----------------------------------------------------------
    def model(self, family: str, dataset: str) -> GenerativeModel:
        family = check_choice(family, FAMILIES, "model family")
        dataset = check_choice(dataset, DATASETS, "dataset")
        if (family, dataset) not in self.models:
            raise gr.Error(f"This demo has no {family.upper()} for {dataset} loaded.")
        return self.models[(family, dataset)]

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
               temperature: float) -> str:
        """A grid of new pictures, as the path of a PNG. One class: `count`
        pictures. Every class: one row per class, `count` per row, the same
        noise down each column."""
        model = self.model(family, dataset)
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
                    steps: int) -> tuple[str, str]:
        """Frames from A to B -> paths of (a PNG strip of the frames, a back-and-forth GIF).
        seeds: class_a's pictures from seed_a's noise to seed_b's. classes: seed_a's
        noise, morphing class_a into class_b. images: the VAE's codes of two pictures."""
        mode = check_choice(mode, INTERPOLATIONS, "interpolation")
        path = check_choice(path, PATHS, "path")
        steps = check_int(steps, *STEPS, "Steps")
        if mode == "images":
            vae = self.model("vae", dataset)   # only the VAE can turn a picture into a code
            x = torch.cat([self._prepare(image_a, dataset, "first picture"),
                           self._prepare(image_b, dataset, "second picture")])   # (2, 1, 28, 28)
            za, zb = vae.encode_images(x)                                          # (z_dim,) each
            frames = vae.generate(latent.interpolate(za, zb, steps, path))
        else:
            model = self.model(family, dataset)
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
    def reconstruct(self, dataset: str, image) -> tuple[str, float, str]:
        """A picture (file path, PIL image or array) -> (a PNG, side by side: the
        VAE's input after preprocessing, its reconstruction and a heat map of
        the difference; the error as a number; a verdict in words)."""
        self.model("vae", dataset)
        return self._reconstruct(dataset, self._prepare(image, dataset, "picture"))

    @friendly
    def reconstruct_sketch(self, dataset: str, sketch: dict | None):
        """The sketchpad's value ({"background", "layers", "composite"}) -> as reconstruct."""
        self.model("vae", dataset)
        empty = "The sketchpad is empty: draw a digit or a piece of clothing first."
        composite = sketch.get("composite") if isinstance(sketch, dict) else None
        if composite is None:
            raise gr.Error(empty)
        try:
            x = prepare(composite, dataset)
        except EmptyImageError:   # a blank sheet
            raise gr.Error(empty) from None
        return self._reconstruct(dataset, x)

    def _png(self, img: Image.Image) -> str:
        # A file we encode quickly ourselves, named by its content, rather than a
        # PIL image gradio would encode at the slower default level.
        return str(self.outputs.write(media.png_bytes(img), ".png"))

    def _prepare(self, image, dataset: str, what: str) -> torch.Tensor:
        """-> (1, 1, 28, 28) in [0, 1], the way the dataset's images were made."""
        if image is None:
            raise gr.Error(f"Please give the {what}: upload one or pick an example.")
        return prepare(image, check_choice(dataset, DATASETS, "dataset"))

    def _reconstruct(self, dataset: str, x: torch.Tensor):
        vae = self.model("vae", dataset)
        r = vae.reconstruct(x)                                   # (1, 1, 28, 28)
        diff = (x - r).abs()[0, 0]                               # (28, 28)
        error = float(diff.mean())
        heat = Image.fromarray(latent.heatmap(diff), mode="RGB").resize((28 * SCALE,) * 2, Image.NEAREST)
        panels = side_by_side([big(x[0]), big(r[0]), heat], ["what the VAE sees", "its reconstruction",
                                                            "difference (bright: wrong)"])
        return self._png(panels), round(error, 4), self.verdict(dataset, error)

    def _reference_errors(self, dataset: str) -> np.ndarray:
        if ("vae", dataset) not in self.models or not self.examples[dataset]:
            return np.array([])
        x = torch.cat([prepare(e.path, dataset) for e in self.examples[dataset]])   # (N, 1, 28, 28)
        r = self.models[("vae", dataset)].reconstruct(x)
        return (x - r).abs().flatten(1).mean(1).numpy()

    def verdict(self, dataset: str, error: float) -> str:
        ref = self.reference_errors.get(dataset, np.array([]))
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
        """Folders under checkpoints_dir with a training history or a model."""
        if not self.checkpoints_dir.is_dir():
            return []
        names = [p.name for p in self.checkpoints_dir.iterdir()
                 if p.is_dir() and ((p / "history.jsonl").is_file() or (p / "config.json").is_file())]
        return sorted(names, key=lambda n: (n not in BUNDLED, BUNDLED.index(n) if n in BUNDLED else 0, n))

    def checkpoint_dropdown(self, name: str | None = None) -> gr.Dropdown:
        names = self.checkpoint_names()
        return gr.Dropdown(choices=names, value=name if name in names else (names[0] if names else None))

    def _folder(self, name) -> Path:
        # Only names from the listing: a name from the API never walks out of checkpoints_dir.
        if name not in self.checkpoint_names():
            names = ", ".join(self.checkpoint_names()) or "none yet"
            raise gr.Error(f"No checkpoint called {name!r}; choose one of: {names}.")
        return self.checkpoints_dir / name

    @friendly
    def train_status(self, name: str):
        """-> (loss curves, fraction-type quality curves (accuracies), other
        quality curves (distances), epoch slider, grid of the last epoch, model
        card facts, evaluation metrics): read afresh on every call, so a run in
        progress shows its latest epoch."""
        folder = self._folder(name)
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
