"""The Interpolate tab: frames from A to B, as a strip and a back-and-forth
animation. Between two seeds (a path through noise), two classes (a blend of
their conditioning) or two pictures (a path between their codes). The strip
names its two ends; the animation is unlabelled (a word that stays put while
the picture changes would say nothing the strip does not)."""
from __future__ import annotations

import gradio as gr
import torch

from .. import labels, latent, media, morph
from ..families import FAMILIES as REGISTRY
from .catalog import Catalog
from .common import (BUNDLED_CHOICE, ENCODERS, INTERPOLATIONS, MAX_SEED, PATHS, STEPS, big, check_choice, check_int,
                     friendly, sampler_settings)

STRIP_COLUMNS = 12       # frames per row of the interpolation strip
GIF_LOOP_MS = 3000       # one back-and-forth of the animation, spread over its frames


class InterpolateTab:
    """label_font: the font the strip's words are written in (aigc.labels.load_font)."""

    def __init__(self, catalog: Catalog, label_font: labels.FontLike = None):
        self.catalog = catalog
        self.label_font = label_font

    @friendly
    def interpolate(self, mode: str, family: str, dataset: str, seed_a: int, seed_b: int,
                    class_a: str, class_b: str, image_a, image_b, path: str,
                    steps: int, checkpoint: str = BUNDLED_CHOICE) -> tuple[str, str]:
        """Frames from A to B -> paths of (a PNG strip of the frames, its two
        ends named, what stays fixed underneath; a back-and-forth GIF).
        seeds: class_a's pictures from seed_a's noise to seed_b's ("seed 1" ...
        "seed 2"). classes: seed_a's noise, morphing class_a into class_b (the
        class names). images: two pictures' codes, by a family that encodes
        (the VAE's encoder; a flow model's ODE run backwards): "picture A" ...
        "picture B"."""
        mode = check_choice(mode, INTERPOLATIONS, "interpolation")
        path = check_choice(path, PATHS, "path")
        steps = check_int(steps, *STEPS, "Steps")
        model = self.catalog.model(family, dataset, checkpoint)
        sampler = sampler_settings(model)
        if mode == "images":
            if not REGISTRY[model.family].can_encode:
                raise gr.Error(f"A {model.family.upper()} cannot turn a picture into its code: pick "
                               f"{' or '.join(ENCODERS)} to morph between two pictures.")
            x = torch.cat([self.catalog.prepare(image_a, dataset, "first picture"),
                           self.catalog.prepare(image_b, dataset, "second picture")])   # (2, 1, 28, 28)
            za, zb = model.encode_images(x)                                              # (z_dim,) each
            words = ("picture A", "picture B", f"{REGISTRY[model.family].label} codes, {path} path")
            return self._strip_and_gif(model.decode_codes(latent.interpolate(za, zb, steps, path)), steps, words)
        seed_a = check_int(seed_a, 0, MAX_SEED, "Seed A")
        ca = self.catalog.class_index(model, class_a)
        if mode == "seeds":
            b = check_int(seed_b, 0, MAX_SEED, "Seed B")
            words = (f"seed {seed_a}", f"seed {b}", f"class {model.classes[ca]}, {path} path")
        else:
            b = self.catalog.class_index(model, class_b)
            words = (model.classes[ca], model.classes[b], f"seed {seed_a}, {path} path")

        def compute():
            za = latent.seed_noise(seed_a, 1, model.z_dim)                          # (1, z_dim)
            if mode == "seeds":
                zb = latent.seed_noise(b, 1, model.z_dim)
                frames = model.generate(latent.interpolate(za, zb, steps, path), ca, **sampler)
            else:
                weights = latent.class_mix(ca, b, len(model.classes), steps, path)  # (steps, K)
                frames = morph.generate_mixed(model, za.expand(steps, -1), weights, **sampler)
            return self._strip_and_gif(frames, steps, words)

        key = ("interpolate", self.catalog.token(model), mode, seed_a, ca, b, path, steps)
        return self.catalog.results.get(key, compute)

    def _strip_and_gif(self, frames: torch.Tensor, steps: int, words: tuple[str, str, str]) -> tuple[str, str]:
        # frames: (steps, 1, 28, 28); words: (the start, the end, what stays fixed)
        strip = labels.labelled_strip(frames, min(steps, STRIP_COLUMNS), *words, font=self.label_font)
        loop = latent.bounce(frames)                                                 # (2 steps - 2, 1, 28, 28)
        gif = media.gif_bytes([big(f) for f in loop], duration_ms=max(40, min(500, GIF_LOOP_MS // len(loop))))
        return self.catalog.png(strip), self.catalog.gif(gif)
