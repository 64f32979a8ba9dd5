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

# Reconstruction error (mean absolute pixel difference) of a decent VAE on
# test images; used for the verdict only when no bundled examples are found.
FALLBACK_TYPICAL_ERROR = 0.06
EMPTY_SKETCH = "The sketchpad is empty: draw a digit or a piece of clothing first."
CLEANUP_STRENGTH = (0.05, 1.0)   # below: nothing changes; 1: a new picture, the drawing forgotten
WHAT = {"mnist": "digits", "fashion": "clothing pictures"}


class ReconstructTab:
    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        # Reconstruction errors of the bundled test examples, per model: what
        # "typical" means in the verdict. Computed on first use, then kept.
        self._reference: dict[int, np.ndarray] = {}
        self._reference_lock = threading.Lock()

    # ---- picture -> code -> picture ------------------------------------------
    @friendly
    def reconstruct(self, dataset: str, image, checkpoint: str = BUNDLED_CHOICE,
                    family: str = "vae") -> tuple[str, float, str]:
        """A picture (file path, PIL image or array) -> (a PNG, side by side: the
        model's input after preprocessing, its reconstruction and a heat map of
        the difference; the error as a number; a verdict in words). family:
        one that encodes pictures, "vae" or "flow" (the ODE round trip)."""
        model = self._encoder(family, dataset, checkpoint)
        return self._reconstruct(model, self.catalog.prepare(image, dataset, "picture"))

    @friendly
    def reconstruct_sketch(self, dataset: str, sketch: dict | None, checkpoint: str = BUNDLED_CHOICE,
                           family: str = "vae"):
        """The sketchpad's value ({"background", "layers", "composite"}) -> as reconstruct."""
        model = self._encoder(family, dataset, checkpoint)
        return self._reconstruct(model, self._sketch(sketch, dataset))

    def _encoder(self, family, dataset, checkpoint) -> GenerativeModel:
        family = "vae" if family in (None, "") else family   # an API call from before flow models
        family = check_choice(family, ENCODERS, "model family (one that encodes pictures)")
        return self.catalog.model(family, dataset, checkpoint)

    @staticmethod
    def _sketch(sketch, dataset: str) -> torch.Tensor:
        check_choice(dataset, DATASETS, "dataset")
        composite = sketch.get("composite") if isinstance(sketch, dict) else None
        if composite is None:
            raise gr.Error(EMPTY_SKETCH)
        try:
            return prepare(composite, dataset)
        except EmptyImageError:   # a blank sheet
            raise gr.Error(EMPTY_SKETCH) from None

    def _reconstruct(self, model: GenerativeModel, x: torch.Tensor):
        r = model.reconstruct(x)                                 # (1, 1, 28, 28)
        diff = (x - r).abs()[0, 0]                               # (28, 28)
        error = float(diff.mean())
        heat = Image.fromarray(latent.heatmap(diff), mode="RGB").resize((28 * SCALE,) * 2, Image.NEAREST)
        family = REGISTRY[model.family]
        middle = "noise, then back (ODE)" if family.invertible else "its reconstruction"
        panels = side_by_side([big(x[0]), big(r[0]), heat], [f"what the {family.label} sees", middle,
                                                            "difference (bright: wrong)"])
        verdict = self._invertible_verdict(model, x, error) if family.invertible \
            else self.verdict(model.dataset, error, self.reference_errors(model))
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

    def verdict(self, dataset: str, error: float, ref: np.ndarray | None = None) -> str:
        """ref: the same model's errors on the test examples (default: the demo VAE's)."""
        if ref is None:
            vae = self.catalog.models.get(("vae", dataset))
            ref = self.reference_errors(vae) if vae is not None else np.array([])
        typical = float(np.median(ref)) if len(ref) else FALLBACK_TYPICAL_ERROR
        high = float(np.quantile(ref, 0.9)) if len(ref) else 1.5 * FALLBACK_TYPICAL_ERROR
        what = WHAT[dataset]
        where = (f"On real test {what} the error is typically {typical:.3f}." if len(ref)
                 else f"A typical error on real test {what} is about {typical:.2f}.")
        if error <= high:
            return f"Good: the model redraws this about as well as real test {what}. {where}"
        if error <= 2 * high:
            return f"Fair: recognisable, but rougher than real test {what}. {where}"
        return (f"Poor: this is unlike the {what} the model learned from, so it redraws it as the "
                f"nearest thing it knows. {where}")

    def _invertible_verdict(self, flow: GenerativeModel, x: torch.Tensor, error: float) -> str:
        vae = self.catalog.models.get(("vae", flow.dataset))
        beside = ""
        if vae is not None:
            vae_error = float((x - vae.reconstruct(x)).abs().mean())
            beside = f" The VAE, which must squeeze it into {vae.z_dim} numbers, redraws it with an error of {vae_error:.3f}."
        return (f"Round trip through the flow: error {error:.4f}. A flow model can run its path backwards, "
                f"so the picture's own noise leads back to it; what is lost is only the solver's step error, "
                f"not detail.{beside}")

    # ---- clean up my drawing (flow) ----------------------------------------
    @friendly
    def cleanup(self, dataset: str, image, class_name: str, strength: float, seed: int = 0,
                checkpoint: str = BUNDLED_CHOICE) -> tuple[str, str]:
        """A rough picture -> (a PNG: the picture as the model sees it, and
        the flow model's clean version in class_name; a sentence). strength
        (0.05 to 1): how much noise is added before the flow redraws it; low
        keeps the drawing's pose and stroke, high keeps only the class."""
        flow = self.catalog.model("flow", dataset, checkpoint)
        return self._cleanup(flow, self.catalog.prepare(image, dataset, "picture"), class_name, strength, seed)

    @friendly
    def cleanup_sketch(self, dataset: str, sketch: dict | None, class_name: str, strength: float, seed: int = 0,
                       checkpoint: str = BUNDLED_CHOICE) -> tuple[str, str]:
        """The sketchpad's value -> as cleanup."""
        flow = self.catalog.model("flow", dataset, checkpoint)
        return self._cleanup(flow, self._sketch(sketch, dataset), class_name, strength, seed)

    def _cleanup(self, flow, x: torch.Tensor, class_name: str, strength: float, seed: int):
        c = self.catalog.class_index(flow, class_name)
        strength = check_number(strength, CLEANUP_STRENGTH[0] - 1e-9, CLEANUP_STRENGTH[1], "The strength")
        seed = check_int(seed, 0, MAX_SEED, "The seed")
        out = flow.edit(x, c, strength, seed=seed)                        # (1, 1, 28, 28)
        panels = side_by_side([big(x[0]), big(out[0])], ["your drawing, as the model sees it",
                                                        f"cleaned up as {class_name!s}"[:40]])
        note = (f"Noise at strength {strength:.2f} was added to your drawing, then the flow model followed its "
                f"path back to a clean picture of {class_name}. Lower strength keeps more of your strokes; "
                f"higher keeps only the class.")
        return self.catalog.png(panels), note
