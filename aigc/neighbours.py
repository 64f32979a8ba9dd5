"""Nearest training images: is a model copying its training data?

Two spaces, always named by the caller:
- "pixels": Euclidean distance between the 784 gray levels in [0, 1]
  (a distance of 1 is, e.g., 100 pixels each off by 0.1);
- "features": Euclidean distance between the evaluation classifier's
  penultimate features (what the Frechet distance and precision/recall use).

The training set's features are computed once per (classifier, dataset) and
cached on disk as safetensors, keyed by a hash of the classifier's weights and
of the images, written atomically; the cache folder is the caller's choice
(`default_cache_dir()` is the CLI's and app's default, ~/.cache/aigc).

Search is exact and chunked: squared distances ||q||^2 - 2 q.r + ||r||^2 by
matrix products over blocks of queries x references (never the whole
Q x N x D difference tensor), a short list of the closest per query, then the
short list's distances recomputed directly so that an exact copy is at
distance 0, not at float rounding noise.

The copying figure (Gu et al. 2023, "On Memorization in Diffusion Models"):
a sample whose nearest training image is much closer than its second nearest,
d1 / d2 < 1/3, is counted as a copy.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .classifier import Classifier
from .data import ImageSet
from .io import atomic_write
from .model import MAX_SAMPLES

SPACES = ("pixels", "features")
COPY_RATIO = 1 / 3          # Gu et al.: d1 / d2 below this counts as a copy
QUERY_CHUNK = 1024          # queries per block
REF_CHUNK = 8192            # references per block: a block of distances is 1024 x 8192 floats, 32 MiB
SHORTLIST_EXTRA = 4         # candidates kept beyond k before the exact recomputation
FEATURE_BATCH = 1000


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/aigc, else ~/.cache/aigc (for the CLIs and the app; library calls take a folder)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aigc"


# ---- exact chunked k-nearest-neighbour search ---------------------------------
@torch.no_grad()
def knn(queries: torch.Tensor, refs: torch.Tensor, k: int, *, ref_sq: torch.Tensor | None = None,
        exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """queries (Q, D), refs (N, D) float32 -> (distances (Q, k) ascending,
    indices (Q, k) into refs). exclude_self: queries are refs itself (Q == N)
    and each point's own index is skipped (for k-NN radii within one set).
    ref_sq: ||refs||^2 (N,), precomputed by an index that searches often."""
    if queries.dim() != 2 or refs.dim() != 2 or queries.shape[1] != refs.shape[1]:
        raise ValueError(f"queries (Q, D) and refs (N, D) must share D, got {tuple(queries.shape)} "
                         f"and {tuple(refs.shape)}")
    n = len(refs) - (1 if exclude_self else 0)
    if not 1 <= k <= n:
        raise ValueError(f"k must be from 1 to {n} (the number of references), got {k}")
    queries, refs = queries.float(), refs.float()
    if ref_sq is None:
        ref_sq = refs.pow(2).sum(1)
    m = min(k + SHORTLIST_EXTRA + (1 if exclude_self else 0), len(refs))
    out_d, out_i = [], []
    for q0 in range(0, len(queries), QUERY_CHUNK):
        q = queries[q0:q0 + QUERY_CHUNK]                                     # (Qc, D)
        q_sq = q.pow(2).sum(1, keepdim=True)                                 # (Qc, 1)
        best_d = torch.full((len(q), 0), float("inf"))
        best_i = torch.zeros((len(q), 0), dtype=torch.long)
        for r0 in range(0, len(refs), REF_CHUNK):
            r = refs[r0:r0 + REF_CHUNK]                                      # (Rc, D)
            d2 = torch.addmm(q_sq + ref_sq[None, r0:r0 + len(r)], q, r.T, alpha=-2)   # (Qc, Rc)
            if exclude_self:   # a point is not its own neighbour
                rows = torch.arange(len(q))
                own = q0 + rows - r0
                inside = (own >= 0) & (own < len(r))
                d2[rows[inside], own[inside]] = float("inf")
            top = min(m, len(r))
            d, i = d2.topk(top, dim=1, largest=False)
            best_d, best_i = torch.cat([best_d, d], 1), torch.cat([best_i, i + r0], 1)
            if best_d.shape[1] > m:
                best_d, sel = best_d.topk(m, dim=1, largest=False)
                best_i = best_i.gather(1, sel)
        # exact distances of the short list: (Qc, m, D) differences, small
        exact = (q[:, None, :] - refs[best_i]).pow(2).sum(2).sqrt()
        if exclude_self:
            exact = torch.where(best_i == (q0 + torch.arange(len(q)))[:, None], torch.inf, exact)
        d, sel = exact.topk(k, dim=1, largest=False)
        out_d.append(d)
        out_i.append(best_i.gather(1, sel))
    return torch.cat(out_d), torch.cat(out_i)


def copy_ratio(distances: torch.Tensor) -> torch.Tensor:
    """(Q, >=2) ascending neighbour distances -> d1 / d2 per query (Q,);
    0 where d1 is 0 (an exact copy, even of an image that occurs twice)."""
    d1, d2 = distances[:, 0], distances[:, 1]
    return torch.where(d1 == 0, torch.zeros_like(d1), d1 / d2.clamp_min(1e-12))


# ---- features and their cache ---------------------------------------------------
def tensor_hash(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors (names, dtypes, shapes and bytes, in name order)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def features(classifier: Classifier, images: torch.Tensor, batch: int = FEATURE_BATCH) -> torch.Tensor:
    """Images (N, 1, 28, 28) in [0, 1] -> the classifier's penultimate features (N, F) on the CPU."""
    classifier.eval()
    out = [classifier.features(images[i:i + batch].to(classifier.device)).float().cpu()
           for i in range(0, len(images), batch)]
    return torch.cat(out) if out else torch.zeros(0, classifier.feature_dim)


