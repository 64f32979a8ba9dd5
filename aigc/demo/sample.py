"""The Sample tab: a grid of new pictures; for a flow model also the path
each picture takes from noise, as a strip and an animation."""
from __future__ import annotations

import math
import random

import gradio as gr
import torch

from .. import latent, media
from ..families import FAMILIES as REGISTRY
from .catalog import Catalog
from .common import (BUNDLED_CHOICE, EVERY_CLASS, MAX_COUNT, MAX_SEED, check_int, check_number, friendly, picture,
                     sampler_settings)

PATH_SAMPLES = 8         # pictures whose path from noise is shown
PATH_FRAME_MS = 180      # per step of the path animation; the finished picture is held longer


class SampleTab:
    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    @friendly
    def sample(self, family: str, dataset: str, class_name: str, count: int, seed: int,
               temperature: float, checkpoint: str = BUNDLED_CHOICE, steps: int | None = None,
               guidance: float | None = None) -> str:
        """A grid of new pictures, as the path of a PNG. One class: `count`
        pictures. Every class: one row per class, `count` per row, the same
        noise down each column. checkpoint: "bundled" (the demo's model) or
        "run:<name>" (a finished or stopped training run). steps, guidance: a
        flow model's solver steps and classifier-free guidance (None: its
        defaults; other families ignore them)."""
        model = self.catalog.model(family, dataset, checkpoint)
        n = check_int(count, 1, MAX_COUNT, "How many")
        seed = check_int(seed, 0, MAX_SEED, "The seed")
        t = check_number(temperature, 0.0, 2.0, "The temperature")
        sampler = sampler_settings(model, steps, guidance)
        if class_name != EVERY_CLASS:
            self.catalog.class_index(model, class_name)
        key = ("sample", self.catalog.token(model), class_name, n, seed, t, tuple(sorted(sampler.items())))
        return self.catalog.results.get(key, lambda: self._sample(model, class_name, n, seed, t, sampler))

    def _sample(self, model, class_name: str, n: int, seed: int, t: float, sampler: dict) -> str:
        if class_name == EVERY_CLASS:
            k = len(model.classes)
            z = latent.seed_noise(seed, n, model.z_dim).repeat(k, 1) * t    # (k n, z_dim)
            y = torch.arange(k).repeat_interleave(n)                         # (k n,): row c is class c
            grid = picture(model.generate(z, y, **sampler), nrow=n)
        else:
            images = model.sample(n, self.catalog.class_index(model, class_name), seed, t, **sampler)
            grid = picture(images, nrow=math.ceil(math.sqrt(n)))            # images: (n, 1, 28, 28)
        return self.catalog.png(grid)

    @friendly
    def sample_path(self, family: str, dataset: str, class_name: str, seed: int, temperature: float,
                    checkpoint: str = BUNDLED_CHOICE, steps: int | None = None,
                    guidance: float | None = None) -> tuple[str, str]:
        """How a flow model turns noise into pictures -> paths of (a PNG strip:
        one row per picture, one column per solver step, noise on the left;
        a GIF of the same). The first PATH_SAMPLES pictures of the seed's grid."""
        model = self.catalog.model(family, dataset, checkpoint)
        if not REGISTRY[model.family].takes_guidance:
            raise gr.Error(f"Only a flow model draws its pictures in steps; a {model.family.upper()} makes them "
                           f"in one pass. Pick Flow to see the path.")
        seed = check_int(seed, 0, MAX_SEED, "The seed")
        t = check_number(temperature, 0.0, 2.0, "The temperature")
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
        key = ("path", self.catalog.token(model), class_name, seed, t, tuple(sorted(sampler.items())))

        def compute():
            _, path = model.generate(z, y, return_path=True, **sampler)     # (steps + 1, n, 1, 28, 28)
            s = path.shape[0]
            strip = picture(path.transpose(0, 1).reshape(-1, 1, 28, 28), nrow=s)   # row i: picture i's path
            frames = [picture(p, nrow=n) for p in path]
            durations = [PATH_FRAME_MS] * (s - 1) + [PATH_FRAME_MS * 8]
            return self.catalog.png(strip), self.catalog.gif(media.gif_bytes(frames, duration_ms=durations))

        return self.catalog.results.get(key, compute)

    @staticmethod
    def random_seed() -> int:
        return random.randint(0, MAX_SEED)
