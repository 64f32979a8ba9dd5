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


def family_description(name: str) -> str:
    from .families import FAMILIES   # the registry imports every model module: only when a card is made

    return FAMILIES[name].description if name in FAMILIES else name


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
        "processes": processes_text(history),
    }


def processes_text(history: list[dict]) -> str:
    """'2 processes on 1 device (cpu)', or per stretch of epochs when a resumed
    run changed them: 'epochs 1-2: 2 processes on ...; epoch 3: 1 process on ...'
    (rows from before torchrun training came from one process)."""
    def one(r: dict) -> str:
        p, d = r.get("processes", 1), r.get("devices", 1)
        kind = str(r.get("device", "?")).split(":")[0]
        return f"{p} process{'es' if p > 1 else ''} on {d} device{'s' if d > 1 else ''} ({kind})"

    stretches: list[list] = []   # [first epoch, last epoch, text]
    for r in history:
        text = one(r)
        if stretches and stretches[-1][2] == text:
            stretches[-1][1] = r.get("epoch", 0)
        else:
            stretches.append([r.get("epoch", 0), r.get("epoch", 0), text])
    if len(stretches) == 1:
        return stretches[0][2]
    return "; ".join(f"epoch{'s' if a != b else ''} {a}{f'-{b}' if a != b else ''}: {t}" for a, b, t in stretches)


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
        f"A {family_description(f['family'])} trained on {DATASET_NAMES.get(f['dataset'], f['dataset'])} "
        f"(28x28 grayscale, {len(f['classes'])} classes), part of the aigc demo.",
        "",
        "## How to load",
        "",
        "```python",
        "import aigc",
        f"m = {load_line}",
    ]
    if f["family"] != "classifier":
        lines += ["x = m.sample(n=64, labels=3, seed=0)  # (64, 1, 28, 28) in [0, 1]"]
    lines += ["```", "", "## Training", "", "| fact | value |", "| --- | --- |",
              f"| dataset | {f['dataset']} |",
              f"| epochs | {f['epochs']} ({f['steps']} steps) |",
              f"| wall time | {minutes:.1f} min |",
              f"| device | {f['device']} |",
              f"| processes | {f['processes']} |",
              f"| hardware | {f['hardware']} |",
              f"| parameters | {f['parameters']:,} |" if f["parameters"] else "| parameters | |",
              f"| batch size, learning rate, seed | {f['batch_size']}, {f['lr']}, {f['seed']} |",
              f"| date | {f['date']} |"]
    if len(f["phases"]) > 1:
        lines += [f"| schedule | {schedule_text(f['phases'], f['epochs'])} |"]
    lines += [""] + sampling_text(json.loads((folder / "config.json").read_text()))
    if metrics:
        lines += ["## Evaluation", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in metrics.items() if not isinstance(v, (dict, list))]
        lines += [""] + evaluation_notes(metrics)
    curve = time_to_quality(folder)
    if curve:
        lines += ["## Time to quality", "",
                  "The per-epoch check (2,000 samples against 2,000 test images, judged by the evaluation "
                  "classifier) against the training time so far:", "",
                  "| wall time (min) | epoch | Frechet distance | class accuracy |", "| ---: | ---: | ---: | ---: |"]
        lines += [f"| {m:.1f} | {e} | {fd:.4g} | {acc} |" for m, e, fd, acc in curve]
        lines += [""]
    if grids:
        lines += ["## Samples", "", f"One row per class, from fixed noise, after epoch {f['epochs']}:", "",
                  f"![samples](samples/{grids[-1].name})", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def sampling_text(config: dict) -> list[str]:
    """A flow model's sampler defaults, from its config.json, as card lines ([] for the others)."""
    if "default_steps" not in config:
        return []
    lo, hi = config.get("guidance_interval", (0.0, 1.0))
    text = (f"By default: {config['default_steps']} {config['default_solver']} steps, classifier-free guidance "
            f"{config['default_guidance']:g} for t in [{lo:g}, {hi:g}] (t = 0 is the noise, 1 the picture)")
    if config.get("critic_candidates", 1) > 1:
        text += (f"; a picture whose class the model's own critic (a small classifier of real pictures, "
                 f"{config['critic_ch']} channels) rates below {config['critic_threshold']:g} is drawn again from "
                 f"other noise, up to {config['critic_candidates']} draws, keeping the best-rated one")
    return ["## Sampling", "", text + ". `m.sample(..., steps=, guidance=, solver=)` changes them per call.", ""]


def evaluation_notes(m: dict) -> list[str]:
    """Plain-language lines under the evaluation table: coverage, copying and
    the worth of the samples as training data, each beside what real data reaches."""
    lines = []
    if "precision" in m and "recall_real" in m:
        lines += [f"- Coverage (improved precision/recall, k={m.get('pr_k', 3)}, on the evaluation classifier's "
                  f"features, against the test images): precision {m['precision']}, recall {m['recall']}; "
                  f"real training images reach {m['precision_real']} and {m['recall_real']}. Low recall means "
                  "missing variety (mode collapse)."]
    if "copy_share" in m and "copy_share_real" in m:
        lines += [f"- Copying: {100 * m['copy_share']:.2f}% of {m.get('frechet_samples', 10000):,} samples have a "
                  f"nearest training image much closer than the second (distance ratio under 1/3, pixel space; "
                  f"real test images: {100 * m['copy_share_real']:.2f}%). Median distance to the nearest training "
                  f"image: {m.get('nn_distance')} for samples, {m.get('nn_distance_real')} for test images "
                  "(Euclidean, pixels in [0, 1]); a model that copies sits well below the test images."]
    if "cas" in m and "cas_real" in m:
        lines += [f"- As training data (Classification Accuracy Score): a classifier trained on "
                  f"{m.get('cas_train_images', 60000):,} generated images scores {m['cas']} on the real test set; "
                  f"the same recipe trained on real images, {m['cas_real']} ({m.get('cas_epochs')} epochs each)."]
    return lines + [""] if lines else []


def time_to_quality(folder: str | Path) -> list[tuple[float, int, float, float | str]]:
    """(minutes of training so far, epoch, Frechet distance, class accuracy)
    for each epoch that measured its quality (history.jsonl)."""
    rows, minutes = [], 0.0
    for r in read_jsonl(Path(folder) / "history.jsonl"):
        minutes += r.get("epoch_time_s", 0.0) / 60
        if isinstance(r.get("frechet"), (int, float)):
            rows.append((minutes, r["epoch"], r["frechet"], r.get("class_accuracy", "")))
    return rows


# ---- cards for the Hub (python -m aigc.publish) ------------------------------------
BOOKKEEPING = {"epoch", "step", "device", "time", "epoch_time_s", "images_per_s", "processes", "devices"}


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
        "Class-conditional GANs, VAEs and flow-matching models on MNIST digits and Fashion-MNIST products (28x28 grayscale), "
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
        lines.append(f"| [{name}]({name}/README.md) | {family_description(f['family'])} | "
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
