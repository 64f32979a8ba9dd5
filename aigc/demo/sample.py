"""The Sample tab: a grid of new pictures, each class named in it; for a
flow model also the path each picture takes from noise, as a strip and an
animation."""
from __future__ import annotations

import random
import threading

import gradio as gr
import torch

from .. import labels, latent, media
from ..families import FAMILIES as REGISTRY
from ..guard import short
from .catalog import Catalog
from .common import (BUNDLED_CHOICE, DOWNLOAD_FORMATS, EVERY_CLASS, MAX_COUNT, MAX_SEED, RUN_PREFIX, check_choice,
                     check_int, check_number, friendly, picture, sampler_settings)
from .i18n import DEFAULT, Problem, Text, say
from .lettering import Lettering
from .rows import POOL as ROW_POOL

PATH_SAMPLES = 8         # pictures whose path from noise is shown
PATH_FRAME_MS = 180      # per step of the path animation; the finished picture is held longer
NEIGHBOUR_SAMPLES = 16   # pictures of a grid whose nearest training images are shown
NEIGHBOURS_K = 3         # nearest training images shown per picture
NEIGHBOUR_SPACES = {"pixels": "pixels", "the classifier's features": "features"}
DOWNLOADS_KEPT = 16      # download files kept on disk (each at most ~1 MB)
CHUNK = 100              # pictures beyond which a grid reports its progress (between its classes' blocks)


