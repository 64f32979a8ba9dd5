"""Quality metrics. Each function computes and returns numbers; none writes
files (the evaluate CLI and the trainer decide what to keep).

- class_accuracy: how often the evaluation classifier recognises the class
  that was asked for.
- frechet_distance: Frechet distance between the classifier's penultimate
  features of two image sets (torchmetrics' FrechetInceptionDistance with our
  classifier as its feature module). Not comparable with Inception FID.
- VAE likelihood: negative ELBO and the importance-weighted bound, in nats.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .classifier import Classifier
from .model import MAX_SAMPLES, GenerativeModel
from .vae import VAE


class ClassifierFeatures(nn.Module):
    """The classifier's penultimate layer as torchmetrics' feature module:
    (B, 1, 28, 28) in [0, 1] -> (B, feature_dim)."""

    def __init__(self, classifier: Classifier):
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.feature_dim

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.classifier.eval()
        return self.classifier.features(x.to(self.classifier.device))


def frechet_distance(classifier: Classifier, a: torch.Tensor, b: torch.Tensor, batch: int = 1000) -> float:
    """Frechet distance between image sets a and b, each (N, 1, 28, 28) in [0, 1]."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=ClassifierFeatures(classifier), normalize=True)
    for images, real in ((a, True), (b, False)):
        for i in range(0, len(images), batch):
            fid.update(images[i:i + batch], real=real)
    return float(fid.compute())


def class_accuracy(classifier: Classifier, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, list[float]]:
    """(overall accuracy, accuracy per class) of the classifier on (images, labels)."""
    pred = classifier.predict(images)
    hit = (pred == labels).float()
    per_class = [hit[labels == c].mean().item() for c in range(len(classifier.classes))]
    return hit.mean().item(), per_class


@torch.no_grad()
def balanced_samples(model: GenerativeModel, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """per_class samples of every class: images (K*per_class, 1, 28, 28), labels.
    Seeds differ per batch so no two batches share noise."""
    labels = torch.arange(len(model.classes)).repeat_interleave(per_class)
    out = [model.sample(n=len(chunk), labels=chunk.tolist(), seed=seed + i)
           for i, chunk in enumerate(labels.split(MAX_SAMPLES))]
    return torch.cat(out), labels


def quick_quality(model: GenerativeModel, classifier: Classifier, real: torch.Tensor,
                  real_labels: torch.Tensor | None = None, per_class: int = 200) -> dict[str, float]:
    """The cheap per-epoch check: class accuracy and Frechet distance of
    per_class*K samples against `real` test images; for a VAE given the real
    labels, also how often its reconstructions of `real` keep their class."""
    x, y = balanced_samples(model, per_class, seed=10_000)
    acc, _ = class_accuracy(classifier, x, y)
    out = {"class_accuracy": round(acc, 4), "frechet": round(frechet_distance(classifier, x, real), 3)}
    if isinstance(model, VAE) and real_labels is not None:
        out["reconstruction_class_accuracy"] = round(reconstruction_accuracy(model, classifier, real, real_labels), 4)
    return out


@torch.no_grad()
def vae_likelihood(vae: VAE, x: torch.Tensor, k: int, batch: int = 100, seed: int = 0) -> dict[str, float]:
    """Mean negative ELBO (single-sample, averaged over the set) and the
    k-sample importance-weighted bound on the NLL, in nats, of binary images x."""
    vae.eval()
    g = torch.Generator(device=vae.device).manual_seed(seed)
    nelbo, nll = 0.0, 0.0
    for i in range(0, len(x), batch):
        xb = x[i:i + batch].to(vae.device)
        nelbo += vae(xb, generator=g)[0].sum().item()
        nll += vae.iw_nll(xb, k, generator=g).sum().item()
    return {"nelbo": nelbo / len(x), "nll": nll / len(x)}


@torch.no_grad()
def reconstruction_accuracy(vae: VAE, classifier: Classifier, x: torch.Tensor, labels: torch.Tensor,
                            batch: int = 1000) -> float:
    """How often the classifier recognises the original's class in the
    reconstruction of each image of x (grayscale, (N, 1, 28, 28) in [0, 1])."""
    rec = torch.cat([vae.reconstruct(x[i:i + batch]) for i in range(0, len(x), batch)])
    return class_accuracy(classifier, rec, labels)[0]


@torch.no_grad()
def reconstruction_mse(vae: VAE, x: torch.Tensor, batch: int = 1000) -> float:
    """Mean squared error per pixel between x (grayscale, in [0, 1]) and its reconstruction."""
    err = sum(((vae.reconstruct(x[i:i + batch]) - x[i:i + batch]) ** 2).sum().item()
              for i in range(0, len(x), batch))
    return err / x.numel()
