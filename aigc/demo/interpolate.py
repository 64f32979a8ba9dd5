"""The Interpolate tab: frames from A to B, as a strip and a back-and-forth
animation. Between two seeds (a path through noise), two classes (a blend of
their conditioning) or two pictures (a path between their codes)."""
from __future__ import annotations

import gradio as gr
import torch

from .. import latent, media, morph
from ..families import FAMILIES as REGISTRY
from .catalog import Catalog
from .common import (BUNDLED_CHOICE, ENCODERS, INTERPOLATIONS, MAX_SEED, PATHS, STEPS, big, check_choice, check_int,
                     friendly, picture, sampler_settings)

STRIP_COLUMNS = 12       # frames per row of the interpolation strip
GIF_LOOP_MS = 3000       # one back-and-forth of the animation, spread over its frames


class InterpolateTab:
    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    @friendly
    def interpolate(self, mode: str, family: str, dataset: str, seed_a: int, seed_b: int,
                    class_a: str, class_b: str, image_a, image_b, path: str,
                    steps: int, checkpoint: str = BUNDLED_CHOICE) -> tuple[str, str]:
        """Frames from A to B -> paths of (a PNG strip of the frames, a back-and-forth GIF).
        seeds: class_a's pictures from seed_a's noise to seed_b's. classes: seed_a's
        noise, morphing class_a into class_b. images: two pictures' codes, by a
        family that encodes (the VAE's encoder; a flow model's ODE run backwards)."""
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
            return self._strip_and_gif(model.decode_codes(latent.interpolate(za, zb, steps, path)), steps)
        seed_a = check_int(seed_a, 0, MAX_SEED, "Seed A")
        ca = self.catalog.class_index(model, class_a)
        if mode == "seeds":
            b = check_int(seed_b, 0, MAX_SEED, "Seed B")
        else:
            b = self.catalog.class_index(model, class_b)

        def compute():
            za = latent.seed_noise(seed_a, 1, model.z_dim)                          # (1, z_dim)
            if mode == "seeds":
                zb = latent.seed_noise(b, 1, model.z_dim)
                frames = model.generate(latent.interpolate(za, zb, steps, path), ca, **sampler)
            else:
                weights = latent.class_mix(ca, b, len(model.classes), steps, path)  # (steps, K)
                frames = morph.generate_mixed(model, za.expand(steps, -1), weights, **sampler)
            return self._strip_and_gif(frames, steps)

        key = ("interpolate", self.catalog.token(model), mode, seed_a, ca, b, path, steps)
        return self.catalog.results.get(key, compute)

    def _strip_and_gif(self, frames: torch.Tensor, steps: int) -> tuple[str, str]:
        # frames: (steps, 1, 28, 28)
        strip = picture(frames, nrow=min(steps, STRIP_COLUMNS))
        loop = latent.bounce(frames)                                                 # (2 steps - 2, 1, 28, 28)
        gif = media.gif_bytes([big(f) for f in loop], duration_ms=max(40, min(500, GIF_LOOP_MS // len(loop))))
        return self.catalog.png(strip), self.catalog.gif(gif)
