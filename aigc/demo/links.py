"""Links that reproduce a result: a tab's inputs in the page's address,
read back when the page opens. Every picture is drawn from its seed, so the
address is all there is; nothing is kept on the server.

    ?tab=sample&lang=zh&family=flow&dataset=fashion&class=Bag&count=8&seed=42&temperature=0.8&steps=12&guidance=2.5
    ?tab=interpolate&lang=en&mode=classes&family=gan&dataset=mnist&seed_a=1&class_a=3&class_b=8&path=linear&steps=16
    ?tab=compare&lang=en&dataset=mnist&class=every+class&count=4&seed=0

A training run's checkpoint (checkpoint=run:<name>, run=run:<name>) is in
the link only when one is picked: it exists on this server alone. A value
that is missing or cannot be used falls back to the page's default, and the
page says which in a short notice; the page never fails to open.
"""
from __future__ import annotations

import math
from urllib.parse import urlencode

import gradio as gr

from ..data import class_names
from ..guard import short
from .catalog import Catalog
from .common import (BUNDLED_CHOICE, DATASETS, ENCODERS, EVERY_CLASS, GUIDANCE, INTERPOLATIONS, MAX_COUNT, MAX_SEED,
                     PATHS, SAMPLER_STEPS, STEPS, choices)
from .compare import MAX_COMPARE, NO_RUN, CompareTab
from .i18n import DEFAULT, Problem, language, say
from .interpolate import InterpolateTab
from .sample import SampleTab

TABS = ("sample", "interpolate", "reconstruct", "compare", "train-status")   # the page's tab ids
TEMPERATURE = (0.05, 2.0)
# The page's starting values (app.py builds its widgets with them); a class default is an
# index into the dataset's classes, so it holds for digits and clothing alike.
SAMPLE_DEFAULTS = {"family": "gan", "dataset": "mnist", "class": EVERY_CLASS, "count": 8, "seed": 0,
                   "temperature": 1.0}
INTERPOLATE_DEFAULTS = {"mode": "seeds", "family": "gan", "dataset": "mnist", "seed_a": 1, "seed_b": 2,
                        "class_a": 3, "class_b": 8, "path": "spherical", "steps": 16}
COMPARE_DEFAULTS = {"dataset": "mnist", "class": EVERY_CLASS, "count": 4, "seed": 0}
# What each tab's link holds: the order of its *_link's parameters and of open_link's outputs.
SAMPLE_FIELDS = ("family", "dataset", "class", "count", "seed", "temperature", "checkpoint", "steps", "guidance")
INTERPOLATE_FIELDS = ("mode", "family", "dataset", "seed_a", "seed_b", "class_a", "class_b", "path", "steps",
                      "checkpoint")
COMPARE_FIELDS = ("dataset", "class", "count", "seed", "run")
# Open_link's outputs: the language switch and state, the tabs, then each tab's fields and results.
SAMPLE_RESULTS, INTERPOLATE_RESULTS, COMPARE_RESULTS = 1, 2, 2

# The page's js after a link is made: the address bar's page with the link's query, into the
# clipboard where the browser allows it, and shown in full either way.
ABSOLUTE_JS = """(query) => {
    if (!query) return [query];
    const url = new URL(query, window.location.href).toString();
    try { navigator.clipboard.writeText(url).catch(() => {}); } catch (e) {}
    return [url];
}"""


