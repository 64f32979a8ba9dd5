"""Bundled example pictures: the first few test-set images of each class,
shipped as 28x28 PNGs in checkpoints/examples/<dataset>/<class>-<k>.png, for
the demo's reconstruct and interpolate tabs (and its reconstruction verdict).

    python -m aigc.examples --data-dir ../shared/datasets
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .data import DATASETS, ImageSet, load_dataset
from .hub import BUNDLED_DIR
from .io import atomic_write

EXAMPLES_DIR = BUNDLED_DIR / "examples"
PER_CLASS = 3
NAME = re.compile(r"^(\d+)-(\d+)\.png$")   # <class index>-<k>.png


@dataclass(frozen=True)
class Example:
    path: Path
    label: int   # class index
    k: int       # which example of its class, from 0


def write_examples(images: ImageSet, out: str | Path, per_class: int = PER_CLASS) -> list[Path]:
    """The first `per_class` images of each class, in the set's order -> PNGs in out/."""
    out = Path(out)
    written = []
    for c in range(len(images.classes)):
        idx = (images.labels == c).nonzero().flatten()[:per_class]
        if len(idx) < per_class:
            raise ValueError(f"class {images.classes[c]!r} has only {len(idx)} images; {per_class} wanted")
        for k, i in enumerate(idx.tolist()):
            img = Image.fromarray(images.images[i].numpy(), mode="L")      # (28, 28) uint8
            path = out / f"{c}-{k}.png"
            atomic_write(path, lambda tmp, img=img: img.save(tmp, format="PNG", optimize=True))
            written.append(path)
    return written


def list_examples(dataset: str, folder: str | Path = EXAMPLES_DIR) -> list[Example]:
    """The examples of a dataset, ordered so the first of every class come first."""
    folder = Path(folder) / dataset
    found = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = NAME.match(p.name)
            if m:
                found.append(Example(p, int(m.group(1)), int(m.group(2))))
    return sorted(found, key=lambda e: (e.k, e.label))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aigc.examples", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, help="datasets folder (default: $AIGC_DATA_DIR, else ./data)")
    p.add_argument("--out", default=str(EXAMPLES_DIR), help="writes <out>/<dataset>/<class>-<k>.png")
    p.add_argument("--per-class", type=int, default=PER_CLASS)
    args = p.parse_args(argv)
    try:
        for dataset in DATASETS:
            paths = write_examples(load_dataset(dataset, train=False, data_dir=args.data_dir),
                                   Path(args.out) / dataset, args.per_class)
            print(f"{dataset}: {len(paths)} examples in {Path(args.out) / dataset}")
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
