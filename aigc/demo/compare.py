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
from .common import BUNDLED_CHOICE, DATASETS, FAMILIES, RUN_PREFIX, check_choice, check_int, friendly
from .i18n import DEFAULT, Problem, Text, say, ui
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


def caption(name: str, model: GenerativeModel, metrics: dict, ms: float, quick: dict | None = None,
            lang: str = DEFAULT) -> str:
    """One line: what was measured for this checkpoint, and how."""
    parts = [name]
    if metrics.get("class_accuracy") is not None:
        parts.append(say(lang, "msg.caption.accuracy", v=metrics["class_accuracy"]))
    if metrics.get("frechet_ratio") is not None:
        parts.append(say(lang, "msg.caption.frechet_ratio", v=metrics["frechet_ratio"]))
    if metrics.get("precision") is not None and metrics.get("recall") is not None:
        parts.append(say(lang, "msg.caption.precision_recall", p=metrics["precision"], r=metrics["recall"]))
    if quick:   # a run's quick check: fewer samples, so not on the same scale as the 10,000-sample numbers
        if quick.get("class_accuracy") is not None:
            parts.append(say(lang, "msg.caption.quick_accuracy", v=quick["class_accuracy"]))
        if quick.get("frechet") is not None:
            parts.append(say(lang, "msg.caption.quick_frechet", v=quick["frechet"]))
    if len(parts) == 1:
        parts.append(say(lang, "msg.caption.not_evaluated"))
    parts += [say(lang, "msg.caption.ms", v=ms), say(lang, "msg.caption.parameters", v=params(model) / 1e6)]
    return " · ".join(parts)


def _percent(v: float | None) -> str | None:
    return None if v is None else f"{v:.1%}"


# The comparison table's columns: each row's key, and its heading's words.
COLUMNS = {"checkpoint": "msg.column.checkpoint", "network passes": "msg.column.passes",
           "ms per image": "msg.column.ms", "parameters": "msg.column.parameters",
           "class accuracy": "msg.column.accuracy", "Frechet / floor": "msg.column.frechet_ratio",
           "precision": "msg.column.precision", "recall": "msg.column.recall",
           "copies (d1/d2 < 1/3)": "msg.column.copies",
           "nearest training image, median (test images)": "msg.column.nearest",
           "CAS (real data)": "msg.column.cas"}


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

    def compare_runs(self, dataset: str, lang: str = DEFAULT) -> list[tuple]:
        """The run picker's choices: no run, then every finished or stopped run on `dataset`."""
        dataset = check_choice(dataset, DATASETS, Text("msg.what.dataset"))
        choices = [(ui("ui.compare.no_run"), NO_RUN)]
        for label, family in FAMILIES.items():
            choices += [(f"{name} ({label})", value) for name, value in
                        self.catalog.checkpoint_choices(family, dataset, lang) if value != BUNDLED_CHOICE]
        return choices

    def compare_run_picker(self, dataset: str, current: str | None = NO_RUN, *, lang: str = DEFAULT) -> gr.Dropdown:
        """The run picker for `dataset`: the run picked stays picked while it is one of them."""
        choices = self.compare_runs(dataset, lang)
        return gr.Dropdown(choices=choices, value=current if current in [v for _, v in choices] else NO_RUN)

    @friendly
    def compare(self, dataset: str, class_name: str, count: int, seed: int, run: str = NO_RUN,
                progress=gr.Progress(), *, lang: str = DEFAULT) -> tuple[list[tuple[str, str]], str]:
        """Every loaded family (and, optionally, one training run) on the same
        dataset, class and seed -> (gallery items [(PNG path, caption)], a
        Markdown table of the same numbers and more)."""
        dataset = check_choice(dataset, DATASETS, Text("msg.what.dataset"))
        n = check_int(count, 1, MAX_COMPARE, Text("msg.what.count"))
        entries = [(REGISTRY[f].label, f, BUNDLED_CHOICE) for f in FAMILIES.values()
                   if (f, dataset) in self.catalog.models]
        if run not in (None, NO_RUN):
            family = self._run_family(run, dataset)
            entries.append((say(lang, "msg.compare.your_run", name=run[len(RUN_PREFIX):]), family, run))
        items, rows = [], []
        for i, (name, family, checkpoint) in enumerate(entries):
            progress(i / len(entries), desc=say(lang, "msg.progress.compare", name=name))
            model = self.catalog.model(family, dataset, checkpoint)
            # its own progress would speak over this one's: the sample is one step of the comparison
            png = self.sample_tab.sample(family, dataset, class_name, n, seed, 1.0, checkpoint,
                                         progress=lambda *a, **k: None, lang=lang)
            metrics = read_metrics(model) if checkpoint == BUNDLED_CHOICE else {}
            quick = last_epoch(model) if checkpoint != BUNDLED_CHOICE else None
            ms = self.speed(model)
            items.append((png, caption(name, model, metrics, ms, quick, lang)))
            rows.append(self._row(name, model, metrics, ms, quick))
        return items, self._table(rows, lang)

    def _run_family(self, run: str, dataset: str) -> str:
        for value, family in ((v, f) for f in FAMILIES.values()
                              for _, v in self.catalog.checkpoint_choices(f, dataset)):
            if value == run:
                return family
        names = [v for _, v in self.compare_runs(dataset)[1:]]
        raise Problem("msg.error.no_run" if names else "msg.error.no_runs_yet", run=repr(str(run)[:60]),
                      dataset=dataset, names=", ".join(names))

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
    def _table(rows: list[dict], lang: str = DEFAULT) -> str:
        cols = list(rows[0])

        def cell(v):
            if v is None:
                return "–"
            if isinstance(v, float) and v <= 1.0:
                return f"{v:.2f}"
            if isinstance(v, int) and v > 10_000:
                return f"{v / 1e6:.2f}M"
            return str(v)

        lines = ["| " + " | ".join(say(lang, COLUMNS[c]) for c in cols) + " |", "|" + " --- |" * len(cols)]
        lines += ["| " + " | ".join(cell(r[c]) for c in cols) + " |" for r in rows]
        return "\n".join(lines) + "\n\n" + say(lang, "msg.compare.footnote")

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
