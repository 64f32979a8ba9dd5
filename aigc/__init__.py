"""aigc: class-conditional GANs, VAEs and flow-matching models on MNIST and
Fashion-MNIST, and the demo around them.

    import aigc
    m = aigc.load("gan-mnist")            # gan-/vae-/flow-mnist, -fashion, or a checkpoint folder
    x = m.sample(n=64, labels=3, seed=0)  # (64, 1, 28, 28) float32 in [0, 1]

Where things live:
    aigc/families.py    the model families, each described once (class, recipe, defaults, abilities)
    aigc/model.py       what every model shares: sampling checks, safetensors I/O
    aigc/recipe.py      what a training recipe is; EMA helpers
    aigc/gan.py         conditional generator + projection discriminator, GANRecipe
    aigc/vae.py         convolutional VAE, ELBO, importance-weighted bound, class prior, VAERecipe
    aigc/flow.py        flow matching: a small UNet, ODE samplers, guidance, inversion, SDEdit, FlowRecipe
    aigc/classifier.py  the evaluation classifier and its recipe
    aigc/latent.py      pure functions: seeds -> noise, lerp/slerp, grids, images
    aigc/labels.py      pictures that name what they show: class names by a grid's blocks, a strip's two ends
    aigc/data.py        datasets, class names, the data-dir rule
    aigc/hub.py         where checkpoints come from (local folder, Hugging Face Hub, bundled)
    aigc/publish.py     `python -m aigc.publish`: the bundled checkpoints and their cards to the Hub
    aigc/train.py       the Trainer and `python -m aigc.train` (one process, or many under torchrun)
    aigc/distributed.py torchrun plumbing: process group, shards, DDP around any recipe
    aigc/progress.py    a training process's progress.json
    aigc/runs.py        training runs in the background: started, stopped, resumed from the demo
    aigc/metrics.py     class accuracy, Frechet distance, precision/recall, VAE likelihood
    aigc/neighbours.py  nearest training images (pixels or classifier features): is a model copying?
    aigc/export.py      `python -m aigc.export`: labelled synthetic datasets (Parquet or image folder)
    aigc/evaluate.py    `python -m aigc.evaluate`: metrics.json and a table
    aigc/demo/          the demo's handlers, one module per tab (app.py lays out the page and wires them)
    aigc/guard.py       the public server's limits: request sizes, uploads and disk, fair queue, result cache
    aigc/preprocess.py  uploads and sketches -> MNIST-style 28x28 inputs
    aigc/morph.py       conditioning on a blend of classes
    aigc/media.py       PNG/GIF encoding for the demo
    aigc/examples.py    the bundled example images (checkpoints/examples/)
    aigc/bench.py       `python -m aigc.bench`: speed tables; aigc/loadbench.py: the server under load
    aigc/card.py        model cards;  aigc/io.py: atomic file writes
"""
from __future__ import annotations

import torch

from . import families, hub, latent  # noqa: F401  (aigc.families, aigc.latent: part of the API)
from .classifier import Classifier
from .families import FAMILIES, Family
from .flow import FlowModel
from .gan import Discriminator, Generator
from .hub import BUNDLED, HubError, read_config
from .model import GenerativeModel, HubModule, pick_device
from .vae import VAE


__all__ = ["load", "load_folder", "BUNDLED", "FAMILIES", "Family", "Generator", "Discriminator", "VAE",
           "FlowModel", "Classifier", "GenerativeModel", "HubModule", "HubError", "pick_device"]


def load_folder(folder, device: str | torch.device = "auto") -> HubModule:
    """Build the model class named by config.json's "family" and load its
    safetensors weights strictly."""
    config = read_config(folder)
    family = config.get("family")
    if family not in FAMILIES:
        raise ValueError(f"{folder}/config.json names family {family!r}; expected one of {list(FAMILIES)}")
    return FAMILIES[family].model_class.from_pretrained(str(folder), map_location=str(pick_device(device)))


def load(name: str, device: str | torch.device = "auto", *, hub_repo: str | None = None,
         hub_strict: bool = False) -> HubModule:
    """A bundled model by name ("gan-mnist", "gan-fashion", "vae-mnist",
    "vae-fashion") or a checkpoint folder -> an eval-mode model on `device`
    ("auto": CUDA when available).

    hub_repo ("ORG/NAME" or "ORG/NAME@revision"): for a bundled name, the
    Hugging Face Hub repo to try first (the model is in its NAME/ subfolder);
    None or "": the bundled checkpoints only. Nothing is read from the
    environment here: the app turns AIGC_HUB_REPO / AIGC_HUB_STRICT into these
    arguments. When the Hub cannot serve the model, the bundled copy is loaded
    and `model.source_note` says why; hub_strict=True raises HubError instead.

    `model.source` says where it came from: "hub:ORG/NAME@<commit sha>",
    "bundled:checkpoints/gan-mnist" or "local:<folder>"."""
    device = pick_device(device)  # a bad device is the caller's error, not a reason to leave the Hub copy
    return hub.load(name, lambda folder: load_folder(folder, device), hub_repo=hub_repo, hub_strict=hub_strict)
