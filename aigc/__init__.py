"""aigc: class-conditional GANs and VAEs on MNIST and Fashion-MNIST, and the
demo around them.

    import aigc
    m = aigc.load("gan-mnist")            # or gan-fashion, vae-mnist, vae-fashion, or a folder
    x = m.sample(n=64, labels=3, seed=0)  # (64, 1, 28, 28) float32 in [0, 1]

Where things live:
    aigc/model.py       what every model shares: sampling checks, safetensors I/O
    aigc/gan.py         conditional generator + projection discriminator
    aigc/vae.py         convolutional VAE, ELBO, importance-weighted bound
    aigc/classifier.py  the evaluation classifier
    aigc/latent.py      pure functions: seeds -> noise, lerp/slerp, grids, images
    aigc/data.py        datasets, class names, the data-dir rule
    aigc/hub.py         where checkpoints come from (local, bundled)
    aigc/train.py       training loops and `python -m aigc.train`
    aigc/card.py        model cards;  aigc/io.py: atomic file writes
"""
from __future__ import annotations

import torch

from .classifier import Classifier
from .gan import Discriminator, Generator
from .hub import BUNDLED, read_config, resolve
from .model import GenerativeModel, HubModule
from .vae import VAE

FAMILIES: dict[str, type[HubModule]] = {"gan": Generator, "vae": VAE, "classifier": Classifier}

__all__ = ["load", "load_folder", "BUNDLED", "FAMILIES", "Generator", "Discriminator", "VAE",
           "Classifier", "GenerativeModel", "HubModule"]


def _device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'")
    return torch.device(device)


def load_folder(folder, device: str | torch.device = "auto") -> HubModule:
    """Build the model class named by config.json's "family" and load its
    safetensors weights strictly."""
    config = read_config(folder)
    family = config.get("family")
    if family not in FAMILIES:
        raise ValueError(f"{folder}/config.json names family {family!r}; expected one of {list(FAMILIES)}")
    return FAMILIES[family].from_pretrained(str(folder), map_location=str(_device(device)))


def load(name: str, device: str | torch.device = "auto") -> HubModule:
    """A bundled model by name ("gan-mnist", "gan-fashion", "vae-mnist",
    "vae-fashion") or a checkpoint folder -> an eval-mode model on `device`
    ("auto": CUDA when available). `model.source` says where it came from."""
    folder, source = resolve(name)
    model = load_folder(folder, device)
    model.source = source
    return model
