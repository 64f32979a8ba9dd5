"""Model cards (README.md with YAML front matter) for checkpoint folders,
built from config.json, history.jsonl and metrics.json; and the card of a Hub
repo that holds several of them (`python -m aigc.publish`)."""
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
        "phases": meta.get("phases", []),
    }


def schedule_text(phases: list[dict], epochs: int) -> str:
    """'epochs 1-30: lr 0.001; epochs 31-40: lr 0.001, iw_samples 5' (the
    learning rate of each stretch of a resumed run, and the model arguments
    it changed)."""
    parts = []
    for i, p in enumerate(phases):
        last = phases[i + 1]["from_epoch"] - 1 if i + 1 < len(phases) else epochs
        before = phases[i - 1]["model_kwargs"] if i else p["model_kwargs"]
        args = "".join(f", {k} {v}" for k, v in p["model_kwargs"].items() if before.get(k) != v)
        parts.append(f"epochs {p['from_epoch']}-{last}: lr {p['lr']}{args}")
    return "; ".join(parts)


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
                 f'aigc.load("{name}", hub_repo="{repo_id}")  # the demo: python app.py --hub-repo {repo_id}')
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
              f"| date | {f['date']} |"]
    if len(f["phases"]) > 1:
        lines += [f"| schedule | {schedule_text(f['phases'], f['epochs'])} |"]
    lines += [""]
    if metrics:
        lines += ["## Evaluation", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in metrics.items() if not isinstance(v, (dict, list))]
        lines += [""]
    if grids:
        lines += ["## Samples", "", f"One row per class, from fixed noise, after epoch {f['epochs']}:", "",
                  f"![samples](samples/{grids[-1].name})", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


# ---- cards for the Hub (python -m aigc.publish) ------------------------------------
BOOKKEEPING = {"epoch", "step", "device", "time", "epoch_time_s", "images_per_s"}


def sample_grid(folder: str | Path) -> Path | None:
    """The latest fixed-noise grid, samples/epoch_NNN.png (zero-padded: name order is epoch order)."""
    grids = sorted((Path(folder) / "samples").glob("epoch_*.png"))
    return grids[-1] if grids else None


def evaluation(folder: str | Path) -> tuple[str, dict]:
    """(where from, {metric: number}): metrics.json from `python -m aigc.evaluate`
    when present, else the last epoch's numbers in history.jsonl (losses and
    the quick per-epoch quality check)."""
    folder = Path(folder)
    if (folder / "metrics.json").exists():
        metrics = json.loads((folder / "metrics.json").read_text())
        return "evaluation (metrics.json)", {k: v for k, v in metrics.items()
                                             if isinstance(v, (int, float)) and not isinstance(v, bool)}
    history = read_jsonl(folder / "history.jsonl")
    last = history[-1] if history else {}
    return (f"last epoch ({last.get('epoch', 0)}, history.jsonl)",
            {k: v for k, v in last.items() if k not in BOOKKEEPING and isinstance(v, (int, float))})


def _number(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def make_hub_model_card(folder: str | Path, name: str, repo_id: str) -> ModelCard:
    """make_card, plus the last epoch's numbers when there is no metrics.json
    (make_card shows metrics.json only): the card of one model's subfolder."""
    text = str(make_card(folder, name, repo_id))
    where, metrics = evaluation(folder)
    if metrics and not (Path(folder) / "metrics.json").exists():
        text = text.rstrip("\n") + "\n\n" + "\n".join(
            [f"## Numbers at the {where}", "", "| metric | value |", "| --- | --- |"]
            + [f"| {k} | {_number(v)} |" for k, v in metrics.items()]) + "\n"
    return ModelCard(text)


def make_repo_card(folders: dict[str, Path], repo_id: str, revision: str = "main") -> ModelCard:
    """The README of a Hub repo holding several models, one per subfolder:
    a summary table, then for each model its samples, how to load it, its
    training facts and its metrics. `folders`: {name: checkpoint folder}."""
    facts = {name: training_facts(folder) for name, folder in folders.items()}
    datasets = sorted({DATASET_IDS[f["dataset"]] for f in facts.values() if f["dataset"] in DATASET_IDS})
    tags = ["aigc", "image-generation"] + sorted({f["family"] for f in facts.values()}) \
        + sorted({f["dataset"] for f in facts.values()})
    data = ModelCardData(library_name="aigc", license="mit", tags=tags, datasets=datasets or None)
    spec = repo_id if revision == "main" else f"{repo_id}@{revision}"
    first = next(iter(folders), "gan-mnist")
    lines = [
        "# aigc models", "",
        "Class-conditional GANs and VAEs on MNIST digits and Fashion-MNIST products (28x28 grayscale), "
        "the models of the aigc demo. Each model is a folder: `config.json` (its constructor arguments), "
        "`model.safetensors` (the weights), `history.jsonl` (one line per epoch), `training.json`, "
        "`metrics.json` (when evaluated), the latest sample grid and its own `README.md`.", "",
        "## How to load", "",
        "```python",
        "import aigc",
        f'm = aigc.load("{first}", hub_repo="{spec}")  # pin a commit with "{repo_id}@<sha>"',
        "x = m.sample(n=64, labels=3, seed=0)  # (64, 1, 28, 28) in [0, 1]",
        "print(m.source)                       # hub:" + repo_id + "@<commit sha>",
        "```", "",
        f"The demo: `python app.py --hub-repo {spec}` (or `AIGC_HUB_REPO={spec}`). Only `config.json` and "
        "`model.safetensors` are downloaded, into the Hugging Face cache; when the Hub cannot serve a model "
        "the demo uses its bundled copy and says why.", "",
        "## Models", "",
        "| model | kind | dataset | epochs | numbers |", "| --- | --- | --- | --- | --- |",
    ]
    for name, folder in folders.items():
        f = facts[name]
        _, metrics = evaluation(folder)
        summary = ", ".join(f"{k} {_number(v)}" for k, v in metrics.items()) or "-"
        lines.append(f"| [{name}]({name}/README.md) | {FAMILY_NAMES.get(f['family'], f['family'])} | "
                     f"{DATASET_NAMES.get(f['dataset'], f['dataset'])} | {f['epochs']} | {summary} |")
    for name, folder in folders.items():
        f = facts[name]
        grid = sample_grid(folder)
        where, metrics = evaluation(folder)
        lines += ["", f"## {name}", ""]
        if grid is not None:
            lines += [f"![{name} samples]({name}/samples/{grid.name})", "",
                      f"One row per class, from fixed noise, after epoch {f['epochs']}.", ""]
        lines += ["```python", f'm = aigc.load("{name}", hub_repo="{spec}")', "```", "",
                  "| training fact | value |", "| --- | --- |",
                  f"| epochs | {f['epochs']} ({f['steps']} steps) |",
                  f"| wall time | {f['wall_time_s'] / 60:.1f} min on {f['device'] or '?'} ({f['hardware'] or '?'}) |",
                  f"| parameters | {f['parameters']:,} |" if f["parameters"] else "| parameters | |",
                  f"| batch size, learning rate, seed | {f['batch_size']}, {f['lr']}, {f['seed']} |",
                  f"| date | {f['date']} |"]
        if metrics:
            lines += ["", f"| {where} | value |", "| --- | --- |"]
            lines += [f"| {k} | {_number(v)} |" for k, v in metrics.items()]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")
