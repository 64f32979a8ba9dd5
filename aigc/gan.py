"""Class-conditional GAN for 28x28 grayscale images: generator, projection
discriminator, the non-saturating loss and the training recipe (one step;
aigc.train runs the loop)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import GenerativeModel
from .recipe import Recipe, ema_update, frozen_copy


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
        # labels: (B,) indices, or (B, K) class weights for a blend (every
        # ConditionalBatchNorm then uses w @ table: one-hot w is exactly G(z, y))
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


class GANRecipe(Recipe):
    """Non-saturating loss, a conditional DCGAN discriminator with a
    projection term, one D step per G step, and an exponential moving
    average of G used for sampling."""

    ema_decay = 0.999
    averaged = ("G_ema",)

    def __init__(self, classes, dataset, lr, device, model_kwargs):
        super().__init__(classes, dataset, lr, device, model_kwargs)
        G = Generator(classes=classes, dataset=dataset, **model_kwargs).to(device)
        D = Discriminator(n_classes=len(classes), ch=G.ch).to(device)
        G_ema = frozen_copy(G)
        self.modules = {"G": G, "D": D, "G_ema": G_ema}
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999)),
            "D": torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999)),
        }

    def step(self, x, y, gen):
        G, D, G_ema = self.modules["G"], self.modules["D"], self.modules["G_ema"]
        B = len(x)
        z = torch.randn(B, G.z_dim, generator=gen, device=self.device)
        with torch.no_grad():
            fake = G(z, y)
        d_loss = d_loss_fn(D(x, y), D(fake, y))
        self.optimizers["D"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["D"].step()

        z = torch.randn(B, G.z_dim, generator=gen, device=self.device)
        g_loss = g_loss_fn(D(G(z, y), y))
        self.optimizers["G"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["G"].step()

        ema_update(G_ema, G, self.ema_decay)
        with torch.no_grad():
            for be, b in zip(G_ema.buffers(), G.buffers()):
                be.copy_(b)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}

    @torch.no_grad()
    def serving_model(self, train_set):
        # The EMA weights meet BatchNorm statistics gathered by the live G;
        # recompute them for the EMA weights ("standing statistics") from a
        # fixed-seed stream, so the training RNG is left untouched.
        G_ema = self.modules["G_ema"]
        gen = torch.Generator(device=self.device).manual_seed(1234)
        for m in G_ema.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the batches below
        G_ema.train()
        for _ in range(20):
            z = torch.randn(256, G_ema.z_dim, generator=gen, device=self.device)
            y = torch.randint(0, len(G_ema.classes), (256,), generator=gen, device=self.device)
            G_ema(z, y)
        for m in G_ema.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.1
        return G_ema.eval()
