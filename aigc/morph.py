"""Conditioning on a blend of classes, to morph one class into another.

The models take one class per image; here a row of weights w (K,) stands for
"this much of each class":
  GAN: the generator takes the weights in place of labels: every
       ConditionalBatchNorm then uses w @ table instead of a lookup, so a
       one-hot w gives exactly G(z, y).
  VAE: the class prior N(mean_c, std_c) becomes N(w @ mean, w @ std).

    w = latent.class_mix(3, 8, 10, steps=16)         # (16, 10)
    x = generate_mixed(model, z.expand(16, -1), w)   # (16, 1, 28, 28)
"""
from __future__ import annotations

import torch

from .gan import Generator
from .model import GenerativeModel
from .vae import VAE


@torch.no_grad()
def generate_mixed(model: GenerativeModel, z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Latents z (B, z_dim) and class weights (B, K) -> images (B, 1, 28, 28)
    on the CPU in [0, 1]."""
    k = len(model.classes)
    if z.dim() != 2 or z.shape[1] != model.z_dim:
        raise ValueError(f"z must have shape (n, {model.z_dim}), got {tuple(z.shape)}")
    if weights.shape != (len(z), k) or not weights.dtype.is_floating_point:
        raise ValueError(f"weights must be float of shape ({len(z)}, {k}), got {tuple(weights.shape)} {weights.dtype}")
    dev = model.device
    z, w = z.to(dev, torch.float32), weights.to(dev, torch.float32)
    if isinstance(model, Generator):
        was_training = model.training
        model.eval()
        try:
            out = model(z, w)
        finally:
            model.train(was_training)
        return out.float().cpu().clamp_(0, 1)
    if isinstance(model, VAE):
        z = w @ model.class_mean + (w @ model.class_std) * z          # (B, z_dim) under the blended prior
        return model.generate(z, None)
    raise TypeError(f"cannot blend classes for a {type(model).__name__}")
