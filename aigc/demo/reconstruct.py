"""The Reconstruct tab: a picture -> its code -> the picture again, by a VAE
(through its few numbers) or a flow model (through its noise, by running the
ODE backwards and forwards); and, with a flow model, "clean up my drawing"
(SDEdit: noise the drawing part way, then follow the flow under a class)."""
from __future__ import annotations

import threading

import gradio as gr
import numpy as np
import torch
from PIL import Image

from .. import latent
from ..families import FAMILIES as REGISTRY
from ..model import GenerativeModel
from ..preprocess import EmptyImageError, prepare
from .catalog import Catalog
from .common import (BUNDLED_CHOICE, DATASETS, ENCODERS, MAX_SEED, SCALE, big, check_choice, check_int,
                     check_number, friendly, side_by_side)
from .i18n import DEFAULT, Problem, Text, class_label, say
from .lettering import Lettering

# Reconstruction error (mean absolute pixel difference) of a decent VAE on
# test images; used for the verdict only when no bundled examples are found.
FALLBACK_TYPICAL_ERROR = 0.06
CLEANUP_STRENGTH = (0.05, 1.0)   # below: nothing changes; 1: a new picture, the drawing forgotten


class ReconstructTab:
    """lettering: the language and font of the panels' captions (lettering.Lettering)."""

    def __init__(self, catalog: Catalog, lettering: Lettering | None = None):
        self.catalog = catalog
        self.lettering = lettering or Lettering({})
        # Reconstruction errors of the bundled test examples, per model: what
        # "typical" means in the verdict. Computed on first use, then kept.
        self._reference: dict[int, np.ndarray] = {}
        self._reference_lock = threading.Lock()

    # ---- picture -> code -> picture ------------------------------------------
    @friendly
    def reconstruct(self, dataset: str, image, checkpoint: str = BUNDLED_CHOICE,
                    family: str = "vae", progress=gr.Progress(), *, lang: str = DEFAULT) -> tuple[str, float, str]:
        """A picture (file path, PIL image or array) -> (a PNG, side by side: the
        model's input after preprocessing, its reconstruction and a heat map of
        the difference; the error as a number; a verdict in words). family:
        one that encodes pictures, "vae" or "flow" (the ODE round trip)."""
        model = self._encoder(family, dataset, checkpoint)
        return self._reconstruct(model, self.catalog.prepare(image, dataset, Text("msg.what.picture")), progress, lang)

    @friendly
    def reconstruct_sketch(self, dataset: str, sketch: dict | None, checkpoint: str = BUNDLED_CHOICE,
                           family: str = "vae", progress=gr.Progress(), *, lang: str = DEFAULT):
        """The sketchpad's value ({"background", "layers", "composite"}) -> as reconstruct."""
        model = self._encoder(family, dataset, checkpoint)
        return self._reconstruct(model, self._sketch(sketch, dataset), progress, lang)

    def _encoder(self, family, dataset, checkpoint) -> GenerativeModel:
        family = "vae" if family in (None, "") else family   # an API call from before flow models
        family = check_choice(family, ENCODERS, Text("msg.what.encoder"))
        return self.catalog.model(family, dataset, checkpoint)

    @staticmethod
    def _sketch(sketch, dataset: str) -> torch.Tensor:
        check_choice(dataset, DATASETS, Text("msg.what.dataset"))
        composite = sketch.get("composite") if isinstance(sketch, dict) else None
        if composite is None:
            raise Problem("msg.error.empty_sketch")
        try:
            return prepare(composite, dataset)
        except EmptyImageError:   # a blank sheet
            raise Problem("msg.error.empty_sketch") from None

    def _reconstruct(self, model: GenerativeModel, x: torch.Tensor, progress=None, lang: str = DEFAULT):
        family = REGISTRY[model.family]
        if progress is not None and family.invertible:   # the ODE there and back: the slow one
            progress(0.2, desc=say(lang, "msg.progress.round_trip"))
        r = model.reconstruct(x)                                 # (1, 1, 28, 28)
        diff = (x - r).abs()[0, 0]                               # (28, 28)
        error = float(diff.mean())
        heat = Image.fromarray(latent.heatmap(diff), mode="RGB").resize((28 * SCALE,) * 2, Image.NEAREST)
        words_lang, _ = self.lettering.pick(lang)
        captions = [say(words_lang, "msg.panel.sees", family=family.label),
                    say(words_lang, "msg.panel.round_trip" if family.invertible else "msg.panel.reconstruction"),
                    say(words_lang, "msg.panel.difference")]
        panels = side_by_side([big(x[0]), big(r[0]), heat], captions, font=self.lettering.font(captions, words_lang))
        verdict = self._invertible_verdict(model, x, error, lang) if family.invertible \
            else self.verdict(model.dataset, error, self.reference_errors(model), lang)
        return self.catalog.png(panels), round(error, 4), verdict

    def reference_errors(self, model: GenerativeModel) -> np.ndarray:
        """Reconstruction errors of the bundled test examples by `model`."""
        key = self.catalog.token(model)
        with self._reference_lock:
            if key not in self._reference:
                examples = self.catalog.examples.get(model.dataset, [])
                if not examples:
                    self._reference[key] = np.array([])
                else:
                    x = torch.cat([prepare(e.path, model.dataset) for e in examples])   # (N, 1, 28, 28)
                    self._reference[key] = (x - model.reconstruct(x)).abs().flatten(1).mean(1).numpy()
            return self._reference[key]

    def verdict(self, dataset: str, error: float, ref: np.ndarray | None = None, lang: str = DEFAULT) -> str:
        """ref: the same model's errors on the test examples (default: the demo VAE's)."""
        if ref is None:
            vae = self.catalog.models.get(("vae", dataset))
            ref = self.reference_errors(vae) if vae is not None else np.array([])
        typical = float(np.median(ref)) if len(ref) else FALLBACK_TYPICAL_ERROR
        high = float(np.quantile(ref, 0.9)) if len(ref) else 1.5 * FALLBACK_TYPICAL_ERROR
        what = Text(f"msg.verdict.what.{dataset}")
        where = say(lang, "msg.verdict.measured" if len(ref) else "msg.verdict.assumed", what=what, typical=typical)
        grade = "good" if error <= high else "fair" if error <= 2 * high else "poor"
        return say(lang, f"msg.verdict.{grade}", what=what, where=where)

    def _invertible_verdict(self, flow: GenerativeModel, x: torch.Tensor, error: float, lang: str = DEFAULT) -> str:
        vae = self.catalog.models.get(("vae", flow.dataset))
        beside = ""
        if vae is not None:
            vae_error = float((x - vae.reconstruct(x)).abs().mean())
            beside = say(lang, "msg.verdict.vae_beside", z=vae.z_dim, error=vae_error)
        return say(lang, "msg.verdict.flow", error=error, beside=beside)

    # ---- clean up my drawing (flow) ----------------------------------------
    @friendly
    def cleanup(self, dataset: str, image, class_name: str, strength: float, seed: int = 0,
                checkpoint: str = BUNDLED_CHOICE, progress=gr.Progress(), *, lang: str = DEFAULT) -> tuple[str, str]:
        """A rough picture -> (a PNG: the picture as the model sees it, and
        the flow model's clean version in class_name; a sentence). strength
        (0.05 to 1): how much noise is added before the flow redraws it; low
        keeps the drawing's pose and stroke, high keeps only the class."""
        flow = self.catalog.model("flow", dataset, checkpoint)
        x = self.catalog.prepare(image, dataset, Text("msg.what.picture"))
        return self._cleanup(flow, x, class_name, strength, seed, progress, lang)

    @friendly
    def cleanup_sketch(self, dataset: str, sketch: dict | None, class_name: str, strength: float, seed: int = 0,
                       checkpoint: str = BUNDLED_CHOICE, progress=gr.Progress(), *,
                       lang: str = DEFAULT) -> tuple[str, str]:
        """The sketchpad's value -> as cleanup."""
        flow = self.catalog.model("flow", dataset, checkpoint)
        return self._cleanup(flow, self._sketch(sketch, dataset), class_name, strength, seed, progress, lang)

    def _cleanup(self, flow, x: torch.Tensor, class_name: str, strength: float, seed: int, progress, lang):
        c = self.catalog.class_index(flow, class_name)
        strength = check_number(strength, CLEANUP_STRENGTH[0] - 1e-9, CLEANUP_STRENGTH[1], Text("msg.what.strength"))
        seed = check_int(seed, 0, MAX_SEED, Text("msg.what.seed"))
        progress(0.2, desc=say(lang, "msg.progress.cleanup"))
        out = flow.edit(x, c, strength, seed=seed)                        # (1, 1, 28, 28)
        words_lang, _ = self.lettering.pick(lang)
        captions = [say(words_lang, "msg.panel.your_drawing"),
                    say(words_lang, "msg.panel.cleaned", name=class_label(flow.dataset, class_name, words_lang))[:40]]
        panels = side_by_side([big(x[0]), big(out[0])], captions, font=self.lettering.font(captions, words_lang))
        note = say(lang, "msg.cleanup.note", strength=strength, name=class_label(flow.dataset, class_name, lang))
        return self.catalog.png(panels), note