def cached_features(classifier: Classifier, images: ImageSet, cache_dir: str | Path | None,
                    name: str = "train") -> torch.Tensor:
    """The classifier's features (N, F) of every image of `images`, read from
    cache_dir when a file for this exact classifier and these exact images is
    there, else computed (98 s for 60,000 on one busy CPU thread) and written
    atomically. cache_dir None: computed, not stored."""
    from safetensors.torch import load_file, save_file

    if cache_dir is None:
        return features(classifier, images.floats())
    clf_hash = tensor_hash(classifier.state_dict())
    data_hash = tensor_hash({"images": images.images, "labels": images.labels})
    path = Path(cache_dir) / f"features-{name}-{clf_hash[:16]}-{data_hash[:12]}.safetensors"
    if path.exists():
        try:
            f = load_file(str(path))["features"]
            if f.shape == (len(images), classifier.feature_dim):
                return f
        except Exception:   # a damaged cache file is recomputed and replaced
            pass
    f = features(classifier, images.floats())
    meta = {"classifier_sha256": clf_hash, "images_sha256": data_hash, "n": str(len(images))}
    atomic_write(path, lambda tmp: save_file({"features": f.contiguous()}, tmp, metadata=meta))
    return f


# ---- the index ---------------------------------------------------------------
@dataclass
class Neighbours:
    """k nearest training images of each query, in one space."""
    space: str                 # "pixels" or "features"
    indices: torch.Tensor      # (Q, k) int64 into the training set
    distances: torch.Tensor    # (Q, k) float32, ascending
    labels: torch.Tensor       # (Q, k) the neighbours' training labels

    @property
    def ratio(self) -> torch.Tensor:
        """d1 / d2 per query (Q,) (needs k >= 2); below 1/3 reads as a copy."""
        return copy_ratio(self.distances)