def number(value) -> str:
    """A number as the link writes it: whole ones without a point, others
    exactly (repr: the shortest text that reads back as the same float, so
    the picture drawn from it is the same to the last bit)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def read_int(raw, lo: int, hi: int) -> int | None:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        return None
    return int(v) if math.isfinite(v) and v.is_integer() and lo <= v <= hi else None


def read_number(raw, lo: float, hi: float) -> float | None:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and lo <= v <= hi else None


class Reader:
    """One link's query, read field by field: each value checked, the
    default taken for what is missing or unusable, and each of those noted."""

    def __init__(self, query: dict[str, str], lang: str):
        self.query, self.lang = query, lang
        self.problems: list[str] = []

    def get(self, name: str, read, default, required: bool = True):
        raw = self.query.get(name)
        if raw is None:
            if required:
                self.problems.append(say(self.lang, "msg.link.missing", name=name))
            return default
        value = read(raw)
        if value is None:
            self.problems.append(f"{name}={short(raw, 30)}")
            return default
        return value

    def choice(self, name: str, allowed, default, required: bool = True):
        return self.get(name, lambda raw: raw if raw in allowed else None, default, required)


class Links:
    """Makes each tab's link from its inputs, and opens a link: the tab
    picked, its inputs set, its result drawn as the sender saw it."""

    def __init__(self, catalog: Catalog, sample_tab: SampleTab, interpolate_tab: InterpolateTab,
                 compare_tab: CompareTab):
        self.catalog, self.sample_tab, self.interpolate_tab, self.compare_tab = (catalog, sample_tab,
                                                                                 interpolate_tab, compare_tab)

    # ---- making a link ------------------------------------------------------------
    @staticmethod
    def _query(tab: str, lang, values: dict) -> gr.Textbox:
        pairs = [("tab", tab), ("lang", language(lang))]
        pairs += [(k, number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v))
                  for k, v in values.items() if v not in (None, "")]
        return gr.Textbox(value="?" + urlencode(pairs), visible=True)

    def sample_link(self, family, dataset, class_name, count, seed, temperature, checkpoint=BUNDLED_CHOICE,
                    steps=None, guidance=None, *, lang: str = DEFAULT) -> gr.Textbox:
        """The Sample tab's inputs -> the link's query ("?tab=sample&..."); a
        flow model's steps and guidance only when Flow is picked."""
        flow = family == "flow"
        return self._query("sample", lang, {
            "family": family, "dataset": dataset, "class": class_name, "count": count, "seed": seed,
            "temperature": temperature, "steps": steps if flow else None, "guidance": guidance if flow else None,
            "checkpoint": None if checkpoint == BUNDLED_CHOICE else checkpoint})

    def interpolate_link(self, mode, family, dataset, seed_a, seed_b, class_a, class_b, path, steps,
                         checkpoint=BUNDLED_CHOICE, *, lang: str = DEFAULT) -> gr.Textbox:
        """The Interpolate tab's inputs -> the link's query: the fields the
        mode uses (two pictures cannot be put in a link)."""
        return self._query("interpolate", lang, {
            "mode": mode, "family": family, "dataset": dataset,
            "seed_a": seed_a if mode != "images" else None, "seed_b": seed_b if mode == "seeds" else None,
            "class_a": class_a if mode != "images" else None, "class_b": class_b if mode == "classes" else None,
            "path": path, "steps": steps, "checkpoint": None if checkpoint == BUNDLED_CHOICE else checkpoint})

    def compare_link(self, dataset, class_name, count, seed, run=NO_RUN, *, lang: str = DEFAULT) -> gr.Textbox:
        """The Compare tab's inputs -> the link's query."""
        return self._query("compare", lang, {"dataset": dataset, "class": class_name, "count": count, "seed": seed,
                                             "run": run or None})

    # ---- opening a link -----------------------------------------------------------
    def open_link(self, lang, request: gr.Request):
        """The page opens -> (the language switch, the language state, the
        tab, then every linked widget of Sample, Interpolate and Compare and
        their results; gr.skip() for all a link does not touch). lang: the
        page's first language (the page's js: ?lang=, else the browser's)."""
        lang = language(lang)
        query = dict(request.query_params) if request is not None else {}
        skip = gr.skip()
        sample = (skip,) * (len(SAMPLE_FIELDS) + SAMPLE_RESULTS)
        interpolate = (skip,) * (len(INTERPOLATE_FIELDS) + INTERPOLATE_RESULTS)
        compare = (skip,) * (len(COMPARE_FIELDS) + COMPARE_RESULTS)
        tab = query.get("tab")
        selected = skip
        reader = Reader(query, lang)
        notes = []
        if tab is not None:
            if tab not in TABS:
                reader.problems.append(f"tab={short(tab, 30)}")
            else:
                selected = gr.Tabs(selected=tab)
            try:
                if tab == "sample":
                    sample = self._open_sample(reader)
                elif tab == "interpolate":
                    interpolate = self._open_interpolate(reader, notes)
                elif tab == "compare":
                    compare = self._open_compare(reader)
            except Problem as e:    # the settings are right but this server cannot draw the result
                notes.append(e.say(lang))
            except gr.Error as e:   # the same, said by a handler in the page's language
                notes.append(e.message)
        if reader.problems:
            notes.insert(0, say(lang, "msg.link.reset", fields=", ".join(reader.problems)))
        if notes:
            gr.Warning(" ".join(notes), title=say(lang, "msg.link.title"))
        return (lang, lang, selected, *sample, *interpolate, *compare)

    def _family(self, reader: Reader, allowed: dict, defaults: dict):
        """(family, dataset) of a model this server has; allowed: the families the tab offers;
        defaults: the tab's."""
        default = defaults["family"] if defaults["family"] in allowed.values() else next(iter(allowed.values()))
        family = reader.choice("family", allowed.values(), default)
        dataset = reader.choice("dataset", DATASETS.values(), defaults["dataset"])
        if (family, dataset) not in self.catalog.models:   # a family this server has only for the other dataset
            reader.problems.append(f"family={family}")
            family = next((f for f in allowed.values() if (f, dataset) in self.catalog.models), family)
        return family, dataset

    def _checkpoint(self, reader: Reader, family: str, dataset: str) -> str:
        values = [v for _, v in self.catalog.checkpoint_choices(family, dataset)]
        return reader.choice("checkpoint", values, BUNDLED_CHOICE, required=False)

    def _open_sample(self, reader: Reader) -> tuple:
        d, lang = SAMPLE_DEFAULTS, reader.lang
        family, dataset = self._family(reader, self.catalog.families(), d)
        names = class_names(dataset)
        class_name = reader.choice("class", [EVERY_CLASS, *names], d["class"])
        count = reader.get("count", lambda r: read_int(r, 1, MAX_COUNT), d["count"])
        seed = reader.get("seed", lambda r: read_int(r, 0, MAX_SEED), d["seed"])
        temperature = reader.get("temperature", lambda r: read_number(r, *TEMPERATURE), d["temperature"])
        checkpoint = self._checkpoint(reader, family, dataset)
        steps = guidance = gr.skip()
        if family == "flow":
            model = self.catalog.model(family, dataset, checkpoint)
            steps = reader.get("steps", lambda r: read_int(r, *SAMPLER_STEPS), model.default_steps)
            guidance = reader.get("guidance", lambda r: read_number(r, *GUIDANCE), model.default_guidance)
        picture = self.sample_tab.sample(family, dataset, class_name, count, seed, temperature, checkpoint,
                                         None if family != "flow" else steps, None if family != "flow" else guidance,
                                         progress=lambda *a, **k: None, lang=lang)
        return (family, dataset, gr.Dropdown(choices=Catalog.class_choices(dataset, every=True), value=class_name),
                count, seed, temperature,
                gr.Dropdown(choices=self.catalog.checkpoint_choices(family, dataset, lang), value=checkpoint),
                steps, guidance, picture)

    def _open_interpolate(self, reader: Reader, notes: list[str]) -> tuple:
        d, lang = INTERPOLATE_DEFAULTS, reader.lang
        mode = reader.choice("mode", INTERPOLATIONS.values(), d["mode"])
        families = self.catalog.families()
        allowed = {k: v for k, v in ENCODERS.items() if v in families.values()} if mode == "images" else families
        family, dataset = self._family(reader, allowed, d)
        names = class_names(dataset)
        seed_a = reader.get("seed_a", lambda r: read_int(r, 0, MAX_SEED), d["seed_a"], mode != "images")
        seed_b = reader.get("seed_b", lambda r: read_int(r, 0, MAX_SEED), d["seed_b"], mode == "seeds")
        class_a = reader.choice("class_a", names, names[d["class_a"]], mode != "images")
        class_b = reader.choice("class_b", names, names[d["class_b"]], mode == "classes")
        path = reader.choice("path", PATHS.values(), d["path"])
        steps = reader.get("steps", lambda r: read_int(r, *STEPS), d["steps"])
        checkpoint = self._checkpoint(reader, family, dataset)
        results = (gr.skip(), gr.skip())
        if mode == "images":   # the pictures themselves are not in the link
            notes.append(say(lang, "msg.link.pictures"))
        else:
            results = self.interpolate_tab.interpolate(mode, family, dataset, seed_a, seed_b, class_a, class_b, None,
                                                       None, path, steps, checkpoint, progress=lambda *a, **k: None,
                                                       lang=lang)
        class_choices = Catalog.class_choices(dataset)
        return (mode, gr.Radio(choices=choices(allowed, "family"), value=family), dataset, seed_a, seed_b,
                gr.Dropdown(choices=class_choices, value=class_a), gr.Dropdown(choices=class_choices, value=class_b),
                path, steps, gr.Dropdown(choices=self.catalog.checkpoint_choices(family, dataset, lang),
                                         value=checkpoint), *results)

    def _open_compare(self, reader: Reader) -> tuple:
        d, lang = COMPARE_DEFAULTS, reader.lang
        dataset = reader.choice("dataset", DATASETS.values(), d["dataset"])
        class_name = reader.choice("class", [EVERY_CLASS, *class_names(dataset)], d["class"])
        count = reader.get("count", lambda r: read_int(r, 1, MAX_COMPARE), d["count"])
        seed = reader.get("seed", lambda r: read_int(r, 0, MAX_SEED), d["seed"])
        runs = self.compare_tab.compare_runs(dataset, lang)
        run = reader.choice("run", [v for _, v in runs], NO_RUN, required=False)
        gallery, table = self.compare_tab.compare(dataset, class_name, count, seed, run,
                                                  progress=lambda *a, **k: None, lang=lang)
        return (dataset, gr.Dropdown(choices=Catalog.class_choices(dataset, every=True), value=class_name), count,
                seed, gr.Dropdown(choices=runs, value=run), gallery, table)
