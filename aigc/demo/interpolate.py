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
from .i18n import DEFAULT, Problem, Text, class_label, say
from .lettering import Lettering
from .rows import POOL as ROW_POOL

STRIP_COLUMNS = 12       # frames per row of the interpolation strip
GIF_LOOP_MS = 3000       # one back-and-forth of the animation, spread over its frames


class InterpolateTab:
    """lettering: the language and font of the strip's words (lettering.Lettering)."""

    def __init__(self, catalog: Catalog, lettering: Lettering | None = None):
        self.catalog = catalog
        self.lettering = lettering or Lettering({})

    @friendly
    def interpolate(self, mode: str, family: str, dataset: str, seed_a: int, seed_b: int,
                    class_a: str, class_b: str, image_a, image_b, path: str,
                    steps: int, checkpoint: str = BUNDLED_CHOICE, progress=gr.Progress(), *,
                    lang: str = DEFAULT) -> tuple[str, str]:
        """Frames from A to B -> paths of (a PNG strip of the frames, its two
        ends named, what stays fixed underneath; a back-and-forth GIF).
        seeds: class_a's pictures from seed_a's noise to seed_b's ("seed 1" ...
        "seed 2"). classes: seed_a's noise, morphing class_a into class_b (the
        class names). images: two pictures' codes, by a family that encodes
        (the VAE's encoder; a flow model's ODE run backwards): "picture A" ...
        "picture B". lang: the language of those words (the page's; API: English)."""
        mode = check_choice(mode, INTERPOLATIONS, Text("msg.what.interpolation"))
        path = check_choice(path, PATHS, Text("msg.what.path"))
        steps = check_int(steps, *STEPS, Text("msg.what.frames"))
        model = self.catalog.model(family, dataset, checkpoint)
        sampler = sampler_settings(model)
        words_lang, _ = self.lettering.pick(lang)
        path_words = say(words_lang, f"ui.path.{path}")
        if mode == "images":
            if not REGISTRY[model.family].can_encode:
                raise Problem("msg.error.cannot_encode", family=model.family.upper(), encoders=" / ".join(ENCODERS))
            x = torch.cat([self.catalog.prepare(image_a, dataset, Text("msg.what.first_picture")),
                           self.catalog.prepare(image_b, dataset, Text("msg.what.second_picture"))])   # (2, 1, 28, 28)
            progress(0.2, desc=say(lang, "msg.progress.encoding"))
            za, zb = model.encode_images(x)                                              # (z_dim,) each
            words = (say(words_lang, "msg.strip.picture_a"), say(words_lang, "msg.strip.picture_b"),
                     say(words_lang, "msg.strip.codes", family=say(words_lang, f"ui.family.{model.family}"),
                         path=path_words))
            progress(0.6, desc=say(lang, "msg.progress.frames", n=steps))
            return self._strip_and_gif(model.decode_codes(latent.interpolate(za, zb, steps, path)), steps, words,
                                       words_lang)
        seed_a = check_int(seed_a, 0, MAX_SEED, Text("msg.what.seed_a"))
        ca = self.catalog.class_index(model, class_a)
        name_a = class_label(model.dataset, model.classes[ca], words_lang)
        if mode == "seeds":
            b = check_int(seed_b, 0, MAX_SEED, Text("msg.what.seed_b"))
            words = (say(words_lang, "msg.strip.seed", seed=seed_a), say(words_lang, "msg.strip.seed", seed=b),
                     say(words_lang, "msg.strip.class_fixed", name=name_a, path=path_words))
        else:
            b = self.catalog.class_index(model, class_b)
            words = (name_a, class_label(model.dataset, model.classes[b], words_lang),
                     say(words_lang, "msg.strip.seed_fixed", seed=seed_a, path=path_words))

        def compute():
            progress(0.1, desc=say(lang, "msg.progress.frames", n=steps))
            za = latent.seed_noise(seed_a, 1, model.z_dim)                          # (1, z_dim)
            if mode == "seeds":
                zb = latent.seed_noise(b, 1, model.z_dim)
                frames = ROW_POOL.generate(model, latent.interpolate(za, zb, steps, path),   # (steps, 1, 28, 28)
                                           torch.full((steps,), ca), **sampler)
            else:
                weights = latent.class_mix(ca, b, len(model.classes), steps, path)  # (steps, K)
                frames = morph.generate_mixed(model, za.expand(steps, -1), weights, **sampler)
            return self._strip_and_gif(frames, steps, words, words_lang)

        key = ("interpolate", self.catalog.token(model), mode, seed_a, ca, b, path, steps, words)
        return self.catalog.results.get(key, compute)

    def _strip_and_gif(self, frames: torch.Tensor, steps: int, words: tuple[str, str, str],
                       words_lang: str) -> tuple[str, str]:
        # frames: (steps, 1, 28, 28); words: (the start, the end, what stays fixed), said in words_lang
        strip = labels.labelled_strip(frames, min(steps, STRIP_COLUMNS), *words,
                                      font=self.lettering.font(words, words_lang))
        loop = latent.bounce(frames)                                                 # (2 steps - 2, 1, 28, 28)
        gif = media.gif_bytes([big(f) for f in loop], duration_ms=max(40, min(500, GIF_LOOP_MS // len(loop))))
        return self.catalog.png(strip), self.catalog.gif(gif)
