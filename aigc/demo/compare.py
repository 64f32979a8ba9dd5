"""The Compare tab: every family's model on the same dataset, class and seed,
side by side, each captioned with its measured quality and cost; a chart of
quality against speed for all the demo's checkpoints; a training run's
checkpoint can join the comparison."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from ..families import FAMILIES as REGISTRY
from ..model import GenerativeModel
from .catalog import Catalog
from .common import BUNDLED_CHOICE, DATASETS, EVERY_CLASS, FAMILIES, RUN_PREFIX, check_choice, check_int, friendly
from .sample import SampleTab

MAX_COMPARE = 16         # pictures per class and model in a comparison
SPEED_BATCH = 64         # the batch whose time gives "ms per image" (as aigc.bench's sample(64))
NO_RUN = ""              # the run picker's "no run" value


def params(model: GenerativeModel) -> int:
    """Parameters of the served network (a GAN's generator, not its critic)."""
    return sum(p.numel() for p in model.parameters())


def read_metrics(model: GenerativeModel) -> dict:
    """The metrics.json beside a model's weights (aigc.evaluate), {} when the
    model came from somewhere without one (the Hub, memory)."""
    source = getattr(model, "source", "") or ""
    kind, _, where = source.partition(":")
    if kind not in ("bundled", "local", "run") or not where:
        return {}
    try:
        return json.loads((Path(where) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def last_epoch(model: GenerativeModel) -> dict:
    """A training run's last history row (its per-epoch quick check)."""
    source = getattr(model, "source", "") or ""
    try:
        lines = (Path(source.partition(":")[2]) / "history.jsonl").read_text().splitlines()
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}


def caption(name: str, model: GenerativeModel, metrics: dict, ms: float, quick: dict | None = None) -> str:
    """One line: what was measured for this checkpoint, and how."""
    parts = [name]
    if metrics.get("class_accuracy") is not None:
        parts.append(f"class accuracy {metrics['class_accuracy']:.1%}")
    if metrics.get("frechet_ratio") is not None:
        parts.append(f"Frechet {metrics['frechet_ratio']:.1f}x floor")
    if metrics.get("precision") is not None and metrics.get("recall") is not None:
        parts.append(f"precision {metrics['precision']:.2f} / recall {metrics['recall']:.2f}")
    if quick:   # a run's quick check: fewer samples, so not on the same scale as the 10,000-sample numbers
        if quick.get("class_accuracy") is not None:
            parts.append(f"class accuracy {quick['class_accuracy']:.1%} (quick check)")
        if quick.get("frechet") is not None:
            parts.append(f"Frechet {quick['frechet']:.1f} (quick check)")
    if len(parts) == 1:
        parts.append("not evaluated")
    parts += [f"{ms:.1f} ms per image", f"{params(model) / 1e6:.2f}M parameters"]
    return " · ".join(parts)


def _percent(v: float | None) -> str | None:
    return None if v is None else f"{v:.1%}"


class CompareTab:
    def __init__(self, catalog: Catalog, sample_tab: SampleTab):
        self.catalog = catalog
        self.sample_tab = sample_tab
        self._speed: dict[int, float] = {}   # model token -> ms per image on this server
        self._speed_lock = threading.Lock()

    def speed(self, model: GenerativeModel) -> float:
        """ms per image of sample(SPEED_BATCH) on this server, measured once per
        model (after a small warm-up call) at its default sampler settings."""
        token = self.catalog.token(model)
        with self._speed_lock:   # one measurement at a time: two at once would time each other
            if token not in self._speed:
                model.sample(4, labels=0, seed=0)
                t0 = time.perf_counter()
                model.sample(SPEED_BATCH, labels=0, seed=0)
                self._speed[token] = (time.perf_counter() - t0) * 1000 / SPEED_BATCH
            return self._speed[token]

    def compare_runs(self, dataset: str) -> list[tuple[str, str]]:
        """The run picker's choices: no run, then every finished or stopped run on `dataset`."""
        dataset = check_choice(dataset, DATASETS, "dataset")
        choices = [("none", NO_RUN)]
        for label, family in FAMILIES.items():
            choices += [(f"{name} ({label})", value) for name, value in
                        self.catalog.checkpoint_choices(family, dataset) if value != BUNDLED_CHOICE]
        return choices

    def compare_run_picker(self, dataset: str) -> gr.Dropdown:
        return gr.Dropdown(choices=self.compare_runs(dataset), value=NO_RUN)

    @friendly
    def compare(self, dataset: str, class_name: str, count: int, seed: int, run: str = NO_RUN,
                progress=gr.Progress()) -> tuple[list[tuple[str, str]], str]:
        """Every loaded family (and, optionally, one training run) on the same
        dataset, class and seed -> (gallery items [(PNG path, caption)], a
        Markdown table of the same numbers and more)."""
        dataset = check_choice(dataset, DATASETS, "dataset")
        n = check_int(count, 1, MAX_COMPARE, "How many")
        entries = [(REGISTRY[f].label, f, BUNDLED_CHOICE) for f in FAMILIES.values()
                   if (f, dataset) in self.catalog.models]
        if run not in (None, NO_RUN):
            family = self._run_family(run, dataset)
            entries.append((f"your run {run[len(RUN_PREFIX):]}", family, run))
        items, rows = [], []
        for i, (name, family, checkpoint) in enumerate(entries):
            progress(i / len(entries), desc=f"{name}: drawing")
            model = self.catalog.model(family, dataset, checkpoint)
            png = self.sample_tab.sample(family, dataset, class_name, n, seed, 1.0, checkpoint)
            metrics = read_metrics(model) if checkpoint == BUNDLED_CHOICE else {}
            quick = last_epoch(model) if checkpoint != BUNDLED_CHOICE else None
            ms = self.speed(model)
            items.append((png, caption(name, model, metrics, ms, quick)))
            rows.append(self._row(name, model, metrics, ms, quick))
        return items, self._table(rows)

    def _run_family(self, run: str, dataset: str) -> str:
        for value, family in ((v, f) for f in FAMILIES.values()
                              for _, v in self.catalog.checkpoint_choices(f, dataset)):
            if value == run:
                return family
        names = [v for _, v in self.compare_runs(dataset)[1:]] or ["(none has finished an epoch yet)"]
        raise gr.Error(f"No finished or stopped run called {str(run)[:60]!r} on {dataset}; choose one of: "
                       f"{', '.join(names)}.")

    @staticmethod
    def _row(name: str, model: GenerativeModel, metrics: dict, ms: float, quick: dict | None) -> dict:
        steps = getattr(model, "default_steps", None)
        passes = 1 if steps is None else steps * (2 if getattr(model, "default_solver", "") == "midpoint" else 1)
        return {"checkpoint": name, "network passes": passes, "ms per image": round(ms, 2),
                "parameters": params(model),
                "class accuracy": _percent(metrics.get("class_accuracy", (quick or {}).get("class_accuracy"))),
                "Frechet / floor": metrics.get("frechet_ratio"),
                "precision": metrics.get("precision"), "recall": metrics.get("recall"),
                "copies (d1/d2 < 1/3)": metrics.get("copy_share"),
                "nearest training image, median (test images)":
                    None if metrics.get("nn_distance") is None else
                    f"{metrics['nn_distance']:.2f} ({metrics.get('nn_distance_real', float('nan')):.2f})",
                "CAS (real data)": None if metrics.get("cas") is None else
                    f"{metrics['cas']:.1%} ({metrics.get('cas_real', float('nan')):.1%})"}

    @staticmethod
    def _table(rows: list[dict]) -> str:
        cols = list(rows[0])

        def cell(v):
            if v is None:
                return "–"
            if isinstance(v, float) and v <= 1.0:
                return f"{v:.2f}"
            if isinstance(v, int) and v > 10_000:
                return f"{v / 1e6:.2f}M"
            return str(v)

        lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        lines += ["| " + " | ".join(cell(r[c]) for c in cols) + " |" for r in rows]
        return "\n".join(lines) + (
            "\n\nClass accuracy, Frechet distance (as a multiple of the real-data floor), precision and recall, "
            "copies, nearest-neighbour distances and CAS: `python -m aigc.evaluate` on 10,000 samples, from each "
            "checkpoint's metrics.json. ms per image: `sample(64)` timed on this server when first asked. "
            "Network passes: per picture, at the default settings (a flow model's guidance adds a batch, not a pass).")

    def quality_speed(self) -> pd.DataFrame:
        """The chart's points: every loaded checkpoint's Frechet/floor (its
        metrics.json) against its ms per image on this server."""
        rows = []
        for (family, dataset), model in sorted(self.catalog.models.items()):
            ratio = read_metrics(model).get("frechet_ratio")
            if ratio is not None:
                rows.append({"ms per image": round(self.speed(model), 2), "Frechet / floor": ratio,
                             "family": REGISTRY[family].label, "checkpoint": f"{family}-{dataset}"})
        return pd.DataFrame(rows, columns=["ms per image", "Frechet / floor", "family", "checkpoint"])

    @staticmethod
    def compare_classes(dataset: str) -> gr.Dropdown:
        return gr.Dropdown(choices=Catalog.class_choices(check_choice(dataset, DATASETS, "dataset"), every=True),
                           value=EVERY_CLASS)
