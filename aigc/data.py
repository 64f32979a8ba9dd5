"""Datasets, class names and the data-directory rule.

Images are held in memory as one uint8 tensor (N, 28, 28); batches are sliced
and scaled on the fly, so the training loop does no per-image Python work.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

DATA_DIR_ENV = "AIGC_DATA_DIR"
DEFAULT_DATA_DIR = "./data"

DATASETS = {
    "mnist": [str(i) for i in range(10)],
    "fashion": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}


def check_dataset(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return name


def class_names(dataset: str) -> list[str]:
    return list(DATASETS[check_dataset(dataset)])


def resolve_data_dir(data_dir: str | None = None) -> tuple[str, bool]:
    """Return (directory, may_download): an explicit dir or $AIGC_DATA_DIR is
    used as given; only the default ./data downloads, as torchvision does."""
    if data_dir:
        return data_dir, False
    if os.environ.get(DATA_DIR_ENV):
        return os.environ[DATA_DIR_ENV], False
    return DEFAULT_DATA_DIR, True


@dataclass
class ImageSet:
    """28x28 grayscale images held in memory."""
    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def floats(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        """(B, 1, 28, 28) float32 in [0, 1]."""
        x = self.images if idx is None else self.images[idx]
        return x.unsqueeze(1).float().div_(255.0)


def load_dataset(name: str, train: bool = True, data_dir: str | None = None,
                 download: bool | None = None) -> ImageSet:
    """Load MNIST ("mnist") or Fashion-MNIST ("fashion") through torchvision."""
    from torchvision import datasets

    check_dataset(name)
    root, may_download = resolve_data_dir(data_dir)
    if download is None:
        download = may_download
    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    try:
        ds = cls(root, train=train, download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found..." or a failed download
        raise FileNotFoundError(
            f"{cls.__name__} ({'train' if train else 'test'} split) was not found in "
            f"{os.path.abspath(root)!r} and could not be downloaded ({e}). "
            f"Point --data-dir or ${DATA_DIR_ENV} at a folder holding {cls.__name__}/raw/, "
            f"or leave both unset to download into {DEFAULT_DATA_DIR}."
        ) from None
    except OSError as e:  # network errors while downloading
        raise FileNotFoundError(
            f"could not download {cls.__name__} into {os.path.abspath(root)!r}: {e}. "
            f"Set --data-dir or ${DATA_DIR_ENV} to a folder that already holds it."
        ) from None
    return ImageSet(ds.data.clone(), ds.targets.clone().long(), class_names(name))
