"""What every generative model here shares: class names, the checks on
sampling arguments, seeded noise, and safetensors-only (de)serialisation.

A subclass implements `_generate(z, labels)`: z (n, z_dim) on the model's
device -> images (n, 1, 28, 28) in [0, 1]."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import load_model

from . import latent

MAX_SAMPLES = 1024  # per call; bigger jobs are batched by the caller
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

Labels = int | Sequence[int] | torch.Tensor | None


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA when available, else the CPU; "cpu", "cuda", "cuda:N" as asked."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not str(name).startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu or cuda")
    if name != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but no CUDA device is available; use auto or cpu")
    return torch.device(name)


class HubModule(nn.Module, PyTorchModelHubMixin):
    """An nn.Module saved as config.json (its __init__ arguments plus its
    family) and model.safetensors, and loaded back strictly from a folder."""

    family = ""  # "gan", "vae" or "classifier": tells aigc.load which class to build
    source = ""  # where it was loaded from, e.g. "bundled:checkpoints/gan-mnist"

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, save_directory: str | Path, **kwargs):
        config = {**(self._hub_mixin_config or {}), "family": self.family}
        return super().save_pretrained(save_directory, config=config, **kwargs)

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_model

        save_model(self, str(Path(save_directory) / WEIGHTS_NAME))

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str = "cpu", strict: bool = True,
                         revision=None, cache_dir=None, force_download=False,
                         local_files_only=False, token=None, **model_kwargs):
        # Local folders only: the Hub is reached in aigc.hub, which downloads
        # the JSON and safetensors files alone (nothing to unpickle). Loading
        # is always strict: weights that do not fit the config are an error.
        path = os.path.join(model_id, WEIGHTS_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found: a checkpoint is a folder with {CONFIG_NAME} and {WEIGHTS_NAME}")
        model = cls(**model_kwargs)
        load_model(model, path, strict=True, device=str(map_location))
        return model.eval()


class GenerativeModel(HubModule):
    def __init__(self, *, classes: list[str], dataset: str, z_dim: int):
        super().__init__()
        if not classes:
            raise ValueError("classes must name at least one class")
        self.classes = list(classes)
        self.dataset = dataset
        self.z_dim = z_dim

    # ---- argument checks, shared by every entry point -------------------
    def check_labels(self, labels: Labels, n: int) -> torch.Tensor | None:
        """int, n ints or None -> (n,) int64 CPU tensor or None."""
        if labels is None:
            return None
        k = len(self.classes)
        if isinstance(labels, bool):
            raise TypeError(f"labels must be an int, a list of {n} ints or None, got {labels!r}")
        if isinstance(labels, int):
            labels = [labels] * n
        try:
            t = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"labels must be an int, a list of {n} ints or None, got {labels!r}") from None
        if t.dtype.is_floating_point or t.dtype == torch.bool or t.dim() != 1:
            raise TypeError(f"labels must be an int, a list of {n} ints or None, got {labels!r}")
        if len(t) != n:
            raise ValueError(f"got {len(t)} labels for n={n} samples; give one int or exactly {n}")
        if len(t) and (t.min() < 0 or t.max() >= k):
            raise ValueError(f"labels must be class indices from 0 to {k - 1} "
                             f"({', '.join(self.classes)}); got {t.tolist()}")
        return t.long()

    @staticmethod
    def check_n(n: int) -> int:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"n must be an integer from 1 to {MAX_SAMPLES}, got {n!r}")
        return n

    @staticmethod
    def check_temperature(temperature: float) -> float:
        if not isinstance(temperature, (int, float)) or not 0.0 < temperature <= 2.0:
            raise ValueError(f"temperature must be a number in (0, 2], got {temperature!r}")
        return float(temperature)

    def class_index(self, name_or_index: int | str) -> int:
        """A class given by name ("Sneaker") or index (7) -> index."""
        if isinstance(name_or_index, str) and name_or_index in self.classes:
            return self.classes.index(name_or_index)
        if isinstance(name_or_index, int) and not isinstance(name_or_index, bool) \
                and 0 <= name_or_index < len(self.classes):
            return name_or_index
        raise ValueError(f"unknown class {name_or_index!r}; choose one of {self.classes} "
                         f"or an index from 0 to {len(self.classes) - 1}")

    # ---- sampling ---------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int = 64, labels: Labels = None, seed: int = 0,
               temperature: float = 1.0) -> torch.Tensor:
        """n images (n, 1, 28, 28), float32 on the CPU in [0, 1].

        labels: one class index for all, n indices, or None for any class.
        The noise is drawn on the CPU from `seed`, so a seed gives the same
        images on every device; temperature scales it (below 1: typical, less varied)."""
        n = self.check_n(n)
        y = self.check_labels(labels, n)
        temperature = self.check_temperature(temperature)
        z = latent.seed_noise(seed, n, self.z_dim) * temperature
        if y is None:
            y = self._any_class(seed, n)
        return self.generate(z, y)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: Labels = None) -> torch.Tensor:
        """Latents (n, z_dim) and labels (n,) or None -> images (n, 1, 28, 28) on the CPU."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (n, {self.z_dim}), got {tuple(z.shape)}")
        y = self.check_labels(labels, len(z))
        was_training = self.training
        self.eval()
        try:
            out = self._generate(z.to(self.device, torch.float32),
                                 None if y is None else y.to(self.device))
        finally:
            self.train(was_training)
        return out.float().cpu().clamp_(0, 1)

    def _any_class(self, seed: int, n: int) -> torch.Tensor | None:
        """Labels for 'any class': None where the model has an unconditional
        prior (VAE), seeded random classes where it needs one (GAN)."""
        return latent.seed_labels(seed, n, len(self.classes))

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
