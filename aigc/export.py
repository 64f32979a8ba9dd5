"""Labelled synthetic datasets from a generative model.

    python -m aigc.export gan-fashion --n 60000 --out synthetic-fashion                  # Parquet
    python -m aigc.export vae-mnist --n 1000 --out digits --format folder --seed 7        # PNGs + metadata.csv

Two layouts, both readable by Hugging Face `datasets` and by pandas:
- parquet: DIR/train.parquet with columns image (struct {bytes: PNG, path})
  and label (int64), the layout `datasets` writes for an Image and a
  ClassLabel feature (the class names ride in the schema's metadata);
- folder: DIR/images/NNNNNN.png and DIR/metadata.csv (file_name, label,
  class_name), the `imagefolder` layout.
Beside either, DIR/manifest.json: the checkpoint and its source, the commit of
the code (when known), seed, n, per-class counts and sampler settings. The
same checkpoint, seed and n give the same images, byte for byte; the manifest
holds no timestamp, so it is reproducible too.

Classes are balanced (n // K each, the first n % K classes one more), in class
order; the noise of every 1,024 images comes from seed + their block number.
The folder is written whole into a temporary sibling and renamed into place:
a reader never sees half an export.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from . import families
from .data import ImageSet
from .io import atomic_write
from .model import MAX_SAMPLES, GenerativeModel

FORMATS = ("parquet", "folder")
MAX_EXPORT = 1_000_000        # images per export from the CLI
MAX_DOWNLOAD = 1_000          # images per download from the page
DOWNLOAD_FORMATS = ("zip", "parquet")   # ZIP first: the page offers them in this order


def class_counts(n: int, k: int) -> list[int]:
    """n images over k classes as evenly as can be: n // k each, the first n % k one more."""
    return [n // k + (1 if c < n % k else 0) for c in range(k)]


def check_count(n, limit: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
        raise ValueError(f"n must be a whole number from 1 to {limit:,}, got {n!r}")
    return n


def sampler_settings(model: GenerativeModel, temperature: float = 1.0, **sampler) -> dict:
    """The settings that decide the images, for the manifest: temperature and
    (for a multi-step family) steps, guidance and solver with defaults filled in."""
    out = {"temperature": float(temperature)}
    if families.get(model.family).takes_guidance:
        steps, guidance, solver = model.sampler_args(**sampler)
        out.update({"steps": steps, "guidance": guidance, "solver": solver})
    return out


@torch.no_grad()
def generate_set(model: GenerativeModel, n: int, seed: int = 0, labels: int | None = None,
                 temperature: float = 1.0, **sampler) -> ImageSet:
    """n generated images as an ImageSet (uint8, as a PNG would keep them):
    all of class `labels`, or balanced over the classes when None. Blocks of
    1,024 draw their noise from seed + block number."""
    check_count(n, MAX_EXPORT)
    k = len(model.classes)
    if labels is None:
        y = torch.arange(k).repeat_interleave(torch.tensor(class_counts(n, k)))
    else:
        y = torch.full((n,), model.class_index(labels), dtype=torch.long)
    out = [model.sample(n=len(chunk), labels=chunk.tolist(), seed=seed + i, temperature=temperature, **sampler)
           for i, chunk in enumerate(y.split(MAX_SAMPLES))]
    images = torch.cat(out).squeeze(1).mul(255).round().to(torch.uint8)      # (n, 28, 28)
    return ImageSet(images, y, list(model.classes))


def png_bytes(image: torch.Tensor) -> bytes:
    """(28, 28) uint8 -> PNG bytes (grayscale)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image.numpy()).save(buf, format="PNG")   # (28, 28) uint8: mode "L"
    return buf.getvalue()


def file_names(n: int) -> list[str]:
    return [f"{i:06d}.png" for i in range(n)]


def write_parquet(images: ImageSet, path: str | Path) -> None:
    """images -> a Parquet file of image (struct {bytes, path}) and label
    (int64) columns, with `datasets` feature metadata (Image, ClassLabel)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = file_names(len(images))
    image_col = pa.array([{"bytes": png_bytes(img), "path": name} for img, name in zip(images.images, names)],
                         type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    features = {"image": {"_type": "Image"},
                "label": {"names": list(images.classes), "_type": "ClassLabel"}}
    schema = pa.schema([("image", image_col.type), ("label", pa.int64())],
                       metadata={"huggingface": json.dumps({"info": {"features": features}})})
    table = pa.Table.from_arrays([image_col, pa.array(images.labels.tolist(), type=pa.int64())], schema=schema)
    pq.write_table(table, str(path))


def write_folder(images: ImageSet, folder: str | Path) -> None:
    """images -> folder/images/NNNNNN.png and folder/metadata.csv (file_name, label, class_name)."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for img, label, name in zip(images.images, images.labels.tolist(), file_names(len(images))):
        (folder / "images" / name).write_bytes(png_bytes(img))
        rows.append((f"images/{name}", label, images.classes[label]))
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file_name", "label", "class_name"])
        w.writerows(rows)


def manifest(model: GenerativeModel, images: ImageSet, *, checkpoint: str, seed: int, fmt: str,
             settings: dict, commit: str | None) -> dict:
    counts = torch.bincount(images.labels, minlength=len(images.classes)).tolist()
    return {"checkpoint": checkpoint, "source": getattr(model, "source", "") or "", "commit": commit,
            "family": model.family, "dataset": model.dataset, "format": fmt, "seed": seed, "n": len(images),
            "per_class": dict(zip(images.classes, counts)), "sampler": settings,
            "classes": list(images.classes), "labels": "class index into classes",
            "noise": "balanced classes in class order; blocks of 1,024 images draw noise from seed + block number"}


def export_dataset(model: GenerativeModel, n: int, out: str | Path, *, fmt: str = "parquet", seed: int = 0,
                   checkpoint: str = "", commit: str | None = None, overwrite: bool = False,
                   temperature: float = 1.0, **sampler) -> Path:
    """Write n labelled generated images to the folder `out` (see the module
    doc for the layouts) with manifest.json; returns `out`. The folder is
    built beside `out` and renamed into place; an existing non-empty `out`
    is an error unless overwrite."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    check_count(n, MAX_EXPORT)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ValueError(f"{out} already exists and is not empty; choose a new folder or overwrite it")
    settings = sampler_settings(model, temperature, **sampler)
    images = generate_set(model, n, seed, temperature=temperature, **sampler)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        if fmt == "parquet":
            write_parquet(images, tmp / "train.parquet")
        else:
            write_folder(images, tmp)
        info = manifest(model, images, checkpoint=checkpoint, seed=seed, fmt=fmt, settings=settings, commit=commit)
        (tmp / "manifest.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        if out.exists():   # overwrite: move the old one aside first, so `out` is never half of each
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def download_file(model: GenerativeModel, n: int, folder: str | Path, *, seed: int = 0,
                  labels: int | str | None = None, temperature: float = 1.0, fmt: str = "zip",
                  checkpoint: str = "", **sampler) -> Path:
    """One file for a visitor to download: n (1 to 1,000) generated images
    with their labels, all of class `labels` (index or name) or balanced over
    the classes when None. fmt "zip": images/NNNNNN.png, metadata.csv and
    manifest.json; "parquet": the Parquet layout above (the manifest in its
    schema metadata). Written atomically into `folder`; returns the path."""
    if fmt not in DOWNLOAD_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(DOWNLOAD_FORMATS)}")
    check_count(n, MAX_DOWNLOAD)
    settings = sampler_settings(model, temperature, **sampler)
    images = generate_set(model, n, seed, labels=labels, temperature=temperature, **sampler)
    info = manifest(model, images, checkpoint=checkpoint, seed=seed, fmt=fmt, settings=settings, commit=None)
    info["labels_asked"] = "balanced" if labels is None else model.classes[model.class_index(labels)]
    what = "all" if labels is None else f"class{model.class_index(labels)}"
    stem = f"{checkpoint or model.family + '-' + model.dataset}-{what}-n{n}-seed{seed}".replace("/", "_")
    path = Path(folder) / f"{stem}.{fmt}"
    if fmt == "parquet":
        def write(tmp):
            import pyarrow.parquet as pq

            write_parquet(images, tmp)
            table = pq.read_table(tmp)
            meta = {**table.schema.metadata, b"aigc_manifest": json.dumps(info).encode()}
            pq.write_table(table.replace_schema_metadata(meta), tmp)
    else:
        def write(tmp):
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:   # PNGs are compressed already
                table = io.StringIO()
                w = csv.writer(table)
                w.writerow(["file_name", "label", "class_name"])
                for img, label, name in zip(images.images, images.labels.tolist(), file_names(n)):
                    z.writestr(f"images/{name}", png_bytes(img))
                    w.writerow([f"images/{name}", label, images.classes[label]])
                z.writestr("metadata.csv", table.getvalue())
                z.writestr("manifest.json", json.dumps(info, indent=2) + "\n")
    atomic_write(path, write)
    return path


def git_commit(folder: str | Path) -> str | None:
    """The commit checked out in folder's repository, "+dirty" appended when
    tracked files differ from it; None without git or outside a repository."""
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if r.returncode != 0 or not r.stdout.strip():
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() + ("+dirty" if status.returncode == 0 and status.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    from . import load
    from .model import pick_device

    p = argparse.ArgumentParser(prog="python -m aigc.export", description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="a bundled model (gan-mnist, ...) or a checkpoint folder")
    p.add_argument("--n", type=int, required=True, help=f"images to write (1 to {MAX_EXPORT:,})")
    p.add_argument("--out", required=True, help="the folder to write (must not exist or be empty)")
    p.add_argument("--format", default="parquet", choices=FORMATS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=None, help="flow models: solver steps (default: the checkpoint's)")
    p.add_argument("--guidance", type=float, default=None, help="flow models: classifier-free guidance")
    p.add_argument("--solver", default=None, choices=["euler", "midpoint", "heun"], help="flow models: ODE solver")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = p.parse_args(argv)
    try:
        model = load(args.name, device=pick_device(args.device))
        sampler = {k: v for k, v in {"steps": args.steps, "guidance": args.guidance, "solver": args.solver}.items()
                   if v is not None}
        if sampler and not families.get(model.family).takes_guidance:
            raise ValueError(f"--steps, --guidance and --solver are for multi-step samplers; {args.name} is a "
                             f"{families.get(model.family).label}")
        out = export_dataset(model, args.n, args.out, fmt=args.format, seed=args.seed, checkpoint=args.name,
                             commit=git_commit(Path(__file__).resolve().parent), overwrite=args.overwrite,
                             temperature=args.temperature, **sampler)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
