"""Tiny seeded models and synthetic data: every test runs on the CPU in seconds."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from aigc.data import ImageSet, class_names
from aigc.flow import FlowModel
from aigc.gan import Generator
from aigc.model import GenerativeModel
from aigc.vae import VAE

CLASSES = class_names("mnist")
TINY_GAN = {"z_dim": 8, "ch": 4}
TINY_VAE = {"z_dim": 4, "ch": 4, "hidden": 16}
TINY_FLOW = {"ch": 8, "emb_dim": 16, "blocks": 1}
TINY_CLASSIFIER = {"ch": 2, "feature_dim": 8}
# Every registered family's tiny size: tests/test_families.py fails for a family missing here.
TINY = {"gan": TINY_GAN, "vae": TINY_VAE, "flow": TINY_FLOW, "classifier": TINY_CLASSIFIER}


def tiny_model(family: str, dataset: str = "mnist", seed: int = 0):
    """A tiny model of any registered family, its weights perturbed as
    training would (zero- and one-initialised layers make an untrained model
    ignore its input or its class); a VAE gets its class prior fitted."""
    from aigc.families import FAMILIES

    torch.manual_seed(seed)
    m = FAMILIES[family].model_class(classes=class_names(dataset), dataset=dataset, **TINY[family]).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    if family == "vae":
        data = synthetic_set()
        m.fit_class_prior(data.floats(), data.labels)
    return m


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


@pytest.fixture
def tiny_flow() -> FlowModel:
    return tiny_model("flow")


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


class CopyingModel(GenerativeModel):
    """A fake "model" that returns training images of the class asked for
    (chosen by the noise): what a memorising generator would do."""

    family = "gan"   # sampled like a GAN: any class is a seeded random class

    def __init__(self, train: ImageSet):
        super().__init__(classes=list(train.classes), dataset="mnist", z_dim=4)
        self.anchor = nn.Parameter(torch.zeros(1))   # a device to live on
        self.train_set = train

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out = []
        for zi, c in zip(z, labels.tolist()):
            pool = (self.train_set.labels == c).nonzero().flatten()
            pick = int((zi.abs().sum() * 1000).item()) % len(pool)
            out.append(self.train_set.floats(pool[pick:pick + 1])[0])
        return torch.stack(out)
