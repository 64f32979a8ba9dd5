"""Class-conditional GAN for 28x28 grayscale images: generator and projection
discriminator (nn.Modules only; the losses and loop live in train.py)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .model import GenerativeModel


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose scale and shift come from the class: the class steers
    every layer of the generator, not only its input."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(n_classes, channels)
        self.bias = nn.Embedding(n_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W), y: (B,)
        return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class Generator(GenerativeModel, library_name="aigc", tags=["gan", "aigc"]):
    """z (B, z_dim) and class y (B,) -> image (B, 1, 28, 28) in [0, 1].

    7x7 -> 14x14 -> 28x28 through transposed convolutions, each followed by a
    class-conditional BatchNorm."""

    family = "gan"

    def __init__(self, *, classes: list[str], dataset: str = "", z_dim: int = 64, ch: int = 32):
        super().__init__(classes=classes, dataset=dataset, z_dim=z_dim)
        self.ch = ch
        n = len(classes)
        self.fc = nn.Linear(z_dim, 4 * ch * 7 * 7)
        self.bn0 = ConditionalBatchNorm(4 * ch, n)
        self.up1 = nn.ConvTranspose2d(4 * ch, 2 * ch, 4, 2, 1)
        self.bn1 = ConditionalBatchNorm(2 * ch, n)
        self.up2 = nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1)
        self.bn2 = ConditionalBatchNorm(ch, n)
        self.out = nn.Conv2d(ch, 1, 3, 1, 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, 4 * self.ch, 7, 7)       # (B, 4ch, 7, 7)
        h = F.relu(self.bn0(h, y))
        h = F.relu(self.bn1(self.up1(h), y))              # (B, 2ch, 14, 14)
        h = F.relu(self.bn2(self.up2(h), y))              # (B, ch, 28, 28)
        return torch.sigmoid(self.out(h))                 # (B, 1, 28, 28)

    def _generate(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self(z, labels)


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): score = psi(h) + <embed(y), h>,
    with spectral norm on every layer. Image (B, 1, 28, 28) in [0, 1] -> (B,)."""

    def __init__(self, *, n_classes: int, ch: int = 32):
        super().__init__()
        self.convs = nn.ModuleList([
            spectral_norm(nn.Conv2d(1, ch, 4, 2, 1)),            # -> (B, ch, 14, 14)
            spectral_norm(nn.Conv2d(ch, 2 * ch, 4, 2, 1)),       # -> (B, 2ch, 7, 7)
            spectral_norm(nn.Conv2d(2 * ch, 4 * ch, 3, 1, 1)),   # -> (B, 4ch, 7, 7)
        ])
        self.psi = spectral_norm(nn.Linear(4 * ch, 1))
        self.embed = spectral_norm(nn.Embedding(n_classes, 4 * ch))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = x * 2 - 1
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        # Mean, not sum, over the 7x7 positions: with a sum the scores start
        # 49x larger, the hinge saturates within a few dozen steps and G collapses.
        h = h.mean(dim=(2, 3))                            # (B, 4ch)
        return self.psi(h).squeeze(1) + (self.embed(y) * h).sum(1)


def d_hinge_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def g_hinge_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()
