"""The demo's model catalogue: the models loaded at start (one per family and
dataset), the checkpoints of training runs (loaded on first use, a few kept),
the example pictures, and where results are written and cached."""
from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import gradio as gr
import torch
from PIL import Image

from .. import load_folder, media
from ..data import class_names
from ..examples import EXAMPLES_DIR, Example, list_examples
from ..guard import ResultCache, short
from ..model import GenerativeModel
from ..preprocess import prepare
from ..runs import RunManager
from .common import BUNDLED_CHOICE, DATASETS, EVERY_CLASS, FAMILIES, RUN_PREFIX, check_choice
from .i18n import DEFAULT, Problem, Text, class_key, say, ui

RUN_MODELS_KEPT = 8          # models of runs kept loaded (the pickers' cache)
_model_tokens = itertools.count(1)


class Catalog:
    """models: at most one per (family, dataset), of the families the demo
    serves (aigc.families). runs: the training runs (None: the demo lists
    none); their checkpoints join the model pickers. results: the cache of
    deterministic results (aigc.guard.ResultCache)."""

    def __init__(self, models: Iterable[GenerativeModel], *, examples_dir: str | Path = EXAMPLES_DIR,
                 output_dir: str | Path | None = None, runs: RunManager | None = None,
                 results: ResultCache | None = None):
        self.models: dict[tuple[str, str], GenerativeModel] = {}
        for m in models:
            key = (m.family, m.dataset)
            if key[0] not in FAMILIES.values() or key[1] not in DATASETS.values():
                raise ValueError(f"the demo serves {', '.join(FAMILIES)} models on {list(DATASETS.values())}, "
                                 f"not a {m.family} on {m.dataset!r}")
            if key in self.models:
                raise ValueError(f"two models for {key}")
            self.models[key] = m
        if not self.models:
            raise ValueError("the demo needs at least one model")
        self.examples: dict[str, list[Example]] = {d: list_examples(d, examples_dir) for d in DATASETS.values()}
        self.outputs = media.OutputFolder(output_dir)
        # Same inputs, same pictures: results by their checked arguments (None: a cache of 128).
        # The output folder keeps more files than the cache has entries.
        self.results = results if results is not None else ResultCache()
        self.outputs.keep = max(self.outputs.keep, 2 * self.results.entries + 64)
        self.runs = runs
        # Runs' models, keyed by (run name, weights file's mtime): a resumed run's new epoch is a new key.
        self._run_models: OrderedDict[tuple[str, int], GenerativeModel] = OrderedDict()
        self._run_models_lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        return next(iter(self.models.values())).device

    def families(self) -> dict[str, str]:
        """The families with a loaded model, as the pickers offer them (label -> value)."""
        loaded = {f for f, _ in self.models}
        return {label: f for label, f in FAMILIES.items() if f in loaded}

    # ---- lookups ----------------------------------------------------------
    def model(self, family: str, dataset: str, checkpoint: str | None = BUNDLED_CHOICE) -> GenerativeModel:
        """The demo's model for (family, dataset), or with checkpoint
        "run:<name>" the model of that finished or stopped run."""
        family = check_choice(family, FAMILIES, Text("msg.what.family"))
        dataset = check_choice(dataset, DATASETS, Text("msg.what.dataset"))
        if checkpoint not in (None, "", BUNDLED_CHOICE):
            return self.run_model(checkpoint, family, dataset)
        if (family, dataset) not in self.models:
            raise Problem("msg.error.no_model", family=family.upper(), dataset=dataset)
        return self.models[(family, dataset)]

    def checkpoint_choices(self, family: str, dataset: str, lang: str = DEFAULT) -> list[tuple]:
        """What a model picker offers for (family, dataset): the demo's model,
        then the finished and stopped runs of that family and dataset."""
        choices = [(ui("ui.checkpoint.bundled"), BUNDLED_CHOICE)]
        if self.runs is not None:
            choices += [(say(lang, "msg.checkpoint.run", name=s.name, n=s.epochs_done, s="s" * (s.epochs_done != 1)),
                         RUN_PREFIX + s.name) for s in self.runs.checkpoints(family, dataset)]
        return choices

    def checkpoint_picker(self, family: str, dataset: str, current: str | None = None, *,
                          lang: str = DEFAULT) -> gr.Dropdown:
        choices = self.checkpoint_choices(family, dataset, lang)
        values = [v for _, v in choices]
        return gr.Dropdown(choices=choices, value=current if current in values else BUNDLED_CHOICE)

    def run_model(self, checkpoint, family: str, dataset: str) -> GenerativeModel:
        """The model of run checkpoint ("run:<name>"), loaded once."""
        name = checkpoint[len(RUN_PREFIX):] if isinstance(checkpoint, str) and checkpoint.startswith(RUN_PREFIX) \
            else None
        if self.runs is None or name is None or not self.runs.exists(name):
            names = [v for _, v in self.checkpoint_choices(family, dataset)]
            raise Problem("msg.error.no_checkpoint", checkpoint=short(checkpoint), family=family.upper(),
                          dataset=dataset, names=", ".join(names))
        st = self.runs.status(name)
        if (st.family, st.dataset) != (family, dataset):
            raise Problem("msg.error.run_mismatch", name=name, run_family=st.family.upper(), run_dataset=st.dataset,
                          family=family.upper(), dataset=dataset)
        weights = self.runs.folder(name) / "model.safetensors"
        if st.live or not weights.is_file():
            raise Problem("msg.error.run_not_ready", name=name, state=Text(f"msg.state.{st.state}"))
        key = (name, weights.stat().st_mtime_ns)
        with self._run_models_lock:
            if key not in self._run_models:
                model = load_folder(self.runs.folder(name), device=self.device)
                model.source = f"run:{self.runs.folder(name)}"
                self._run_models[key] = model
                while len(self._run_models) > RUN_MODELS_KEPT:
                    self._run_models.popitem(last=False)
            self._run_models.move_to_end(key)
            return self._run_models[key]

    @staticmethod
    def class_index(model: GenerativeModel, name) -> int:
        if name in model.classes:
            return model.classes.index(name)
        raise Problem("msg.error.not_a_class", name=short(name), dataset=model.dataset,
                      classes=", ".join(model.classes))

    @staticmethod
    def class_choices(dataset: str, every: bool = False) -> list[tuple]:
        """The class pickers' choices: values the class names the models know
        (English), labels in the page's language ("every class" first with every)."""
        names = ([EVERY_CLASS] if every else []) + class_names(dataset)
        return [(n if class_key(dataset, n) is None else ui(class_key(dataset, n)), n) for n in names]

    def class_picker(self, dataset: str, current: str | None = None, every: bool = False,
                     default: int = 0) -> gr.Dropdown:
        """The class picker for `dataset`: `current` stays picked while the
        dataset has it (a link sets dataset and class at once); else every
        class (every) or the dataset's class number `default`."""
        choices = self.class_choices(check_choice(dataset, DATASETS, Text("msg.what.dataset")), every)
        values = [v for _, v in choices]
        fallback = EVERY_CLASS if every else values[default]
        return gr.Dropdown(choices=choices, value=current if current in values else fallback)

    def model_sources(self, lang: str = DEFAULT) -> str:
        """Markdown: in plain words, which models are loaded and where from
        (the Hugging Face Hub, bundled with the demo, a folder), then each
        model's path and any fallback note in a collapsed detail."""
        origins: dict[tuple[str, str], list[str]] = {}
        paths = []
        order = list(FAMILIES.values())
        for (family, dataset), m in sorted(self.models.items(), key=lambda kv: (kv[0][1] != "mnist",
                                                                                order.index(kv[0][0]))):
            source = m.source or ""
            kind, _, where = source.partition(":")   # aigc.load's "hub:ORG/NAME@sha", "bundled:...", "local:..."
            if kind not in ("hub", "bundled", "local", "run"):   # a test's model, one made in memory: named as it is
                kind, where = "other", kind or "memory"
            repo = where.split("@")[0] if kind in ("hub", "other") else ""
            name = say(lang, "msg.sources.model", family=say(lang, f"ui.family.{family}"),
                       dataset=say(lang, f"ui.dataset.{dataset}"))
            origins.setdefault((kind, repo), []).append(name)
            note = getattr(m, "source_note", "") or ""   # aigc.load says why it fell back from the Hub
            paths.append(f"- {name}: `{source or 'in memory'}`" + (f" ({note})" if note else ""))
        parts = [say(lang, f"msg.sources.{kind}", models=", ".join(names), repo=repo)
                 for (kind, repo), names in origins.items()]
        return (say(lang, "msg.sources.loaded", parts="; ".join(parts)) +
                f"\n\n<details><summary>{say(lang, 'msg.sources.paths')}</summary>\n\n" + "\n".join(paths) +
                "\n\n</details>")

    def example_paths(self, dataset: str, n: int | None = None) -> list[str]:
        return [str(e.path) for e in self.examples[dataset][:n]]

    # ---- results ----------------------------------------------------------
    def png(self, img: Image.Image) -> str:
        # A file we encode quickly ourselves, named by its content, rather than a
        # PIL image gradio would encode at the slower default level.
        return str(self.outputs.write(media.png_bytes(img), ".png"))

    def gif(self, data: bytes) -> str:
        return str(self.outputs.write(data, ".gif"))

    @staticmethod
    def token(model: GenerativeModel) -> int:
        """A number naming this model object for the result cache (a run's
        newer weights are a new object; an id() could be reused)."""
        if not hasattr(model, "_aigc_token"):
            model._aigc_token = next(_model_tokens)
        return model._aigc_token

    @staticmethod
    def prepare(image, dataset: str, what) -> torch.Tensor:
        """An upload -> (1, 1, 28, 28) in [0, 1], the way the dataset's images were made."""
        if image is None:
            raise Problem("msg.error.no_picture", what=what)
        return prepare(image, check_choice(dataset, DATASETS, Text("msg.what.dataset")))
