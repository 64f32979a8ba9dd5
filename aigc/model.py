"""What every generative model here shares: class names, the checks on
sampling arguments, seeded noise, and safetensors-only (de)serialisation.

A subclass implements `_generate(z, labels)`: z (n, z_dim) on the model's
device -> images (n, 1, 28, 28) in [0, 1]."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import load_model

from . import latent

MAX_SAMPLES = 1024  # per call; bigger jobs are batched by the caller
MAX_PARAMETERS = 50_000_000   # the models here have under 2 million; a config asking for more is broken
MAX_CONFIG_NUMBER = 10**7     # no setting of a model here is a number beyond this
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
        check_checkpoint(cls, model_kwargs, model_id)   # before anything real is built
        model = cls(**model_kwargs)
        try:
            load_model(model, path, strict=True, device=str(map_location))
        except Exception as e:   # whatever the file breaks, the error names it
            raise ValueError(f"{path} does not load: {_first_line(e)}") from None
        return model.eval()


def check_redraws(candidates, threshold, most: int, prefix: str) -> tuple[int, float]:
    """The settings of a family's redraw rule (`{prefix}_candidates` draws at
    most `most`, redrawn below `{prefix}_threshold`), checked -> (int, float)."""
    if isinstance(candidates, bool) or not isinstance(candidates, int) or not 1 <= candidates <= most:
        raise ValueError(f"{prefix}_candidates must be a whole number from 1 to {most}, got {candidates!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold < 1.0:
        raise ValueError(f"{prefix}_threshold must be a probability in [0, 1), got {threshold!r}")
    return candidates, float(threshold)


def rebuilt(model: HubModule, part: str, **config) -> HubModule:
    """A copy of model (same class and device, eval mode) with `config`
    changed, for settings that add or replace the modules and buffers named
    `part`...: every other weight is copied over, and must fit."""
    kwargs = {k: v for k, v in (model._hub_mixin_config or {}).items() if k != "family"}
    new = type(model)(**{**kwargs, **config}).to(model.device)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(part)}
    missing, unexpected = new.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith(part) for k in missing), (missing, unexpected)
    return new.eval()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: " + (text.splitlines()[0][:300] if text else "no details")


def check_checkpoint(cls: type[HubModule], kwargs: dict, folder: str | Path) -> None:
    """Raise ValueError, naming the file, unless config.json's values build a
    model of at most MAX_PARAMETERS whose tensors are exactly those of
    model.safetensors, name for name and shape for shape. The model is built
    on the meta device (shapes only, no memory) and the weights file's header
    alone is read, so an absurd config ("ch": 100000) costs nothing."""
    from safetensors import safe_open

    config = os.path.join(folder, CONFIG_NAME)
    weights = os.path.join(folder, WEIGHTS_NAME)
    for key, value in kwargs.items():
        if isinstance(value, float) and not math.isfinite(value) or \
                isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_CONFIG_NUMBER:
            raise ValueError(f"{config}: {key} = {str(value)[:40]} is not a sensible setting")
    try:
        with torch.device("meta"):
            meta = cls(**kwargs)
    except Exception as e:
        raise ValueError(f"{config} does not describe a {cls.family or cls.__name__} ({_first_line(e)})") from None
    n = sum(p.numel() for p in meta.parameters())
    if n > MAX_PARAMETERS:
        raise ValueError(f"{config} asks for a {cls.family or cls.__name__} of {n:,} parameters; models here have "
                         f"at most {MAX_PARAMETERS:,}")
    expected = {k: tuple(t.shape) for k, t in meta.state_dict().items()}
    try:
        with safe_open(weights, framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:
        raise ValueError(f"{weights} is not a readable safetensors file ({_first_line(e)})") from None
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = [f"{k} {found[k]} (needs {expected[k]})" for k in sorted(set(expected) & set(found))
             if found[k] != expected[k]]
    if missing or extra or wrong:
        parts = [f"missing {', '.join(missing[:3])}" if missing else "",
                 f"unexpected {', '.join(extra[:3])}" if extra else "",
                 f"wrong shapes: {', '.join(wrong[:3])}" if wrong else ""]
        raise ValueError(f"{weights} does not fit {config}: " + "; ".join(p for p in parts if p))


def check_images(x: torch.Tensor) -> torch.Tensor:
    """Images for a model to take in: (n, 1, 28, 28) (or (1, 28, 28) / (n, 28, 28)),
    float in [0, 1], 1 <= n <= MAX_SAMPLES -> float32 (n, 1, 28, 28)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (n, 1, 28, 28), got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0) if x.shape[0] == 1 else x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28) or len(x) == 0:
        raise ValueError(f"images must have shape (n, 1, 28, 28) with n >= 1, got {tuple(x.shape)}")
    if len(x) > MAX_SAMPLES:
        raise ValueError(f"at most {MAX_SAMPLES} images per call, got {len(x)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"images must be float in [0, 1], got dtype {x.dtype}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("image values must be finite and within [0, 1]")
    return x.float()


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
        """Latents (n, z_dim) and labels (n,), (n, K) class weights (a blend
        of classes, see aigc.morph) or None -> images (n, 1, 28, 28) on the CPU."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (n, {self.z_dim}), got {tuple(z.shape)}")
        y = self.check_labels_or_weights(labels, len(z))
        was_training = self.training
        self.eval()
        try:
            out = self._generate(z.to(self.device, torch.float32), None if y is None else y.to(self.device))
        finally:
            self.train(was_training)
        return out.float().cpu().clamp_(0, 1)

    def check_labels_or_weights(self, labels, n: int) -> torch.Tensor | None:
        """As check_labels, but also takes class weights: a float (n, K)
        tensor, each row a blend of the classes -> float32 (n, K)."""
        if isinstance(labels, torch.Tensor) and labels.dim() == 2:
            k = len(self.classes)
            if labels.shape != (n, k) or not labels.dtype.is_floating_point:
                raise ValueError(f"weights must be float of shape ({n}, {k}), got {tuple(labels.shape)} {labels.dtype}")
            if not torch.isfinite(labels).all():
                raise ValueError("class weights must be finite")
            return labels.float()
        return self.check_labels(labels, n)

    def _any_class(self, seed: int, n: int) -> torch.Tensor | None:
        """Labels for 'any class': None where the model has an unconditional
        prior (VAE), seeded random classes where it needs one (GAN)."""
        return latent.seed_labels(seed, n, len(self.classes))

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
