"""Conditioning on a blend of classes, to morph one class into another.

The models take one class per image; here a row of weights w (K,) stands for
"this much of each class", and every family's generate() takes such rows in
place of labels:
  GAN:  every ConditionalBatchNorm uses w @ table instead of a lookup, so a
        one-hot w gives exactly G(z, y).
  VAE:  the class prior N(mean_c, std_c) becomes N(w @ mean, w @ std).
  flow: the class embedding becomes w @ table, under classifier-free guidance.

    w = latent.class_mix(3, 8, 10, steps=16)         # (16, 10)
    x = generate_mixed(model, z.expand(16, -1), w)   # (16, 1, 28, 28)
"""
from __future__ import annotations

import torch

from .model import GenerativeModel


@torch.no_grad()
def generate_mixed(model: GenerativeModel, z: torch.Tensor, weights: torch.Tensor, **sampler) -> torch.Tensor:
    """Latents z (B, z_dim) and class weights (B, K) -> images (B, 1, 28, 28)
    on the CPU in [0, 1]. sampler: a flow model's steps, guidance, solver."""
    k = len(model.classes)
    if z.dim() != 2 or z.shape[1] != model.z_dim:
        raise ValueError(f"z must have shape (n, {model.z_dim}), got {tuple(z.shape)}")
    if not isinstance(weights, torch.Tensor) or weights.shape != (len(z), k) or not weights.dtype.is_floating_point:
        raise ValueError(f"weights must be float of shape ({len(z)}, {k}), "
                         f"got {tuple(getattr(weights, 'shape', ()))} {getattr(weights, 'dtype', type(weights).__name__)}")
    return model.generate(z, weights, **sampler)
