"""Tiny seeded models and synthetic data: every test runs on the CPU in seconds."""
from __future__ import annotations

import pytest
import torch

from aigc.data import ImageSet, class_names
from aigc.gan import Generator
from aigc.vae import VAE

CLASSES = class_names("mnist")
TINY_GAN = {"z_dim": 8, "ch": 4}
TINY_VAE = {"z_dim": 4, "ch": 4, "hidden": 16}


@pytest.fixture
def tiny_gan() -> Generator:
    torch.manual_seed(0)
    g = Generator(classes=CLASSES, dataset="mnist", **TINY_GAN).eval()
    with torch.no_grad():  # at initialisation the class gains are all 1: perturb them as training would
        for bn in (g.bn0, g.bn1, g.bn2):
            bn.gain.weight.add_(0.5 * torch.randn_like(bn.gain.weight))
            bn.bias.weight.add_(0.5 * torch.randn_like(bn.bias.weight))
    return g


@pytest.fixture
def tiny_vae() -> VAE:
    torch.manual_seed(0)
    v = VAE(classes=CLASSES, dataset="mnist", **TINY_VAE).eval()
    data = synthetic_set()
    v.fit_class_prior(data.floats(), data.labels)
    return v


def synthetic_set(n: int = 256, seed: int = 0) -> ImageSet:
    """Blobs whose position depends on the class: learnable, and instant."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        r, col = 4 + 2 * (c // 5) * 5, 4 + 4 * (c % 5)
        images[i, r:r + 6, col:col + 6] = 200
    noise = torch.randint(0, 40, (n, 28, 28), generator=g, dtype=torch.uint8)
    return ImageSet(images + noise, labels, list(CLASSES))


@pytest.fixture
def synthetic() -> ImageSet:
    return synthetic_set()
