"""Class-conditional GAN for 28x28 grayscale images: generator and projection
discriminator (nn.Modules only; the losses and loop live in train.py)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

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
        # x: (B, C, H, W); y: (B,) class indices, or (B, K) float weights over
        # the classes (a blend, to morph one class into another; one-hot
        # weights give exactly the lookup).
        if y.dim() == 2:
            gain, bias = y @ self.gain.weight, y @ self.bias.weight      # (B, C)
        else:
            gain, bias = self.gain(y), self.bias(y)
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]


class Generator(GenerativeModel, library_name="aigc", tags=["gan", "aigc"]):
    """z (B, z_dim) and class y (B,) (or class weights (B, K)) -> image
    (B, 1, 28, 28) in [0, 1].

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
    """Conditional DCGAN discriminator: the class enters as an extra input
    channel (a learned 28x28 map per class) and again through a projection
    term on the penultimate features (Miyato & Koyama 2018), so D must judge
    "is this a real image of class y", not only "is this real".
    Image (B, 1, 28, 28) in [0, 1], y (B,) -> score (B,) (a logit: > 0 means real)."""

    def __init__(self, *, n_classes: int, ch: int = 32):
        super().__init__()
        self.class_map = nn.Embedding(n_classes, 28 * 28)
        self.convs = nn.Sequential(
            nn.Conv2d(2, 2 * ch, 4, 2, 1), nn.LeakyReLU(0.2),                          # (B, 2ch, 14, 14)
            nn.Conv2d(2 * ch, 4 * ch, 4, 2, 1), nn.BatchNorm2d(4 * ch), nn.LeakyReLU(0.2),  # (B, 4ch, 7, 7)
            nn.Flatten(),
        )
        self.psi = nn.Linear(4 * ch * 49, 1)
        self.embed = nn.Embedding(n_classes, 4 * ch * 49)
        nn.init.zeros_(self.embed.weight)  # the projection starts neutral and is learned

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m = self.class_map(y).view(-1, 1, 28, 28)
        h = self.convs(torch.cat([x * 2 - 1, m], dim=1))   # (B, 4ch*49)
        return self.psi(h).squeeze(1) + (self.embed(y) * h).sum(1)


def d_loss_fn(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN loss (Goodfellow et al. 2014), discriminator side."""
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def g_loss_fn(fake_scores: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return F.softplus(-fake_scores).mean()
