"""The Studio: the model catalogue, one handler object per tab and the
links between them, built together from the loaded models. app.py wires the
handlers; tests and the benchmark reach them through the Studio by name
(studio.sample is studio.sample_tab.sample, studio.open_link studio.links.open_link)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..examples import EXAMPLES_DIR
from ..guard import ResultCache
from ..model import GenerativeModel
from ..runs import RunManager
from .catalog import Catalog
from .compare import CompareTab
from .interpolate import InterpolateTab
from .lettering import Lettering
from .links import Links
from .reconstruct import ReconstructTab
from .sample import SampleTab
from .train_status import TrainStatusTab


class Studio:
    """models: at most one per (family, dataset); checkpoints_dir: the
    training folders the train-status tab reads; runs: the training runs
    (None: the demo lists none), their checkpoints join the model pickers;
    allow_training: whether visitors may start, stop and resume runs;
    results: the cache of deterministic results (aigc.guard.ResultCache);
    data_dir: the training images (aigc.data's rule), searched by "Show the
    closest training images"; label_fonts: {language: font} for the words
    drawn into pictures (lettering.Lettering; None: a Chinese font found on
    this machine, if any)."""

    def __init__(self, models: Iterable[GenerativeModel], *, checkpoints_dir: str | Path,
                 examples_dir: str | Path = EXAMPLES_DIR, output_dir: str | Path | None = None,
                 runs: RunManager | None = None, allow_training: bool = False,
                 results: ResultCache | None = None, data_dir: str | None = None, label_fonts: dict | None = None):
        self.catalog = Catalog(models, examples_dir=examples_dir, output_dir=output_dir, runs=runs, results=results)
        self.lettering = Lettering(label_fonts)
        self.sample_tab = SampleTab(self.catalog, self.lettering, data_dir=data_dir)
        self.interpolate_tab = InterpolateTab(self.catalog, self.lettering)
        self.reconstruct_tab = ReconstructTab(self.catalog, self.lettering)
        self.train_tab = TrainStatusTab(self.catalog, checkpoints_dir, allow_training)
        self.compare_tab = CompareTab(self.catalog, self.sample_tab)
        self.links = Links(self.catalog, self.sample_tab, self.interpolate_tab, self.compare_tab)
        self._parts = (self.catalog, self.sample_tab, self.interpolate_tab, self.reconstruct_tab, self.train_tab,
                       self.compare_tab, self.links)

    def __getattr__(self, name: str):
        # Only called for names not found on the Studio itself: the handler or
        # attribute of the one part that has it (names do not repeat across parts).
        if name.startswith("_"):
            raise AttributeError(name)
        for part in self.__dict__.get("_parts", ()):
            if hasattr(part, name):
                return getattr(part, name)
        raise AttributeError(f"{type(self).__name__} has no {name!r}")
