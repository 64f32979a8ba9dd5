"""Model cards (README.md with YAML front matter) for checkpoint folders,
built from config.json, history.jsonl and metrics.json."""
from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from .io import read_jsonl

DATASET_IDS = {"mnist": "ylecun/mnist", "fashion": "zalando-datasets/fashion_mnist"}
DATASET_NAMES = {"mnist": "MNIST digits", "fashion": "Fashion-MNIST products"}
FAMILY_NAMES = {"gan": "class-conditional GAN (EMA generator)", "vae": "convolutional VAE",
                "classifier": "evaluation classifier (small CNN)"}


def training_facts(folder: str | Path) -> dict:
    """The facts a card and the demo show, from the files in a checkpoint folder."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    history = read_jsonl(folder / "history.jsonl")
    meta = {}
    if (folder / "training.json").exists():
        meta = json.loads((folder / "training.json").read_text())
    last = history[-1] if history else {}
    return {
        "family": config.get("family", ""),
        "dataset": config.get("dataset", ""),
        "classes": config.get("classes", []),
        "epochs": last.get("epoch", 0),
        "steps": last.get("step", 0),
        "wall_time_s": round(sum(r.get("epoch_time_s", 0.0) for r in history), 1),
        "device": last.get("device", ""),
        "hardware": meta.get("hardware", ""),
        "parameters": meta.get("parameters"),
        "date": meta.get("date", ""),
        "batch_size": meta.get("batch_size"),
        "lr": meta.get("lr"),
        "seed": meta.get("seed"),
    }


def make_card(folder: str | Path, name: str, repo_id: str | None = None) -> ModelCard:
    folder = Path(folder)
    f = training_facts(folder)
    metrics = {}
    if (folder / "metrics.json").exists():
        metrics = json.loads((folder / "metrics.json").read_text())
    grids = sorted((folder / "samples").glob("epoch_*.png")) if (folder / "samples").exists() else []
    data = ModelCardData(library_name="aigc", license="mit", tags=["aigc", f["family"], f["dataset"]],
                         datasets=[DATASET_IDS[f["dataset"]]] if f["dataset"] in DATASET_IDS else None)
    load_line = (f'aigc.load("{name}")' if repo_id is None else
                 f'aigc.load("{name}")  # with AIGC_HUB_REPO={repo_id}')
    minutes = f["wall_time_s"] / 60
    lines = [
        f"# {name}",
        "",
        f"A {FAMILY_NAMES.get(f['family'], f['family'])} trained on {DATASET_NAMES.get(f['dataset'], f['dataset'])} "
        f"(28x28 grayscale, {len(f['classes'])} classes), part of the aigc demo.",
        "",
        "## How to load",
        "",
        "```python",
        "import aigc",
        f"m = {load_line}",
    ]
    if f["family"] in ("gan", "vae"):
        lines += ["x = m.sample(n=64, labels=3, seed=0)  # (64, 1, 28, 28) in [0, 1]"]
    lines += ["```", "", "## Training", "", "| fact | value |", "| --- | --- |",
              f"| dataset | {f['dataset']} |",
              f"| epochs | {f['epochs']} ({f['steps']} steps) |",
              f"| wall time | {minutes:.1f} min |",
              f"| device | {f['device']} |",
              f"| hardware | {f['hardware']} |",
              f"| parameters | {f['parameters']:,} |" if f["parameters"] else "| parameters | |",
              f"| batch size, learning rate, seed | {f['batch_size']}, {f['lr']}, {f['seed']} |",
              f"| date | {f['date']} |", ""]
    if metrics:
        lines += ["## Evaluation", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in metrics.items() if not isinstance(v, (dict, list))]
        lines += [""]
    if grids:
        lines += ["## Samples", "", f"One row per class, from fixed noise, after epoch {f['epochs']}:", "",
                  f"![samples](samples/{grids[-1].name})", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
