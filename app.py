"""The aigc demo: draw new pictures, morph between them, redraw your own, and
watch the models learn.

    python app.py                 # http://127.0.0.1:7860
    python app.py --share         # and a public link (training from the page off)

Runs unchanged as a Hugging Face Space (sdk: gradio, app_file: app.py). This
file is layout and event wiring only; the handlers are in aigc/demo/, the
page's words in aigc/demo/locales/ (English and Simplified Chinese).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
import torch
from PIL import Image
from starlette.middleware import Middleware

import aigc
from aigc.demo import (BUNDLED_CHOICE, CLEANUP_STRENGTH, DATASETS, DOWNLOAD_FORMATS, ENCODERS, FAMILIES, GUIDANCE,
                       INTERPOLATIONS, MAX_COMPARE, MAX_DOWNLOAD, NEIGHBOUR_SPACES, MAX_COUNT, MAX_SEED, PATHS,
                       SAMPLER_STEPS, STEPS, Studio, choices, plain_errors, plain_upload_errors, serving_threads)
from aigc.demo import i18n, links
from aigc.demo.i18n import LANGUAGES, ui
from aigc.examples import EXAMPLES_DIR
from aigc.guard import (MB, FairQueue, Guard, Limits, ResultCache, guard_sketchpad, remove_empty_dirs,
                        short_errors)
from aigc.hub import BUNDLED, BUNDLED_DIR, check_identity
from aigc.runs import MAX_BATCH, MAX_EPOCHS, RunManager
from aigc.families import FAMILIES as REGISTRY

THEME = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],   # no web fonts: works offline
                       font_mono=["ui-monospace", "monospace"])
CSS = """
.pixelated img { image-rendering: pixelated; }  /* upscaled pixels stay square when the browser resizes */
.run-bar { height: 14px; border-radius: 7px; overflow: hidden; background: var(--neutral-200); }
.run-bar > div { height: 100%; background: var(--color-accent); transition: width 1s; }
.run-live[data-state="failed"] .run-bar > div, .run-live[data-state="interrupted"] .run-bar > div
    { background: var(--error-text-color, #b91c1c); }
.run-live p { margin: 6px 0 0; }
#lang-switch { align-self: flex-start; }
#sources details { margin-top: 4px; }
"""
SKETCH_SHEET = {"background": Image.new("RGBA", (280, 280), "white"), "layers": [], "composite": None}
TICK_S = 3               # the training tab refreshes this often while a run is live
COMPUTE = "compute"      # the events that run models or read pictures share one line and its workers


def explain(tab: str) -> None:
    """A tab's "What am I looking at?": a few sentences for someone new to all this, closed at first."""
    with gr.Accordion(ui("ui.explain.title"), open=False, elem_id=f"explain-{tab}"):
        gr.Markdown(ui(f"ui.explain.{tab}"))


def build_demo(models, *, checkpoints_dir=BUNDLED_DIR, examples_dir=EXAMPLES_DIR,
               concurrency: int | None = None, runs: RunManager | None = None,
               allow_training: bool = False, limits: Limits = Limits(), data_dir: str | None = None,
               label_fonts: dict | None = None) -> gr.Blocks:
    """The page, from loaded models (GenerativeModels, one per family and
    dataset). checkpoints_dir: the training folders the train-status tab reads.
    runs: the training runs (listed in the train-status tab, their checkpoints
    in the model pickers); allow_training: visitors may start, stop and resume them.
    limits: what one visitor may take (aigc.guard; `launch` applies the rest).
    data_dir: the training images, for "Show the closest training images".
    label_fonts: {language: font} for words drawn into pictures (None: a
    Chinese font found on this machine; aigc/demo/lettering.py)."""
    studio = Studio(models, checkpoints_dir=checkpoints_dir, examples_dir=examples_dir, runs=runs,
                    allow_training=allow_training, results=ResultCache(limits.cache_entries), data_dir=data_dir,
                    label_fonts=label_fonts)
    workers = serving_threads(concurrency)[0]
    compute = dict(concurrency_id=COMPUTE, concurrency_limit=workers)
    digits = studio.class_choices("mnist")
    families = studio.catalog.families()                      # the families with a model loaded
    encoders = {k: v for k, v in ENCODERS.items() if v in families.values()}
    flow = ("flow", "mnist") in studio.models
    sd, idf, cd = links.SAMPLE_DEFAULTS, links.INTERPOLATE_DEFAULTS, links.COMPARE_DEFAULTS

    def flow_defaults(dataset):   # the flow checkpoint's own steps and guidance
        m = studio.models.get(("flow", dataset))
        return (m.default_steps, m.default_guidance) if m is not None else (4, 2.0)
    checkpoints = studio.checkpoint_names()
    pixelated = ["pixelated"]
    has_runs = runs is not None

    def picker(family, dataset):   # a model picker: the demo's model, then runs of that family and dataset
        # allow_custom_value: the choices grow as runs finish, after the page was built
        return gr.Dropdown(studio.checkpoint_choices(family, dataset), value=BUNDLED_CHOICE,
                           label=ui("ui.checkpoint.label"), visible=has_runs, allow_custom_value=True)

    def copy_link(tab):   # a tab's "Copy link" button and the link it makes
        with gr.Row():
            button = gr.Button(ui("ui.link.copy"), size="sm", scale=0, min_width=140, elem_id=f"{tab}-link-go")
            box = gr.Textbox(label=ui("ui.link.label"), interactive=False, visible=False, buttons=["copy"],
                             max_lines=2, scale=4, elem_id=f"{tab}-link")
        return button, box

    # Uploads and results are deleted file_ttl_s after their last use, checked every third of that.
    with gr.Blocks(title="aigc studio", analytics_enabled=False,
                   delete_cache=(max(60, limits.file_ttl_s // 3), limits.file_ttl_s)) as demo:
        # The page's language: the switch shows it, the State hands it to every handler (inputs_kwargs
        # lang=...); an API call keeps the State's start value, English.
        lang = gr.State(i18n.DEFAULT)
        in_lang = {"lang": lang}
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                gr.Markdown(ui("ui.header"), elem_id="header")
            lang_switch = gr.Radio([(name, code) for code, name in LANGUAGES.items()], value=i18n.DEFAULT,
                                   show_label=False, container=False, scale=0, min_width=240, elem_id="lang-switch")
        gr.Markdown(ui("ui.sources"), elem_id="sources")
        with gr.Tabs() as tabs:
            # ---- layout: sample ------------------------------------------------
            with gr.Tab(ui("ui.tab.sample"), id="sample") as s_tab:
                explain("sample")
                with gr.Row():
                    with gr.Column(scale=1):
                        s_family = gr.Radio(choices(families, "family"), value=sd["family"],
                                            label=ui("ui.sample.model"))
                        s_dataset = gr.Radio(choices(DATASETS, "dataset"), value=sd["dataset"],
                                             label=ui("ui.sample.dataset"))
                        s_ckpt = picker(sd["family"], sd["dataset"])
                        s_class = gr.Dropdown(studio.class_choices("mnist", every=True), value=sd["class"],
                                              label=ui("ui.sample.class"), allow_custom_value=True)
                        s_count = gr.Slider(1, MAX_COUNT, value=sd["count"], step=1, label=ui("ui.sample.count"))
                        with gr.Row():
                            s_seed = gr.Number(sd["seed"], precision=0, minimum=0, maximum=MAX_SEED,
                                               label=ui("ui.sample.seed"), scale=3)
                            s_dice = gr.Button(ui("ui.sample.random_seed"), scale=1)
                        s_temp = gr.Slider(*links.TEMPERATURE, value=sd["temperature"], step=0.05,
                                           label=ui("ui.sample.temperature"))
                        # A flow model's sampler: shown while Flow is picked.
                        with gr.Group(visible=False, elem_id="flow-controls") as s_flow:
                            s_steps = gr.Slider(*SAMPLER_STEPS, value=flow_defaults("mnist")[0], step=1,
                                                label=ui("ui.sample.steps"))
                            s_guidance = gr.Slider(*GUIDANCE, value=flow_defaults("mnist")[1], step=0.25,
                                                   label=ui("ui.sample.guidance"))
                        s_go = gr.Button(ui("ui.sample.generate"), variant="primary", elem_id="sample-go")
                        s_path_go = gr.Button(ui("ui.sample.path_go"), visible=False, elem_id="sample-path-go")
                    with gr.Column(scale=2):
                        first = studio.sample(sd["family"], sd["dataset"], sd["class"], sd["count"], sd["seed"],
                                              sd["temperature"]) \
                            if ("gan", "mnist") in studio.models else None   # the page opens with pictures
                        s_out = gr.Image(first, label=ui("ui.sample.out"),
                                         type="filepath", interactive=False,
                                         buttons=["download", "fullscreen"], elem_classes=pixelated,
                                         height=640, elem_id="sample-out")
                        s_link_go, s_link = copy_link("sample")
                        with gr.Row(visible=False) as s_path:
                            s_path_strip = gr.Image(label=ui("ui.sample.path_strip"),
                                                    type="filepath", interactive=False, elem_classes=pixelated,
                                                    buttons=["download", "fullscreen"], elem_id="sample-path-strip",
                                                    scale=2)
                            s_path_gif = gr.Image(label=ui("ui.sample.path_gif"), type="filepath",
                                                  interactive=False, elem_classes=pixelated, buttons=["download"],
                                                  elem_id="sample-path-gif", scale=1)
                        # Is it copying? The grid above, each picture beside its nearest training images.
                        with gr.Accordion(ui("ui.closest.title"), open=False, elem_id="closest-controls"):
                            s_space = gr.Radio(choices(NEIGHBOUR_SPACES, "space"), value="pixels",
                                               label=ui("ui.closest.space"), info=ui("ui.closest.space_info"))
                            s_near_go = gr.Button(ui("ui.closest.go"), elem_id="closest-go")
                            s_near_words = gr.Markdown(elem_id="closest-words")
                            s_near = gr.Image(label=ui("ui.closest.out"),
                                              type="filepath", interactive=False, elem_classes=pixelated,
                                              buttons=["download", "fullscreen"], elem_id="closest-out")
                        # A labelled synthetic dataset to take away (aigc.export).
                        with gr.Accordion(ui("ui.download.title"), open=False, elem_id="download-controls"):
                            with gr.Row():
                                s_dl_count = gr.Number(MAX_DOWNLOAD, precision=0, minimum=1, maximum=MAX_DOWNLOAD,
                                                       label=ui("ui.download.count"))
                                s_dl_fmt = gr.Radio(choices(DOWNLOAD_FORMATS, "format"), value="zip",
                                                    label=ui("ui.download.format"))
                            s_dl_go = gr.Button(ui("ui.download.go"), elem_id="download-go")
                            s_dl_file = gr.File(label=ui("ui.download.file"), elem_id="download-out")

            # ---- layout: interpolate -------------------------------------------
            with gr.Tab(ui("ui.tab.interpolate"), id="interpolate") as i_tab:
                explain("interpolate")
                with gr.Row():
                    with gr.Column(scale=1):
                        i_mode = gr.Radio(choices(INTERPOLATIONS, "mode"), value=idf["mode"],
                                          label=ui("ui.interpolate.mode"))
                        i_family = gr.Radio(choices(families, "family"), value=idf["family"],
                                            label=ui("ui.sample.model"))
                        i_dataset = gr.Radio(choices(DATASETS, "dataset"), value=idf["dataset"],
                                             label=ui("ui.sample.dataset"))
                        i_ckpt = picker(idf["family"], idf["dataset"])
                        with gr.Row() as i_seeds:
                            i_seed_a = gr.Number(idf["seed_a"], precision=0, minimum=0, maximum=MAX_SEED,
                                                 label=ui("ui.interpolate.seed_a"))
                            i_seed_b = gr.Number(idf["seed_b"], precision=0, minimum=0, maximum=MAX_SEED,
                                                 label=ui("ui.interpolate.seed_b"))
                        with gr.Row():
                            i_class_a = gr.Dropdown(digits, value=digits[idf["class_a"]][1],
                                                    label=ui("ui.interpolate.class_a"), allow_custom_value=True)
                            i_class_b = gr.Dropdown(digits, value=digits[idf["class_b"]][1],
                                                    label=ui("ui.interpolate.class_b"), allow_custom_value=True,
                                                    visible=False)
                        with gr.Column(visible=False) as i_images:
                            with gr.Row():
                                i_image_a = plain_upload_errors(gr.Image(
                                    type="filepath", image_mode=None, label=ui("ui.interpolate.picture_a"),
                                    height=180, sources=["upload", "clipboard"]))
                                i_image_b = plain_upload_errors(gr.Image(
                                    type="filepath", image_mode=None, label=ui("ui.interpolate.picture_b"),
                                    height=180, sources=["upload", "clipboard"]))
                            # Test pictures of classes 0 and 1, 2 and 3, ... of each dataset
                            pairs = [[d, *studio.example_paths(d, 10)[i:i + 2]] for d in DATASETS.values()
                                     for i in range(0, 10, 2)]
                            gr.Examples(pairs, [i_dataset, i_image_a, i_image_b], label=ui("ui.interpolate.examples"),
                                        visible_columns=[1, 2], api_name="example_pair", api_visibility="private")
                        i_path = gr.Radio(choices(PATHS, "path"), value=idf["path"], label=ui("ui.interpolate.path"))
                        i_steps = gr.Slider(*STEPS, value=idf["steps"], step=1, label=ui("ui.interpolate.steps"))
                        i_go = gr.Button(ui("ui.interpolate.go"), variant="primary", elem_id="interpolate-go")
                    with gr.Column(scale=2):
                        i_strip = gr.Image(label=ui("ui.interpolate.frames"), type="filepath", interactive=False,
                                           buttons=["download", "fullscreen"], elem_classes=pixelated,
                                           elem_id="interpolate-strip")
                        i_gif = gr.Image(label=ui("ui.interpolate.gif"), type="filepath", interactive=False,
                                         buttons=["download"], elem_classes=pixelated, height=260,
                                         elem_id="interpolate-gif")
                        i_link_go, i_link = copy_link("interpolate")

            # ---- layout: reconstruct -------------------------------------------
            with gr.Tab(ui("ui.tab.reconstruct"), id="reconstruct") as r_tab:
                explain("reconstruct")
                with gr.Row():
                    with gr.Column(scale=1):
                        r_family = gr.Radio(choices(encoders, "family"), value="vae", label=ui("ui.sample.model"),
                                            info=ui("ui.reconstruct.family_info"))
                        r_dataset = gr.Radio(choices(DATASETS, "dataset"), value="mnist",
                                             label=ui("ui.reconstruct.dataset"))
                        r_ckpt = picker("vae", "mnist")
                        with gr.Tabs():
                            with gr.Tab(ui("ui.reconstruct.upload")) as r_upload_tab:
                                r_image = plain_upload_errors(gr.Image(
                                    type="filepath", image_mode=None, label=ui("ui.reconstruct.picture"), height=240,
                                    sources=["upload", "clipboard"]))
                                r_go = gr.Button(ui("ui.reconstruct.go"), variant="primary", elem_id="reconstruct-go")
                            with gr.Tab(ui("ui.reconstruct.draw")) as r_draw_tab:
                                # A white sheet as background: with it the brush is ready at once.
                                # guard_sketchpad: checked from the headers, only the composite decoded
                                r_sketch = guard_sketchpad(gr.Sketchpad(
                                    SKETCH_SHEET, type="pil", image_mode="RGBA",
                                    canvas_size=SKETCH_SHEET["background"].size,
                                    brush=gr.Brush(default_size=20, colors=["#000000"], color_mode="fixed"),
                                    layers=False, label=ui("ui.reconstruct.sketch")), limits)
                                r_go_sketch = gr.Button(ui("ui.reconstruct.go_sketch"), variant="primary",
                                                        elem_id="sketch-go")
                                r_clean_go = gr.Button(ui("ui.reconstruct.clean_go"), visible=flow,
                                                       elem_id="cleanup-go")
                        # The flow model's clean-up (SDEdit): noise the picture part way, then redraw it.
                        with gr.Accordion(ui("ui.cleanup.title"), open=True, visible=flow, elem_id="cleanup-controls"):
                            r_clean_class = gr.Dropdown(digits, value=digits[7][1], label=ui("ui.cleanup.as"),
                                                        allow_custom_value=True)
                            r_strength = gr.Slider(*CLEANUP_STRENGTH, value=0.6, step=0.05,
                                                   label=ui("ui.cleanup.strength"))
                            r_clean_upload = gr.Button(ui("ui.cleanup.upload_go"), elem_id="cleanup-upload-go")
                    with gr.Column(scale=2):
                        r_panels = gr.Image(label=ui("ui.reconstruct.out"), type="filepath",
                                            interactive=False, buttons=["download", "fullscreen"],
                                            elem_classes=pixelated, elem_id="reconstruct-out")
                        r_error = gr.Number(label=ui("ui.reconstruct.error"), interactive=False)
                        r_verdict = gr.Textbox(label=ui("ui.reconstruct.verdict"), interactive=False,
                                               elem_id="reconstruct-verdict")
                r_outputs = [r_panels, r_error, r_verdict]
                r_examples = [gr.Examples([[d, p] for p in studio.example_paths(d, 10)], [r_dataset, r_image],
                                          label=ui(f"ui.reconstruct.examples_{d}"), visible_columns=[1],
                                          api_name=f"example_{d}", api_visibility="private", elem_id=f"examples-{d}")
                              for d in DATASETS.values()]

            # ---- layout: compare -----------------------------------------------
            with gr.Tab(ui("ui.tab.compare"), id="compare") as c_tab:
                explain("compare")
                with gr.Row():
                    with gr.Column(scale=1):
                        c_dataset = gr.Radio(choices(DATASETS, "dataset"), value=cd["dataset"],
                                             label=ui("ui.sample.dataset"))
                        c_class = gr.Dropdown(studio.class_choices("mnist", every=True), value=cd["class"],
                                              label=ui("ui.sample.class"), allow_custom_value=True)
                        c_count = gr.Slider(1, MAX_COMPARE, value=cd["count"], step=1, label=ui("ui.sample.count"))
                        c_seed = gr.Number(cd["seed"], precision=0, minimum=0, maximum=MAX_SEED,
                                           label=ui("ui.sample.seed"))
                        c_run = gr.Dropdown(studio.compare_runs("mnist"), value="", visible=has_runs,
                                            allow_custom_value=True, label=ui("ui.compare.run"))
                        c_go = gr.Button(ui("ui.compare.go"), variant="primary", elem_id="compare-go")
                        c_link_go, c_link = copy_link("compare")
                    with gr.Column(scale=3):
                        c_gallery = gr.Gallery(label=ui("ui.compare.gallery"),
                                               columns=3, object_fit="contain", height=520, elem_id="compare-out",
                                               elem_classes=pixelated, buttons=["download", "fullscreen"])
                c_table = gr.Markdown(elem_id="compare-table")
                c_chart = gr.ScatterPlot(x="ms per image", y="Frechet / floor", color="family",
                                         tooltip=["checkpoint", "ms per image", "Frechet / floor"],
                                         title=ui("ui.compare.chart"), height=300, elem_id="compare-chart")

            # ---- layout: train status ------------------------------------------
            with gr.Tab(ui("ui.tab.train"), id="train-status") as t_tab:
                explain("train")
                with gr.Row():
                    t_name = gr.Dropdown(checkpoints, value=checkpoints[0] if checkpoints else None,
                                         label=ui("ui.train.checkpoint_runs") if has_runs
                                         else ui("ui.checkpoint.label"), allow_custom_value=True, scale=3,
                                         elem_id="train-name")
                    t_refresh = gr.Button(ui("ui.train.refresh"), scale=1)
                t_live = gr.HTML(elem_id="train-live", visible=has_runs)
                with gr.Accordion(ui("ui.train.title"), open=True, visible=studio.allow_training,
                                  elem_id="train-controls"):
                    with gr.Row():
                        t_family = gr.Radio(choices(FAMILIES, "family"), value="gan", label=ui("ui.sample.model"))
                        t_dataset = gr.Radio(choices(DATASETS, "dataset"), value="mnist",
                                             label=ui("ui.sample.dataset"))
                        t_run_name = gr.Textbox(studio.suggest_run_name(), label=ui("ui.train.run_name"), max_lines=1,
                                                info=ui("ui.train.run_name_info"), elem_id="train-run-name")
                    with gr.Row():
                        t_epochs = gr.Slider(1, MAX_EPOCHS, value=5, step=1, label=ui("ui.train.epochs"))
                        t_batch = gr.Number(REGISTRY["gan"].batch_size, precision=0, minimum=1, maximum=MAX_BATCH,
                                            label=ui("ui.train.batch"))
                        t_lr = gr.Number(REGISTRY["gan"].lr, minimum=1e-6, maximum=1.0, label=ui("ui.train.lr"))
                    with gr.Row():
                        t_start = gr.Button(ui("ui.train.start"), variant="primary", elem_id="train-start")
                        t_stop = gr.Button(ui("ui.train.stop"), variant="stop", elem_id="train-stop")
                        t_resume = gr.Button(ui("ui.train.resume"), elem_id="train-resume")
                    t_message = gr.Markdown(elem_id="train-message")
                gr.Markdown(ui("ui.train.off"), visible=has_runs and not studio.allow_training, elem_id="train-off")
                with gr.Row():
                    curves = dict(x="epoch", y="value", color="series", height=260, x_axis_format="~g",
                                  y_axis_format="~g")   # axis titles: axis_titles() below
                    t_loss = gr.LinePlot(title=ui("ui.train.losses"), **curves)
                    t_fractions = gr.LinePlot(title=ui("ui.train.accuracy"), y_lim=[0, 1], **curves)
                    t_others = gr.LinePlot(title=ui("ui.train.others"), **curves)
                with gr.Row():
                    with gr.Column():
                        t_epoch = gr.Slider(1, 2, value=1, step=1, label=ui("ui.train.epoch"), visible=False)
                        # The /train_grid endpoint's epoch: the slider's range is this page's, and an
                        # API caller may ask for any epoch the checkpoint has.
                        t_grid_epoch = gr.Number(visible=False, label="epoch")
                        t_grid_api = gr.Button(visible=False)
                        t_grid = gr.Image(label=ui("ui.train.grid"), type="pil",
                                          format="png", interactive=False, elem_classes=pixelated,
                                          height=440, elem_id="train-grid")
                    with gr.Column():
                        t_facts = gr.Markdown()
                        t_metrics = gr.Markdown()
                with gr.Accordion(ui("ui.train.runs_title"), open=False, visible=has_runs):
                    t_run = gr.JSON(label=ui("ui.train.runs"), elem_id="train-runs")
                t_timer = gr.Timer(TICK_S, active=False)   # on while a run is live (studio.timer_state)
                t_seen = gr.State()   # what the timer last drew: it redraws curves only when they change
                t_outputs = [t_loss, t_fractions, t_others, t_epoch, t_grid, t_facts, t_metrics, t_live, t_run]

        # A number the page cannot read (say "abc" from an API script) gets words, not a bare "Error".
        # These come before any handler, so before the page's language is known: English, as for scripts.
        def num(v):
            return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"

        plain_errors(t_grid_epoch, "The epoch must be a whole number.")
        for number in (s_count, s_seed, s_temp, s_dl_count, c_count, c_seed, i_seed_a, i_seed_b, i_steps,
                       t_epoch, t_epochs, t_batch, t_lr):   # each label is a ui() key: its English words
            plain_errors(number, f"{i18n.EN[number.label.key]} must be a number from {num(number.minimum)} "
                                 f"to {num(number.maximum)}.")

        # ---- wiring --------------------------------------------------------
        # The language: the switch sets the frontend's words and the State; a visitor's own pick
        # goes into the address. Opening the page picks the first language (?lang=, else the
        # browser's) and opens a link's tab, inputs and result (aigc/demo/links.py).
        # Gradio's frontend says an inactive tab's title in a new language only once the title is
        # sent again: each language change sends them all.
        titled = {s_tab: "ui.tab.sample", i_tab: "ui.tab.interpolate", r_tab: "ui.tab.reconstruct",
                  c_tab: "ui.tab.compare", t_tab: "ui.tab.train", r_upload_tab: "ui.reconstruct.upload",
                  r_draw_tab: "ui.reconstruct.draw"}

        def titles():
            return [gr.Tab(label=ui(key)) for key in titled.values()]

        # A plot's axis titles, given as page keys, reach the page untranslated once new data arrive
        # (Gradio 6.31 translates a plot's title, not its axes): they are sent in words instead.
        plots = [t_loss, t_fractions, t_others, c_chart]

        def axis_titles(code):
            def axes(x, y, color):
                return {"x_title": i18n.say(code, x), "color_title": i18n.say(code, color),
                        **({"y_title": i18n.say(code, y)} if y else {})}
            curves = axes("ui.train.epoch_axis", "ui.train.value_axis", "ui.train.series")
            return [gr.LinePlot(**curves), gr.LinePlot(**curves),
                    gr.LinePlot(**axes("ui.train.epoch_axis", None, "ui.train.series")),   # y: distance_plot's
                    gr.ScatterPlot(**axes("ui.compare.ms", "ui.compare.frechet", "ui.compare.family"))]

        lang_switch.change(lambda code: (code, *titles(), *axis_titles(code)), lang_switch, [lang, *titled, *plots],
                           js=i18n.switch_js(), api_visibility="private")
        lang_switch.input(None, lang_switch, None, js=i18n.REMEMBER_JS)
        linked_sample = dict(family=s_family, dataset=s_dataset, steps=s_steps, guidance=s_guidance,
                             checkpoint=s_ckpt, count=s_count, seed=s_seed, temperature=s_temp, **{"class": s_class})
        linked_interpolate = dict(mode=i_mode, family=i_family, dataset=i_dataset, seed_a=i_seed_a, seed_b=i_seed_b,
                                  class_a=i_class_a, class_b=i_class_b, path=i_path, steps=i_steps, checkpoint=i_ckpt)
        linked_compare = dict(dataset=c_dataset, count=c_count, seed=c_seed, run=c_run, **{"class": c_class})
        opened = demo.load(studio.open_link, lang_switch,
                           [lang_switch, lang, tabs, *(linked_sample[f] for f in links.SAMPLE_FIELDS), s_out,
                            *(linked_interpolate[f] for f in links.INTERPOLATE_FIELDS), i_strip, i_gif,
                            *(linked_compare[f] for f in links.COMPARE_FIELDS), c_gallery, c_table],
                           js=i18n.first_language_js(), api_visibility="private")
        opened.then(lambda code: (*titles(), *axis_titles(code)), lang, [*titled, *plots], api_visibility="private")
        # "Copy link": the tab's inputs as a link's query (the handler), then the whole address,
        # copied where the browser allows it (the js).
        for go, make, widgets, fields, box in (
                (s_link_go, studio.sample_link, linked_sample, links.SAMPLE_FIELDS, s_link),
                (i_link_go, studio.interpolate_link, linked_interpolate, links.INTERPOLATE_FIELDS, i_link),
                (c_link_go, studio.compare_link, linked_compare, links.COMPARE_FIELDS, c_link)):
            go.click(make, [widgets[f] for f in fields], box, inputs_kwargs=in_lang, api_visibility="private").then(
                None, box, box, js=links.ABSOLUTE_JS)

        s_inputs = [linked_sample[f] for f in links.SAMPLE_FIELDS]   # the same order as a link's
        s_go.click(studio.sample, s_inputs, s_out, inputs_kwargs=in_lang, api_name="sample", **compute)
        s_near_go.click(studio.closest, [*s_inputs, s_space], [s_near, s_near_words], inputs_kwargs=in_lang,
                        api_name="closest", **compute)
        s_dl_go.click(studio.download, [s_family, s_dataset, s_class, s_dl_count, s_seed, s_temp, s_ckpt, s_steps,
                                        s_guidance, s_dl_fmt], s_dl_file, inputs_kwargs=in_lang, api_name="download",
                      **compute)
        s_path_go.click(studio.sample_path, [s_family, s_dataset, s_class, s_seed, s_temp, s_ckpt, s_steps, s_guidance],
                        [s_path_strip, s_path_gif], inputs_kwargs=in_lang, api_name="sample_path", **compute)
        # Flow picked: its sampler's controls; picked by the visitor (not by a link, which brings its
        # own steps and guidance), at the checkpoint's own defaults.
        s_family.change(lambda f: (gr.Group(visible=f == "flow"), gr.Button(visible=f == "flow"),
                                   gr.Row(visible=f == "flow")), s_family, [s_flow, s_path_go, s_path],
                        api_visibility="private")
        for trigger in (s_family.input, s_dataset.input):
            trigger(lambda d: flow_defaults(d), s_dataset, [s_steps, s_guidance], api_visibility="private")
        # The pickers list runs of the family and dataset chosen; a tab opened afresh lists new runs.
        for trigger in (s_family.change, s_dataset.change, s_tab.select):
            trigger(studio.checkpoint_picker, [s_family, s_dataset, s_ckpt], s_ckpt, inputs_kwargs=in_lang,
                    api_visibility="private")
        s_dice.click(studio.random_seed, None, s_seed, api_visibility="private")
        # A class the new dataset has stays picked (a link sets both at once); otherwise every class.
        s_dataset.change(lambda d, c: studio.class_picker(d, c, every=True), [s_dataset, s_class], s_class,
                         api_visibility="private")

        c_go.click(studio.compare, [linked_compare[f] for f in links.COMPARE_FIELDS], [c_gallery, c_table],
                   inputs_kwargs=in_lang, api_name="compare", **compute)
        c_tab.select(studio.quality_speed, None, c_chart, api_visibility="private", **compute)
        c_dataset.change(lambda d, c: studio.class_picker(d, c, every=True), [c_dataset, c_class], c_class,
                         api_visibility="private")
        for trigger in (c_dataset.change, c_tab.select):
            trigger(studio.compare_run_picker, [c_dataset, c_run], c_run, inputs_kwargs=in_lang,
                    api_visibility="private")

        i_go.click(studio.interpolate, [i_mode, i_family, i_dataset, i_seed_a, i_seed_b, i_class_a, i_class_b,
                                        i_image_a, i_image_b, i_path, i_steps, i_ckpt], [i_strip, i_gif],
                   inputs_kwargs=in_lang, api_name="interpolate", **compute)
        for trigger in (i_family.change, i_dataset.change, i_tab.select):
            trigger(studio.checkpoint_picker, [i_family, i_dataset, i_ckpt], i_ckpt, inputs_kwargs=in_lang,
                    api_visibility="private")
        # Pictures need a model that encodes them: from the GAN, switch to the VAE.
        i_mode.change(lambda m, f: gr.Radio(choices=choices(encoders if m == "images" else families, "family"),
                                            value=f if m != "images" or f in encoders.values() else "vae"),
                      [i_mode, i_family], i_family, api_visibility="private")
        i_dataset.change(lambda d, a, b: (studio.class_picker(d, a, default=idf["class_a"]),
                                          studio.class_picker(d, b, default=idf["class_b"])),
                         [i_dataset, i_class_a, i_class_b], [i_class_a, i_class_b], api_visibility="private")
        # The fields each way of interpolating uses; the others are hidden.
        toggled = [i_seeds, i_seed_b, i_class_a, i_class_b, i_images]
        uses = {"seeds": [i_seeds, i_seed_b, i_class_a],
                "classes": [i_seeds, i_class_a, i_class_b],
                "images": [i_images]}
        i_mode.change(lambda m: [type(c)(visible=any(c is u for u in uses[m])) for c in toggled],
                      i_mode, toggled, api_visibility="private")

        r_inputs = [r_dataset, r_image, r_ckpt, r_family]
        r_go.click(studio.reconstruct, r_inputs, r_outputs, inputs_kwargs=in_lang, api_name="reconstruct", **compute)
        r_image.upload(studio.reconstruct, r_inputs, r_outputs, inputs_kwargs=in_lang, api_visibility="private",
                       **compute)
        r_go_sketch.click(studio.reconstruct_sketch, [r_dataset, r_sketch, r_ckpt, r_family], r_outputs,
                          inputs_kwargs=in_lang, api_visibility="private", **compute)
        r_clean_go.click(studio.cleanup_sketch, [r_dataset, r_sketch, r_clean_class, r_strength], [r_panels, r_verdict],
                         inputs_kwargs=in_lang, api_name="cleanup_sketch", api_visibility="private", **compute)
        for examples in r_examples:   # a click on an example fills in dataset and picture, then reconstructs
            examples.load_input_event.then(studio.reconstruct, r_inputs, r_outputs, inputs_kwargs=in_lang,
                                           api_visibility="private", **compute)
        for trigger in (r_family.change, r_dataset.change, r_tab.select):
            trigger(studio.checkpoint_picker, [r_family, r_dataset, r_ckpt], r_ckpt, inputs_kwargs=in_lang,
                    api_visibility="private")
        r_dataset.change(lambda d, c: studio.class_picker(d, c, default=7), [r_dataset, r_clean_class],
                         r_clean_class, api_visibility="private")
        r_clean_upload.click(studio.cleanup, [r_dataset, r_image, r_clean_class, r_strength], [r_panels, r_verdict],
                             inputs_kwargs=in_lang, api_name="cleanup", **compute)

        t_name.change(studio.train_status, t_name, t_outputs, inputs_kwargs=in_lang, api_name="train_status")
        t_refresh.click(studio.checkpoint_dropdown, t_name, t_name, api_visibility="private").then(
            studio.train_status, t_name, t_outputs, inputs_kwargs=in_lang, api_visibility="private")
        t_epoch.input(studio.train_grid, [t_name, t_epoch], t_grid, inputs_kwargs=in_lang, api_name="train_grid_slider",
                      api_visibility="private", trigger_mode="always_last", **compute)
        t_grid_api.click(studio.train_grid, [t_name, t_grid_epoch], t_grid, inputs_kwargs=in_lang,
                         api_name="train_grid", **compute)
        # Live runs: the bar every tick, curves and grid when an epoch ends; the timer stops when no
        # run is live. show_progress hidden: no loading overlay flashing over the plots every few seconds.
        t_timer.tick(studio.tick, [t_name, t_seen], [t_name, *t_outputs, t_seen, t_timer], inputs_kwargs=in_lang,
                     show_progress="hidden", api_visibility="private")
        # Picking a run fills in its settings, so Resume continues it with them (Epochs: its new total).
        t_name.change(studio.train_settings, t_name, [t_family, t_dataset, t_epochs, t_batch, t_lr],
                      api_visibility="private")
        for trigger in (t_family.input, t_dataset.input):   # the person changed them: that family's defaults
            trigger(lambda f, d: (REGISTRY[f].batch_size, REGISTRY[f].lr, studio.suggest_run_name(f, d)),
                    [t_family, t_dataset], [t_batch, t_lr, t_run_name], api_visibility="private")
        t_start.click(studio.train_start, [t_family, t_dataset, t_epochs, t_batch, t_lr, t_run_name],
                      [t_message, t_name], inputs_kwargs=in_lang, api_name="train_start").success(
            studio.suggest_run_name, [t_family, t_dataset], t_run_name, api_visibility="private").then(
            studio.timer_state, None, t_timer, api_visibility="private")
        t_stop.click(studio.train_stop, t_name, t_message, inputs_kwargs=in_lang, api_name="train_stop")
        t_resume.click(studio.train_resume_page, [t_name, t_epochs], [t_message, t_name], inputs_kwargs=in_lang,
                       api_name="train_resume_page", api_visibility="private").then(
            studio.timer_state, None, t_timer, api_visibility="private")
        # For API scripts, an endpoint of its own: a missing `epochs` means the run's own total, where
        # the button's endpoint would take the Epochs slider's initial value instead.
        gr.api(studio.train_resume, api_name="train_resume")
        if checkpoints or has_runs:
            # Opening the page, once its language is known: pick the run training now, if any, and
            # show where everything stands.
            opened.then(studio.train_open, t_name, [t_name, *t_outputs], inputs_kwargs=in_lang,
                        api_visibility="private")
        if has_runs:   # the timer, only if a run is live
            demo.load(studio.timer_state, None, t_timer, api_visibility="private")
        if studio.allow_training:   # a name no run has taken since the page was built
            demo.load(studio.suggest_run_name, [t_family, t_dataset], t_run_name, api_visibility="private")

    # Run as many requests at once as there are cores and queue the rest: 20 visitors at once wait a
    # little, and none fail. api_open=False: every call goes through the queue (and its fairness).
    demo.queue(default_concurrency_limit=workers, max_size=limits.queue_size, api_open=False)
    short_errors(demo)   # no component's error echoes a visitor's megabytes
    demo.aigc_queue = FairQueue(limits).install(demo)
    demo.aigc_limits = limits
    # The page's words in both languages, with those fixed when the page is built: where the models came from.
    demo.aigc_i18n = i18n.page_i18n({"ui.sources": {code: studio.model_sources(code) for code in LANGUAGES}})
    i18n.english_api_labels(demo)
    return demo


def launch(demo: gr.Blocks, *, host: str | None = None, port: int | None = None, share: bool = False, **kwargs):
    """demo.launch with the page's theme, words and limits (build_demo's,
    aigc.guard in front of every request); returns (app, local_url, share_url)."""
    limits = getattr(demo, "aigc_limits", Limits())
    return demo.launch(server_name=host, server_port=port, share=share, theme=THEME, css=CSS,
                       i18n=getattr(demo, "aigc_i18n", None) or i18n.page_i18n(),
                       max_file_size=limits.upload_bytes, allowed_paths=[str(EXAMPLES_DIR)], footer_links=["api"],
                       app_kwargs={"middleware": [Middleware(Guard, limits=limits)]}, **kwargs)


def load_models(*, device: str = "auto", hub_repo: str | None = None, hub_strict: bool = False,
                checkpoint_dir: str | None = None) -> list:
    """The four bundled models, each loaded once; from checkpoint_dir/<name> when given."""
    models = []
    for name in BUNDLED:
        target = str(Path(checkpoint_dir) / name) if checkpoint_dir else name
        if checkpoint_dir:   # a GAN in vae-mnist/, or digits in gan-fashion/, is an error, not a surprise
            check_identity(name, target)
        models.append(aigc.load(target, device, hub_repo=None if checkpoint_dir else hub_repo,
                                hub_strict=hub_strict))
    return models


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python app.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="address to listen on (0.0.0.0: every network interface)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    p.add_argument("--hub-repo", default=os.environ.get("AIGC_HUB_REPO") or None,
                   help="Hugging Face repo (ORG/NAME[@revision]) to load the models from first "
                        "(default: $AIGC_HUB_REPO; else the bundled checkpoints)")
    p.add_argument("--hub-strict", action="store_true", default=os.environ.get("AIGC_HUB_STRICT") == "1",
                   help="fail instead of falling back to the bundled checkpoints (default: $AIGC_HUB_STRICT=1)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="load <dir>/gan-mnist etc. and show <dir>'s training folders instead of the bundled ones")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--concurrency", type=int, default=None,
                   help="requests run at once (default: CPU cores, at least 2); "
                        "torch gets cores/concurrency threads each")
    p.add_argument("--runs-dir", default="runs",
                   help="where training runs started from the page live, one folder each (default: ./runs)")
    p.add_argument("--allow-training", action=argparse.BooleanOptionalAction, default=None,
                   help="let visitors start, stop and resume training runs (default: on for a local launch, "
                        "off with --share or on a Hugging Face Space, so a public page cannot take the CPU)")
    p.add_argument("--train-max-images", type=int, default=None, metavar="N",
                   help="runs from the page train on the first N training images only (quick demos on a small CPU)")
    p.add_argument("--data-dir", default=None,
                   help="datasets folder for training runs (default: $AIGC_DATA_DIR, else ./data with download)")
    d = Limits()
    p.add_argument("--max-upload-mb", type=float, default=d.upload_bytes / MB, metavar="MB",
                   help=f"largest upload (default {d.upload_bytes / MB:g})")
    p.add_argument("--client-disk-mb", type=float, default=d.client_disk_bytes / MB, metavar="MB",
                   help=f"what one client's uploads may hold on disk at once (default {d.client_disk_bytes / MB:g})")
    p.add_argument("--disk-mb", type=float, default=d.total_disk_bytes / MB, metavar="MB",
                   help=f"uploads and results on disk in all; the oldest go first (default {d.total_disk_bytes / MB:g})")
    p.add_argument("--session-jobs", type=int, default=d.session_jobs, metavar="N",
                   help=f"requests one page may have waiting or running (default {d.session_jobs})")
    p.add_argument("--client-jobs", type=int, default=d.client_jobs, metavar="N",
                   help=f"requests one client address may have waiting or running (default {d.client_jobs})")
    p.add_argument("--refusal-delay", type=float, default=d.refusal_delay_s, metavar="S",
                   help=f"past a client's first {d.free_refusals} 'too many requests' in 10 s, hold each "
                        f"further one this long before answering, so a flood slows itself (default "
                        f"{d.refusal_delay_s:g}; 0: answer at once)")
    p.add_argument("--trust-proxy", action=argparse.BooleanOptionalAction, default=bool(os.environ.get("SPACE_ID")),
                   help="count clients by the last X-Forwarded-For address (default: on a Hugging Face Space)")
    args = p.parse_args(argv)
    for flag in ("max_upload_mb", "client_disk_mb", "disk_mb", "session_jobs", "client_jobs"):
        if not getattr(args, flag) > 0:
            p.error(f"--{flag.replace('_', '-')} must be above 0, got {getattr(args, flag)}")
    if not 0 <= args.refusal_delay <= 60:
        p.error(f"--refusal-delay must be between 0 and 60 seconds, got {args.refusal_delay}")
    limits = Limits(upload_bytes=int(args.max_upload_mb * MB), client_disk_bytes=int(args.client_disk_mb * MB),
                    total_disk_bytes=int(args.disk_mb * MB), session_jobs=args.session_jobs,
                    client_jobs=args.client_jobs, refusal_delay_s=args.refusal_delay, trust_proxy=args.trust_proxy)
    if args.train_max_images is not None and args.train_max_images < 1:
        p.error(f"--train-max-images must be at least 1, got {args.train_max_images}")
    if args.checkpoint_dir and args.hub_repo:
        print(f"note: loading from --checkpoint-dir {args.checkpoint_dir}, not from the Hub repo {args.hub_repo}",
              file=sys.stderr)
    t0 = time.perf_counter()
    concurrency, threads = serving_threads(args.concurrency)
    torch.set_num_threads(threads)
    try:
        models = load_models(device=args.device, hub_repo=args.hub_repo, hub_strict=args.hub_strict,
                             checkpoint_dir=args.checkpoint_dir)
    except Exception as e:   # missing, corrupt or mis-shaped files, a wrong model, a bad device, --hub-strict
        print(f"error: could not load the models: {' '.join(str(e).split())[:600]}", file=sys.stderr)
        return 2
    # Gradio's file folder (uploads and results): this server's own unless GRADIO_TEMP_DIR names one,
    # so the disk cap measures only its files, and shutting down removes it.
    files = None
    if not os.environ.get("GRADIO_TEMP_DIR"):
        files = os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="aigc-files-")
    allow = training_allowed(args.allow_training, share=args.share)
    runs = RunManager(args.runs_dir, data_dir=args.data_dir, device=args.device, max_images=args.train_max_images)
    demo = build_demo(models, checkpoints_dir=args.checkpoint_dir or BUNDLED_DIR, concurrency=concurrency,
                      runs=runs, allow_training=allow, limits=limits, data_dir=args.data_dir)
    print(f"models loaded and page built in {time.perf_counter() - t0:.1f}s; training from the page is "
          f"{'on' if allow else 'off'} (runs in {os.path.abspath(args.runs_dir)})", flush=True)
    # SIGTERM (how hosts and Spaces stop a server) takes Ctrl-C's way out: Gradio closes the server.
    # Either signal first asks the run this server started to stop, so it ends its step meanwhile.
    def interrupt(signum, frame):
        threading.Thread(target=runs.shutdown, name="aigc-stop-runs", daemon=True).start()
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        launch(demo, host=args.host, port=args.port, share=args.share)
    except KeyboardInterrupt:   # a signal before Gradio's own wait had begun
        pass
    finally:   # the run this server started stops after its step, and resumes after a restart
        for sig in previous:   # a second signal must not cut this short
            signal.signal(sig, signal.SIG_IGN)
        runs.shutdown()
        demo.close()
        if files:
            shutil.rmtree(files, ignore_errors=True)
        else:
            remove_empty_dirs(os.environ["GRADIO_TEMP_DIR"])
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped", flush=True)
    return 0


def training_allowed(asked: bool | None, *, share: bool, env=os.environ) -> bool:
    """--allow-training / --no-allow-training when given; otherwise on for a
    local launch, off with --share or on a Hugging Face Space (SPACE_ID set)."""
    if asked is not None:
        return asked
    return not (share or env.get("SPACE_ID"))


if __name__ == "__main__":
    sys.exit(main())
