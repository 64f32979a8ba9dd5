"""The evaluation classifier: a small CNN per dataset, used to judge how
recognisable generated images are and to extract features for the Frechet
distance. It is trained apart from the generative models it judges."""
from __future__ import annotations

import torch
import torch.nn as nn

from .model import HubModule


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