class NeighbourIndex:
    """A training set to search, in pixel space and in the evaluation
    classifier's feature space. Holds the images as float32 (60,000 x 784:
    188 MB) and their features (60,000 x 128: 31 MB)."""

    def __init__(self, train: ImageSet, classifier: Classifier | None = None,
                 cache_dir: str | Path | None = None):
        self.train = train
        self.classifier = classifier
        self.pixels = train.floats().flatten(1)                      # (N, 784)
        self.pixel_sq = self.pixels.pow(2).sum(1)                   # (N,)
        self.features = None if classifier is None else cached_features(classifier, train, cache_dir)
        self.feature_sq = None if self.features is None else self.features.pow(2).sum(1)

    def __len__(self) -> int:
        return len(self.train)

    def embed(self, images: torch.Tensor, space: str) -> torch.Tensor:
        """Images (Q, 1, 28, 28) in [0, 1] -> their vectors (Q, D) in `space`."""
        if space == "pixels":
            return images.float().flatten(1)
        if space == "features":
            if self.classifier is None:
                raise ValueError("feature-space search needs the evaluation classifier; this index has none")
            return features(self.classifier, images)
        raise ValueError(f"unknown space {space!r}; choose one of {', '.join(SPACES)}")

    def search(self, images: torch.Tensor, k: int = 5, space: str = "pixels") -> Neighbours:
        """The k nearest training images of each of images (Q, 1, 28, 28)
        (float in [0, 1], Q at most 1,024) in `space` ("pixels" or "features");
        the neighbours themselves are index.train.floats(result.indices[i])."""
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
            raise ValueError(f"images must be a tensor of shape (n, 1, 28, 28), got "
                             f"{tuple(getattr(images, 'shape', ())) or type(images).__name__}")
        if not 1 <= len(images) <= MAX_SAMPLES:   # a bounded request: the UI's grids hold at most 100
            raise ValueError(f"search from 1 to {MAX_SAMPLES} images at a time, got {len(images)}")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= min(len(self), 100):
            raise ValueError(f"k must be a whole number from 1 to {min(len(self), 100)}, got {k!r}")
        q = self.embed(images, space)
        refs, sq = (self.pixels, self.pixel_sq) if space == "pixels" else (self.features, self.feature_sq)
        d, i = knn(q, refs, k, ref_sq=sq)
        return Neighbours(space, i, d, self.train.labels[i])

    def copying(self, images: torch.Tensor, space: str = "pixels") -> dict[str, float]:
        """For a set of images (N, 1, 28, 28): the share whose nearest training
        image is much closer than the second (d1/d2 < 1/3) and the median
        nearest-neighbour distance. Searched 1,000 at a time."""
        d = torch.cat([self.search(images[i:i + 1000], k=2, space=space).distances
                       for i in range(0, len(images), 1000)])
        return {"copy_share": (copy_ratio(d) < COPY_RATIO).float().mean().item(),
                "nn_median": d[:, 0].median().item()}


def main(argv: list[str] | None = None) -> int:
    """`python -m aigc.neighbours`: how long a search takes (the speed table's rows)."""
    import argparse
    import statistics
    import sys
    import time

    from . import load_folder
    from .data import load_dataset
    from .hub import BUNDLED_DIR

    p = argparse.ArgumentParser(prog="python -m aigc.neighbours",
                                description="Time nearest-training-image search: n test images against the training set.")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion"])
    p.add_argument("--n", type=int, default=64, help="queries per search (default 64)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--data-dir", default=None, help="datasets folder (default: $AIGC_DATA_DIR, else ./data)")
    p.add_argument("--cache-dir", default=None, help=f"feature cache (default {default_cache_dir()})")
    args = p.parse_args(argv)
    train, test = load_dataset(args.dataset, True, args.data_dir), load_dataset(args.dataset, False, args.data_dir)
    clf = load_folder(BUNDLED_DIR / f"classifier-{args.dataset}", device="cpu")
    t0 = time.perf_counter()
    index = NeighbourIndex(train, clf, args.cache_dir or default_cache_dir())
    print(f"index of {len(train):,} {args.dataset} training images ready in {time.perf_counter() - t0:.1f} s "
          f"(features from the cache when there), {torch.get_num_threads()} threads", file=sys.stderr)
    q = test.floats(slice(0, args.n))
    print(f"| search: {args.n} images against {len(train):,}, k=5 | median | p90 |\n| --- | ---: | ---: |")
    for space in SPACES:
        index.search(q, 5, space)
        ms = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            index.search(q, 5, space)
            ms.append((time.perf_counter() - t) * 1000)
        ms.sort()
        print(f"| {space} | {statistics.median(ms):.1f} ms | {ms[int(0.9 * (len(ms) - 1))]:.1f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