class SampleTab:
    """lettering: the language and font of the words drawn into pictures
    (lettering.Lettering; None: English in Pillow's font). data_dir: where the
    training images are (aigc.data's rule), for "Show the closest training images"."""

    def __init__(self, catalog: Catalog, lettering: Lettering | None = None, data_dir: str | None = None):
        self.catalog = catalog
        self.lettering = lettering or Lettering({})
        self.data_dir = data_dir
        self._indexes: dict = {}   # dataset -> aigc.neighbours.NeighbourIndex, built on first use
        self._index_lock = threading.Lock()

    @friendly
    def sample(self, family: str, dataset: str, class_name: str, count: int, seed: int,
               temperature: float, checkpoint: str = BUNDLED_CHOICE, steps: int | None = None,
               guidance: float | None = None, progress=gr.Progress(), *, lang: str = DEFAULT) -> str:
        """A grid of new pictures, as the path of a PNG, the class written in
        it. One class: `count` pictures, the class name underneath. Every
        class: a block of `count` per class, its name at the left, one row per
        class up to aigc.labels.MAX_COLUMNS, wrapping beyond; picture j of
        every class from the same noise, in the same place of its block. checkpoint: "bundled" (the demo's model) or
        "run:<name>" (a finished or stopped training run). steps, guidance: a
        flow model's solver steps and classifier-free guidance (None: its
        defaults; other families ignore them). lang: the language of the
        class names written in it (the page's; API callers: English)."""
        model, n, seed, t, sampler = self._checked(family, dataset, class_name, count, seed, temperature,
                                                   checkpoint, steps, guidance)
        names, font = self.lettering.classes(model, lang)
        key = ("sample", self.catalog.token(model), class_name, n, seed, t, tuple(sorted(sampler.items())), names)
        return self.catalog.results.get(key, lambda: self._sample(model, class_name, n, seed, t, sampler, names, font,
                                                                  progress, lang))

    def _sample(self, model, class_name: str, n: int, seed: int, t: float, sampler: dict, names, font,
                progress, lang) -> str:
        images, y = self._images(model, class_name, n, seed, t, sampler, progress, lang)
        return self.catalog.png(labels.labelled_grid(images, y, names, font=font))

    def _images(self, model, class_name: str, n: int, seed: int, t: float, sampler: dict, progress=None,
                lang: str = DEFAULT):
        """The grid's pictures and classes -> (images (N, 1, 28, 28), labels (N,)).
        Drawn in blocks of rows (aigc.demo.rows), each class's as a one-class
        grid would draw it; a large grid (or any a flow model draws in many
        steps) reports its progress to `progress` as blocks finish."""
        k = len(model.classes) if class_name == EVERY_CLASS else 1
        steps = sampler.get("steps")
        words = say(lang, "msg.progress.drawing_flow" if steps else "msg.progress.drawing", n=k * n, steps=steps)
        report = progress is not None and (steps is not None or k * n > CHUNK)
        classes = list(range(k)) if class_name == EVERY_CLASS else [self.catalog.class_index(model, class_name)]
        z = latent.seed_noise(seed, n, model.z_dim) * t      # (n, z_dim): as model.sample draws it, the same for every class
        y = torch.tensor(classes).repeat_interleave(n)                      # (k n,)
        if report:
            progress(0.0, desc=words)
        # each class's rows cut into blocks as a one-class grid cuts them (group=n), so picture i of
        # class c is the same in both grids; the blocks run side by side on a quiet server
        images = ROW_POOL.generate(model, z.repeat(k, 1), y, (lambda done: progress(done, desc=words))
                                   if report else None, group=n, **sampler)
        return images, y                                                     # (k n, 1, 28, 28), (k n,)

    def _checked(self, family, dataset, class_name, count, seed, temperature, checkpoint, steps, guidance,
                 most: int = MAX_COUNT, count_what: str = "msg.what.count"):
        """The settings of a grid, checked -> (model, count, seed, temperature,
        sampler settings); a class name must be the model's (or every class)."""
        model = self.catalog.model(family, dataset, checkpoint)
        n = check_int(count, 1, most, Text(count_what))
        seed = check_int(seed, 0, MAX_SEED, Text("msg.what.seed"))
        t = check_number(temperature, 0.0, 2.0, Text("msg.what.temperature"))
        sampler = sampler_settings(model, steps, guidance)
        if class_name != EVERY_CLASS:
            self.catalog.class_index(model, class_name)
        return model, n, seed, t, sampler

    # ---- is it copying? --------------------------------------------------------
    @friendly
    def closest(self, family: str, dataset: str, class_name: str, count: int, seed: int, temperature: float,
                checkpoint: str = BUNDLED_CHOICE, steps: int | None = None, guidance: float | None = None,
                space: str = "pixels", progress=gr.Progress(), *, lang: str = DEFAULT) -> tuple[str, str]:
        """The grid these settings draw (as `sample`) -> (a PNG: for each of its
        first NEIGHBOUR_SAMPLES pictures, every class's first ones first, the
        NEIGHBOURS_K nearest of the 60,000 training images with their
        distances; a Markdown summary). space: "pixels" or "features" (the
        evaluation classifier's), named in both outputs."""
        model, n, seed, t, sampler = self._checked(family, dataset, class_name, count, seed, temperature,
                                                   checkpoint, steps, guidance)
        space = check_choice(space, NEIGHBOUR_SPACES, Text("msg.what.space"))
        names, _ = self.lettering.classes(model, lang)
        words_lang, font = self.lettering.pick(lang)
        key = ("closest", self.catalog.token(model), class_name, n, seed, t, space, tuple(sorted(sampler.items())),
               names, lang)

        def compute():
            index = self.neighbour_index(model.dataset, progress, lang)
            progress(0.8, desc=say(lang, "msg.progress.searching"))
            images, y = self._images(model, class_name, n, seed, t, sampler)
            if class_name == EVERY_CLASS:   # picture 0 of every class, then picture 1, ...: all classes shown
                order = torch.arange(len(y)).view(len(model.classes), n).t().flatten()
                images = images[order]
            images = images[:NEIGHBOUR_SAMPLES]
            found = index.search(images, k=NEIGHBOURS_K, space=space)
            q = len(images)
            near = index.train.floats(found.indices.flatten()).view(q, NEIGHBOURS_K, 1, 28, 28)
            near_names = [[names[c] for c in row] for row in found.labels.tolist()]
            title = say(words_lang, "msg.closest.title", n=len(index), space=Text(f"msg.space.{space}"))
            panel = labels.neighbour_panel(images, near, found.distances, near_names, title,
                                           generated=say(words_lang, "msg.closest.generated"), font=font)
            return self.catalog.png(panel), self._verdict(model, found, space, q, lang)

        return self.catalog.results.get(key, compute)

    def neighbour_index(self, dataset: str, progress=None, lang: str = DEFAULT):
        """The training set of `dataset` ready to search (aigc.neighbours), built
        on first use: the images from the data folder, the evaluation
        classifier's features of all 60,000 cached on disk."""
        with self._index_lock:
            if dataset not in self._indexes:
                from .. import load_folder
                from ..data import load_dataset
                from ..hub import BUNDLED_DIR
                from ..neighbours import NeighbourIndex, default_cache_dir

                if progress is not None:
                    progress(0.1, desc=say(lang, "msg.progress.loading_images"))
                try:
                    train = load_dataset(dataset, train=True, data_dir=self.data_dir)
                except (RuntimeError, OSError, ValueError) as e:
                    raise Problem("msg.error.no_training_images", dataset=dataset, why=short(str(e), 120)) from None
                classifier = load_folder(BUNDLED_DIR / f"classifier-{dataset}", device="cpu")
                if progress is not None:
                    progress(0.3, desc=say(lang, "msg.progress.features"))
                self._indexes[dataset] = NeighbourIndex(train, classifier, cache_dir=default_cache_dir())
            return self._indexes[dataset]

    @staticmethod
    def _verdict(model, found, space: str, q: int, lang: str = DEFAULT) -> str:
        from ..neighbours import COPY_RATIO
        from .compare import read_metrics

        d1 = found.distances[:, 0]
        copies = int((found.ratio < COPY_RATIO).sum())
        ref = read_metrics(model).get("nn_distance_real" if space == "pixels" else "nn_distance_features_real")
        words = say(lang, "msg.closest.median", q=q, space=Text(f"msg.space.{space}"), d=d1.median().item())
        words += (say(lang, "msg.closest.reference", ref=ref) if ref is not None else say(lang, "msg.closest.end"))
        words += (say(lang, "msg.closest.copies", copies=copies, q=q) if copies else
                  say(lang, "msg.closest.no_copies"))
        return words

    # ---- a synthetic dataset to take away -----------------------------------
    @friendly
    def download(self, family: str, dataset: str, class_name: str, count: int, seed: int, temperature: float,
                 checkpoint: str = BUNDLED_CHOICE, steps: int | None = None, guidance: float | None = None,
                 fmt: str = "zip", progress=gr.Progress(), *, lang: str = DEFAULT) -> str:
        """count (1 to 1,000) generated pictures with their labels as one file
        (aigc.export.download_file): a ZIP of PNGs with metadata.csv and
        manifest.json, or a Parquet file; of one class, or balanced over the
        classes with "every class"."""
        from ..export import MAX_DOWNLOAD, download_file

        model, n, seed, t, sampler = self._checked(family, dataset, class_name, count, seed, temperature,
                                                   checkpoint, steps, guidance, MAX_DOWNLOAD, "msg.what.download_count")
        fmt = check_choice(fmt, DOWNLOAD_FORMATS, Text("msg.what.format"))
        label = None if class_name == EVERY_CLASS else self.catalog.class_index(model, class_name)
        key = ("download", self.catalog.token(model), class_name, n, seed, t, fmt, tuple(sorted(sampler.items())))

        def compute():
            progress(0.05, desc=say(lang, "msg.progress.drawing", n=n))
            folder = self.catalog.outputs.root / "downloads"
            folder.mkdir(exist_ok=True)
            name = checkpoint[len(RUN_PREFIX):] if str(checkpoint).startswith(RUN_PREFIX) else ""
            path = download_file(model, n, folder, seed=seed, labels=label, temperature=t, fmt=fmt,
                                 checkpoint=name, **sampler)
            for old in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)[:-DOWNLOADS_KEPT]:
                old.unlink(missing_ok=True)   # bounded disk: a few recent files
            return str(path)

        return self.catalog.results.get(key, compute)   # a pruned file is a miss: made again

    @friendly
    def sample_path(self, family: str, dataset: str, class_name: str, seed: int, temperature: float,
                    checkpoint: str = BUNDLED_CHOICE, steps: int | None = None,
                    guidance: float | None = None, progress=gr.Progress(), *, lang: str = DEFAULT) -> tuple[str, str]:
        """How a flow model turns noise into pictures -> paths of (a PNG strip:
        one row per picture, one column per solver step, noise on the left,
        each row's class at its left (one class: its name underneath); a GIF
        of the same, unlabelled). The first PATH_SAMPLES pictures of the seed's grid."""
        model = self.catalog.model(family, dataset, checkpoint)
        if not REGISTRY[model.family].takes_guidance:
            raise Problem("msg.error.one_pass", family=model.family.upper())
        seed = check_int(seed, 0, MAX_SEED, Text("msg.what.seed"))
        t = check_number(temperature, 0.0, 2.0, Text("msg.what.temperature"))
        sampler = sampler_settings(model, steps, guidance)
        k = len(model.classes)
        if class_name == EVERY_CLASS:   # the first picture of every class, from the same noise
            n = min(PATH_SAMPLES, k)
            z = latent.seed_noise(seed, 1, model.z_dim).repeat(n, 1) * t
            y = torch.arange(n)
        else:
            n = PATH_SAMPLES
            z = latent.seed_noise(seed, n, model.z_dim) * t
            y = torch.full((n,), self.catalog.class_index(model, class_name))
        names, font = self.lettering.classes(model, lang)
        key = ("path", self.catalog.token(model), class_name, seed, t, tuple(sorted(sampler.items())), names)

        def compute():
            progress(0.1, desc=say(lang, "msg.progress.path", steps=sampler["steps"]))
            _, path = model.generate(z, y, return_path=True, **sampler)     # (steps + 1, n, 1, 28, 28)
            s = path.shape[0]
            strip = labels.labelled_grid(path.transpose(0, 1).reshape(-1, 1, 28, 28), y.repeat_interleave(s),
                                         names, columns=s, font=font)
            frames = [picture(p, nrow=n) for p in path]   # unlabelled: the strip beside it names the classes
            durations = [PATH_FRAME_MS] * (s - 1) + [PATH_FRAME_MS * 8]
            return self.catalog.png(strip), self.catalog.gif(media.gif_bytes(frames, duration_ms=durations))

        return self.catalog.results.get(key, compute)

    @staticmethod
    def random_seed() -> int:
        return random.randint(0, MAX_SEED)
