"""The evaluation classifier: a small CNN per dataset, used to judge how
recognisable generated images are and to extract features for the Frechet
distance. It is trained apart from the generative models it judges."""
from __future__ import annotations

import torch
import torch.nn as nn

from .model import HubModule
from .recipe import Recipe


class Classifier(HubModule, library_name="aigc", tags=["classifier", "aigc"]):
    """Image (B, 1, 28, 28) in [0, 1] -> class logits (B, n_classes)."""

    family = "classifier"

    def __init__(self, *, classes: list[str], dataset: str = "", ch: int = 32, feature_dim: int = 128):
        super().__init__()
        self.classes = list(classes)
        self.dataset = dataset
        self.feature_dim = feature_dim

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(1, ch), *block(ch, ch), nn.MaxPool2d(2),              # (B, ch, 14, 14)
            *block(ch, 2 * ch), *block(2 * ch, 2 * ch), nn.MaxPool2d(2),  # (B, 2ch, 7, 7)
            nn.Flatten(), nn.Dropout(0.3),
            nn.Linear(2 * ch * 49, feature_dim), nn.ReLU(),              # (B, feature_dim)
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, len(classes)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, feature_dim), used for the Frechet distance."""
        return self.body(x * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """(N, 1, 28, 28) -> predicted class indices (N,) on the CPU."""
        self.eval()
        return torch.cat([self(x[i:i + batch].to(self.device)).argmax(1).cpu()
                          for i in range(0, len(x), batch)])


class ClassifierRecipe(Recipe):
    """Cross-entropy with light augmentation, so the judge answers "which
    class is this?" and not "is this exactly a dataset image?": each image is
    shifted by up to 2 pixels (generated images are not perfectly centred),
    half of them are softened by a small blur (a classifier trained on crisp
    images alone called a Fashion-MNIST test image blurred by one 3x3 binomial
    pass the wrong class 25% of the time, so it scored reconstructions on
    sharpness, not class), and half get faint pixel noise."""

    BLURS = (torch.tensor([1.0, 2.0, 1.0]) / 4, torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16)  # sigma ~0.7, ~1

    def __init__(self, classes, dataset, lr, device, model_kwargs):
        super().__init__(classes, dataset, lr, device, model_kwargs)
        clf = Classifier(classes=classes, dataset=dataset, **model_kwargs).to(device)
        self.modules = {"classifier": clf}
        self.optimizers = {"classifier": torch.optim.Adam(clf.parameters(), lr=lr)}

    @classmethod
    def augment(cls, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """x (B, 1, 28, 28) in [0, 1] -> shifted, some blurred, some noisy; same shape and range."""
        F = torch.nn.functional
        B, dev = len(x), x.device
        # a random shift per image, by padding and cropping
        pad = F.pad(x, (2, 2, 2, 2))                                          # (B, 1, 32, 32)
        dx = torch.randint(0, 5, (B,), generator=gen, device=dev)
        dy = torch.randint(0, 5, (B,), generator=gen, device=dev)
        ar = torch.arange(28, device=dev)
        rows = (dy[:, None] + ar[None, :])[:, :, None].expand(B, 28, 28)
        cols = (dx[:, None] + ar[None, :])[:, None, :].expand(B, 28, 28)
        x = pad[torch.arange(B, device=dev)[:, None, None], 0, rows, cols].unsqueeze(1)
        # blur: none (half), or one of two binomial kernels (a quarter each)
        which = torch.randint(0, 4, (B,), generator=gen, device=dev)
        for i, k1 in enumerate(cls.BLURS, start=1):
            k = (k1[:, None] * k1[None, :]).to(dev)[None, None]              # (1, 1, s, s)
            blurred = F.conv2d(x, k, padding=k.shape[-1] // 2)
            x = torch.where((which == i)[:, None, None, None], blurred, x)
        # noise: half the images, std up to 0.05 (about 13 gray levels)
        std = 0.05 * torch.rand(B, generator=gen, device=dev) * (torch.rand(B, generator=gen, device=dev) < 0.5)
        noise = torch.randn(x.shape, generator=gen, device=dev) * std[:, None, None, None]
        return (x + noise).clamp(0, 1)

    def step(self, x, y, gen):
        clf = self.modules["classifier"]
        loss = torch.nn.functional.cross_entropy(clf(self.augment(x, gen)), y)
        self.optimizers["classifier"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["classifier"].step()
        return {"loss": loss.item()}

    def serving_model(self, train_set):
        return self.modules["classifier"].eval()
