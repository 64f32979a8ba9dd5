"""Quality metrics. Each function computes and returns numbers; none writes
files (the evaluate CLI and the trainer decide what to keep).

- class_accuracy: how often the evaluation classifier recognises the class
  that was asked for.
- frechet_distance: Frechet distance between the classifier's penultimate
  features of two image sets (torchmetrics' FrechetInceptionDistance with our
  classifier as its feature module). Not comparable with Inception FID.
- VAE likelihood: negative ELBO and the importance-weighted bound, in nats.
- precision_recall: improved precision and recall (Kynkaanniemi et al. 2019)
  on the same features: how much of the samples lies on the real data's
  manifold (precision, quality) and how much of the real data the samples
  cover (recall, coverage; low recall is what mode collapse looks like).
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

    # sync_on_compute=False: under torchrun only rank 0 judges; torchmetrics would otherwise wait for the others' images
    fid = FrechetInceptionDistance(feature=ClassifierFeatures(classifier), normalize=True, sync_on_compute=False)
    for images, real in ((a, True), (b, False)):
        for i in range(0, len(images), batch):
            fid.update(images[i:i + batch], real=real)
    return float(fid.compute())


PR_NEIGHBOURS = 3   # k of Kynkaanniemi et al. 2019


@torch.no_grad()
def manifold_radii(feats: torch.Tensor, k: int = PR_NEIGHBOURS) -> torch.Tensor:
    """(N, F) -> each point's distance to its k-th nearest other point (N,):
    the radius of its ball in the k-NN estimate of the set's manifold."""
    from .neighbours import knn

    return knn(feats, feats, k, exclude_self=True)[0][:, -1]


@torch.no_grad()
def coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> float:
    """Share of points (M, F) inside at least one ball (centres (N, F), radii (N,)).
    Distances in blocks of chunk x N (never M x N x F)."""
    c_sq = centres.pow(2).sum(1)
    inside = 0
    for i in range(0, len(points), chunk):
        p = points[i:i + chunk]
        d2 = torch.addmm(p.pow(2).sum(1, keepdim=True) + c_sq[None], p, centres.T, alpha=-2)   # (chunk, N)
        inside += (d2.clamp_min(0).sqrt() <= radii[None] * (1 + 1e-5)).any(1).sum().item()
    return inside / len(points)


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor,
                     k: int = PR_NEIGHBOURS) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of fake
    against real, both (N, F) feature sets: precision, the share of fake
    points inside the real set's k-NN balls; recall, the share of real points
    inside the fake set's."""
    real, fake = real_features.float().cpu(), fake_features.float().cpu()
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision and recall with k={k} need more than {k} points per set, "
                         f"got {len(real)} real and {len(fake)} generated")
    return {"precision": coverage(fake, real, manifold_radii(real, k)),
            "recall": coverage(real, fake, manifold_radii(fake, k))}


def classifier_precision_recall(classifier: Classifier, real: torch.Tensor, fake: torch.Tensor,
                                k: int = PR_NEIGHBOURS) -> dict[str, float]:
    """precision_recall on the classifier's penultimate features of two image sets (N, 1, 28, 28) in [0, 1]."""
    from .neighbours import features

    return precision_recall(features(classifier, real), features(classifier, fake), k)


def class_accuracy(classifier: Classifier, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, list[float]]:
    """(overall accuracy, accuracy per class) of the classifier on (images, labels)."""
    pred = classifier.predict(images)
    hit = (pred == labels).float()
    per_class = [hit[labels == c].mean().item() for c in range(len(classifier.classes))]
    return hit.mean().item(), per_class


@torch.no_grad()
def balanced_samples(model: GenerativeModel, per_class: int, seed: int = 0, **sampler) -> tuple[torch.Tensor, torch.Tensor]:
    """per_class samples of every class: images (K*per_class, 1, 28, 28), labels.
    Seeds differ per batch so no two batches share noise. sampler: a flow
    model's steps, guidance and solver (default: the checkpoint's)."""
    labels = torch.arange(len(model.classes)).repeat_interleave(per_class)
    out = [model.sample(n=len(chunk), labels=chunk.tolist(), seed=seed + i, **sampler)
           for i, chunk in enumerate(labels.split(MAX_SAMPLES))]
    return torch.cat(out), labels


def quick_quality(model: GenerativeModel, classifier: Classifier, real: torch.Tensor,
                  real_labels: torch.Tensor | None = None, per_class: int = 200) -> dict[str, float]:
    """The cheap per-epoch check: class accuracy and Frechet distance of
    per_class*K samples against `real` test images; for a VAE given the real
    labels, also how often its reconstructions of `real` keep their class
    (a flow model's round trip is left out: its error is the ODE solver's, not
    a sign of how training goes, and it costs 32 passes per image)."""
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
def reconstructions(model: GenerativeModel, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """x (N, 1, 28, 28) grayscale in [0, 1] -> its reconstructions by a model
    that encodes (a VAE, or a flow's ODE round trip), same shape."""
    return torch.cat([model.reconstruct(x[i:i + batch]) for i in range(0, len(x), batch)])


@torch.no_grad()
def reconstruction_accuracy(vae: GenerativeModel, classifier: Classifier, x: torch.Tensor, labels: torch.Tensor,
                            batch: int = 1000, rec: torch.Tensor | None = None) -> float:
    """How often the classifier recognises the original's class in the
    reconstruction of each image of x. rec: reconstructions() of x, when already made."""
    rec = reconstructions(vae, x, batch) if rec is None else rec
    return class_accuracy(classifier, rec, labels)[0]


@torch.no_grad()
def reconstruction_mse(vae: GenerativeModel, x: torch.Tensor, batch: int = 1000,
                       rec: torch.Tensor | None = None) -> float:
    """Mean squared error per pixel between x (grayscale, in [0, 1]) and its reconstruction."""
    rec = reconstructions(vae, x, batch) if rec is None else rec
    return ((rec - x) ** 2).sum().item() / x.numel()
