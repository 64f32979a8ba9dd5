"""The aigc demo: draw new pictures, morph between them, redraw your own, and
watch the models learn.

    python app.py                 # http://127.0.0.1:7860
    python app.py --share         # and a public link (training from the page off)

Runs unchanged as a Hugging Face Space (sdk: gradio, app_file: app.py). This
file is layout and event wiring only; the handlers are in aigc/demo.py.
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
from aigc.demo import (BUNDLED_CHOICE, CLEANUP_STRENGTH, DATASETS, ENCODERS, EVERY_CLASS, FAMILIES, GUIDANCE,
                       INTERPOLATIONS, MAX_COMPARE, MAX_DOWNLOAD, NEIGHBOUR_SPACES, MAX_COUNT, MAX_SEED, PATHS, SAMPLER_STEPS, STEPS, TRAINING_OFF, Studio,
                       plain_errors, plain_upload_errors, serving_threads)
from aigc.examples import EXAMPLES_DIR
from aigc.guard import (MB, FairQueue, Guard, Limits, ResultCache, guard_sketchpad, remove_empty_dirs,
                        short_errors)
from aigc.hub import BUNDLED, BUNDLED_DIR, check_identity
from aigc.runs import MAX_BATCH, MAX_EPOCHS, RunManager
from aigc.families import FAMILIES as REGISTRY

HEADER = """# aigc studio
These small neural networks learned to draw handwritten digits and pieces of clothing: a **GAN** invents
new pictures from random numbers in one pass, a **VAE** squeezes a picture into a few numbers and redraws it
from them, and a **flow** model (the idea behind diffusion) walks from noise to a picture in a few small steps. Each tab lets you try one thing: make new pictures, morph one into another, have your own picture
redrawn, or watch how the models learned."""

THEME = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],   # no web fonts: works offline
                       font_mono=["ui-monospace", "monospace"])
CSS = """
.pixelated img { image-rendering: pixelated; }  /* upscaled pixels stay square when the browser resizes */
.run-bar { height: 14px; border-radius: 7px; overflow: hidden; background: var(--neutral-200); }
.run-bar > div { height: 100%; background: var(--color-accent); transition: width 1s; }
.run-live[data-state="failed"] .run-bar > div, .run-live[data-state="interrupted"] .run-bar > div
    { background: var(--error-text-color, #b91c1c); }
.run-live p { margin: 6px 0 0; }
"""
SKETCH_SHEET = {"background": Image.new("RGBA", (280, 280), "white"), "layers": [], "composite": None}
TICK_S = 3               # the training tab refreshes this often while a run is live
COMPUTE = "compute"      # the events that run models or read pictures share one line and its workers


def build_demo(models, *, checkpoints_dir=BUNDLED_DIR, examples_dir=EXAMPLES_DIR,
               concurrency: int | None = None, runs: RunManager | None = None,
               allow_training: bool = False, limits: Limits = Limits(), data_dir: str | None = None) -> gr.Blocks:
    """The page, from loaded models (GenerativeModels, one per family and
    dataset). checkpoints_dir: the training folders the train-status tab reads.
    runs: the training runs (listed in the train-status tab, their checkpoints
    in the model pickers); allow_training: visitors may start, stop and resume them.
    limits: what one visitor may take (aigc.guard; `launch` applies the rest).
    data_dir: the training images, for "Show the closest training images"."""
    studio = Studio(models, checkpoints_dir=checkpoints_dir, examples_dir=examples_dir, runs=runs,
                    allow_training=allow_training, results=ResultCache(limits.cache_entries), data_dir=data_dir)
    workers = serving_threads(concurrency)[0]
    compute = dict(concurrency_id=COMPUTE, concurrency_limit=workers)
    digits = studio.class_choices("mnist")
    families = studio.catalog.families()                      # the families with a model loaded
    encoders = {k: v for k, v in ENCODERS.items() if v in families.values()}
    flow = ("flow", "mnist") in studio.models

    def flow_defaults(dataset):   # the flow checkpoint's own steps and guidance
        m = studio.models.get(("flow", dataset))
        return (m.default_steps, m.default_guidance) if m is not None else (4, 2.0)
    checkpoints = studio.checkpoint_names()
    pixelated = ["pixelated"]
    has_runs = runs is not None

    def picker(family, dataset):   # a model picker: the demo's model, then runs of that family and dataset
        # allow_custom_value: the choices grow as runs finish, after the page was built
        return gr.Dropdown(studio.checkpoint_choices(family, dataset), value=BUNDLED_CHOICE, label="Checkpoint",
                           visible=has_runs, allow_custom_value=True)

    # Uploads and results are deleted file_ttl_s after their last use, checked every third of that.
    with gr.Blocks(title="aigc studio", analytics_enabled=False,
                   delete_cache=(max(60, limits.file_ttl_s // 3), limits.file_ttl_s)) as demo:
        gr.Markdown(HEADER)
        gr.Markdown(studio.model_sources(), elem_id="sources")
        with gr.Tabs():
            # ---- layout: sample ------------------------------------------------
            with gr.Tab("Sample", id="sample") as s_tab:
                with gr.Row():
                    with gr.Column(scale=1):
                        s_family = gr.Radio(list(families.items()), value="gan", label="Model")
                        s_dataset = gr.Radio(list(DATASETS.items()), value="mnist", label="Pictures of")
                        s_ckpt = picker("gan", "mnist")
                        s_class = gr.Dropdown(studio.class_choices("mnist", every=True), value=EVERY_CLASS,
                                              label="Class", allow_custom_value=True)
                        s_count = gr.Slider(1, MAX_COUNT, value=8, step=1,
                                            label="How many (per class with 'every class')")
                        with gr.Row():
                            s_seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed",
                                               scale=3)
                            s_dice = gr.Button("Random seed", scale=1)
                        s_temp = gr.Slider(0.05, 2.0, value=1.0, step=0.05,
                                           label="Temperature (lower: more typical, higher: more varied)")
                        # A flow model's sampler: shown while Flow is picked.
                        with gr.Group(visible=False, elem_id="flow-controls") as s_flow:
                            s_steps = gr.Slider(*SAMPLER_STEPS, value=flow_defaults("mnist")[0], step=1,
                                                label="Steps (more: slower, closer to the data)")
                            s_guidance = gr.Slider(*GUIDANCE, value=flow_defaults("mnist")[1], step=0.25,
                                                   label="Guidance (1: none; higher: more like the class, less varied)")
                        s_go = gr.Button("Generate", variant="primary", elem_id="sample-go")
                        s_path_go = gr.Button("Show the path from noise", visible=False, elem_id="sample-path-go")
                    with gr.Column(scale=2):
                        first = studio.sample("gan", "mnist", EVERY_CLASS, 8, 0, 1.0) \
                            if ("gan", "mnist") in studio.models else None   # the page opens with pictures
                        s_out = gr.Image(first, label="Samples",
                                         type="filepath", interactive=False,
                                         buttons=["download", "fullscreen"], elem_classes=pixelated,
                                         height=640, elem_id="sample-out")
                        with gr.Row(visible=False) as s_path:
                            s_path_strip = gr.Image(label="From noise (left) to picture (right), step by step",
                                                    type="filepath", interactive=False, elem_classes=pixelated,
                                                    buttons=["download", "fullscreen"], elem_id="sample-path-strip",
                                                    scale=2)
                            s_path_gif = gr.Image(label="The same, animated (GIF)", type="filepath",
                                                  interactive=False, elem_classes=pixelated, buttons=["download"],
                                                  elem_id="sample-path-gif", scale=1)
                        # Is it copying? The grid above, each picture beside its nearest training images.
                        with gr.Accordion("Is it copying its training data?", open=False, elem_id="closest-controls"):
                            s_space = gr.Radio(list(NEIGHBOUR_SPACES.items()), value="pixels", label="Compare by",
                                               info="pixels: the pictures as they look; the classifier's features: "
                                                    "what they show, as the evaluation classifier sees it")
                            s_near_go = gr.Button("Show the closest training images", elem_id="closest-go")
                            s_near_words = gr.Markdown(elem_id="closest-words")
                            s_near = gr.Image(label="Each generated picture, then its nearest training images",
                                              type="filepath", interactive=False, elem_classes=pixelated,
                                              buttons=["download", "fullscreen"], elem_id="closest-out")
                        # A labelled synthetic dataset to take away (aigc.export).
                        with gr.Accordion("Download a labelled dataset", open=False, elem_id="download-controls"):
                            with gr.Row():
                                s_dl_count = gr.Number(MAX_DOWNLOAD, precision=0, minimum=1, maximum=MAX_DOWNLOAD,
                                                       label="How many to download")
                                s_dl_fmt = gr.Radio([("ZIP of PNGs + metadata.csv", "zip"),
                                                     ("Parquet (Hugging Face datasets)", "parquet")],
                                                    value="zip", label="Format")
                            s_dl_go = gr.Button("Make the file", elem_id="download-go")
                            s_dl_file = gr.File(label="Your file (same model, class, seed and settings as above; "
                                                      "'every class': balanced over the classes)",
                                                elem_id="download-out")

            # ---- layout: interpolate -------------------------------------------
            with gr.Tab("Interpolate", id="interpolate") as i_tab:
                with gr.Row():
                    with gr.Column(scale=1):
                        i_mode = gr.Radio(list(INTERPOLATIONS.items()), value="seeds", label="Morph between")
                        i_family = gr.Radio(list(families.items()), value="gan", label="Model")
                        i_dataset = gr.Radio(list(DATASETS.items()), value="mnist", label="Pictures of")
                        i_ckpt = picker("gan", "mnist")
                        with gr.Row() as i_seeds:
                            i_seed_a = gr.Number(1, precision=0, minimum=0, maximum=MAX_SEED, label="Seed A")
                            i_seed_b = gr.Number(2, precision=0, minimum=0, maximum=MAX_SEED, label="Seed B")
                        with gr.Row():
                            i_class_a = gr.Dropdown(digits, value=digits[3][1], label="Class A",
                                                    allow_custom_value=True)
                            i_class_b = gr.Dropdown(digits, value=digits[8][1], label="Class B",
                                                    allow_custom_value=True, visible=False)
                        with gr.Column(visible=False) as i_images:
                            with gr.Row():
                                i_image_a = plain_upload_errors(gr.Image(
                                    type="filepath", image_mode=None, label="Picture A", height=180,
                                    sources=["upload", "clipboard"]))
                                i_image_b = plain_upload_errors(gr.Image(
                                    type="filepath", image_mode=None, label="Picture B", height=180,
                                    sources=["upload", "clipboard"]))
                            # Test pictures of classes 0 and 1, 2 and 3, ... of each dataset
                            pairs = [[d, *studio.example_paths(d, 10)[i:i + 2]] for d in DATASETS.values()
                                     for i in range(0, 10, 2)]
                            gr.Examples(pairs, [i_dataset, i_image_a, i_image_b], label="Test pictures",
                                        visible_columns=[1, 2], api_name="example_pair", api_visibility="private")
                        i_path = gr.Radio(list(PATHS.items()), value="spherical", label="Path")
                        i_steps = gr.Slider(*STEPS, value=16, step=1, label="Steps")
                        i_go = gr.Button("Interpolate", variant="primary", elem_id="interpolate-go")
                    with gr.Column(scale=2):
                        i_strip = gr.Image(label="Frames", type="filepath", interactive=False,
                                           buttons=["download", "fullscreen"], elem_classes=pixelated,
                                           elem_id="interpolate-strip")
                        i_gif = gr.Image(label="Animation (GIF)", type="filepath", interactive=False,
                                         buttons=["download"], elem_classes=pixelated, height=260,
                                         elem_id="interpolate-gif")

            # ---- layout: reconstruct -------------------------------------------
            with gr.Tab("Reconstruct", id="reconstruct") as r_tab:
                with gr.Row():
                    with gr.Column(scale=1):
                        r_family = gr.Radio(list(encoders.items()), value="vae", label="Model",
                                            info="VAE: through a few numbers. Flow: through its noise, and back.")
                        r_dataset = gr.Radio(list(DATASETS.items()), value="mnist", label="Trained on")
                        r_ckpt = picker("vae", "mnist")
                        with gr.Tabs():
                            with gr.Tab("Upload"):
                                r_image = plain_upload_errors(gr.Image(
                                    type="filepath", image_mode=None, label="Your picture", height=240,
                                    sources=["upload", "clipboard"]))
                                r_go = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-go")
                            with gr.Tab("Draw"):
                                # A white sheet as background: with it the brush is ready at once.
                                # guard_sketchpad: checked from the headers, only the composite decoded
                                r_sketch = guard_sketchpad(gr.Sketchpad(
                                    SKETCH_SHEET, type="pil", image_mode="RGBA",
                                    canvas_size=SKETCH_SHEET["background"].size,
                                    brush=gr.Brush(default_size=20, colors=["#000000"], color_mode="fixed"),
                                    layers=False, label="Draw here"), limits)
                                r_go_sketch = gr.Button("Reconstruct my drawing", variant="primary",
                                                        elem_id="sketch-go")
                                r_clean_go = gr.Button("Clean up my drawing (flow)", visible=flow,
                                                       elem_id="cleanup-go")
                        # The flow model's clean-up (SDEdit): noise the picture part way, then redraw it.
                        with gr.Accordion("Clean up (flow model)", open=True, visible=flow, elem_id="cleanup-controls"):
                            r_clean_class = gr.Dropdown(digits, value=digits[7][1], label="Clean up as",
                                                        allow_custom_value=True)
                            r_strength = gr.Slider(*CLEANUP_STRENGTH, value=0.6, step=0.05,
                                                   label="Strength (low: keep your strokes; high: keep only the class)")
                            r_clean_upload = gr.Button("Clean up the uploaded picture", elem_id="cleanup-upload-go")
                    with gr.Column(scale=2):
                        r_panels = gr.Image(label="Input, reconstruction and difference", type="filepath",
                                            interactive=False, buttons=["download", "fullscreen"],
                                            elem_classes=pixelated, elem_id="reconstruct-out")
                        r_error = gr.Number(label="Reconstruction error (mean pixel difference, 0 = perfect)",
                                            interactive=False)
                        r_verdict = gr.Textbox(label="Verdict", interactive=False, elem_id="reconstruct-verdict")
                r_outputs = [r_panels, r_error, r_verdict]
                r_examples = [gr.Examples([[d, p] for p in studio.example_paths(d, 10)], [r_dataset, r_image],
                                          label=label, visible_columns=[1], api_name=f"example_{d}",
                                          api_visibility="private", elem_id=f"examples-{d}")
                              for label, d in (("Test digits", "mnist"), ("Test clothing", "fashion"))]

            # ---- layout: compare -----------------------------------------------
            with gr.Tab("Compare", id="compare") as c_tab:
                with gr.Row():
                    with gr.Column(scale=1):
                        c_dataset = gr.Radio(list(DATASETS.items()), value="mnist", label="Pictures of")
                        c_class = gr.Dropdown(studio.class_choices("mnist", every=True), value=EVERY_CLASS,
                                              label="Class", allow_custom_value=True)
                        c_count = gr.Slider(1, MAX_COMPARE, value=4, step=1,
                                            label="How many (per class with 'every class')")
                        c_seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
                        c_run = gr.Dropdown(studio.compare_runs("mnist"), value="", visible=has_runs,
                                            allow_custom_value=True, label="Add one of your training runs")
                        c_go = gr.Button("Compare", variant="primary", elem_id="compare-go")
                    with gr.Column(scale=3):
                        c_gallery = gr.Gallery(label="The same seed, class and dataset, model by model",
                                               columns=3, object_fit="contain", height=520, elem_id="compare-out",
                                               elem_classes=pixelated, buttons=["download", "fullscreen"])
                c_table = gr.Markdown(elem_id="compare-table")
                c_chart = gr.ScatterPlot(x="ms per image", y="Frechet / floor", color="family",
                                         tooltip=["checkpoint", "ms per image", "Frechet / floor"],
                                         title="Quality against speed: lower is better on both axes",
                                         height=300, elem_id="compare-chart")

            # ---- layout: train status ------------------------------------------
            with gr.Tab("Train status", id="train-status"):
                with gr.Row():
                    t_name = gr.Dropdown(checkpoints, value=checkpoints[0] if checkpoints else None,
                                         label="Checkpoint (your training runs are run:<name>)" if has_runs
                                         else "Checkpoint", allow_custom_value=True, scale=3, elem_id="train-name")
                    t_refresh = gr.Button("Refresh", scale=1)
                t_live = gr.HTML(elem_id="train-live", visible=has_runs)
                with gr.Accordion("Train a model", open=True, visible=studio.allow_training, elem_id="train-controls"):
                    with gr.Row():
                        t_family = gr.Radio(list(FAMILIES.items()), value="gan", label="Model")
                        t_dataset = gr.Radio(list(DATASETS.items()), value="mnist", label="Pictures of")
                        t_run_name = gr.Textbox(studio.suggest_run_name(), label="Run name (for Start)", max_lines=1,
                                                info="letters, digits, - and _", elem_id="train-run-name")
                    with gr.Row():
                        t_epochs = gr.Slider(1, MAX_EPOCHS, value=5, step=1, label="Epochs")
                        t_batch = gr.Number(REGISTRY["gan"].batch_size, precision=0, minimum=1, maximum=MAX_BATCH,
                                            label="Batch size")
                        t_lr = gr.Number(REGISTRY["gan"].lr, minimum=1e-6, maximum=1.0, label="Learning rate")
                    with gr.Row():
                        t_start = gr.Button("Start", variant="primary", elem_id="train-start")
                        t_stop = gr.Button("Stop the picked run", variant="stop", elem_id="train-stop")
                        t_resume = gr.Button("Resume the picked run", elem_id="train-resume")
                    t_message = gr.Markdown(elem_id="train-message")
                gr.Markdown(TRAINING_OFF, visible=has_runs and not studio.allow_training, elem_id="train-off")
                with gr.Row():
                    curves = dict(x="epoch", y="value", color="series", height=260, x_axis_format="~g",
                                  y_axis_format="~g")
                    t_loss = gr.LinePlot(title="Training losses", **curves)
                    t_fractions = gr.LinePlot(title="Accuracy (if measured)", y_lim=[0, 1], **curves)
                    t_others = gr.LinePlot(title="Frechet distance, other measures", **curves)
                with gr.Row():
                    with gr.Column():
                        t_epoch = gr.Slider(1, 2, value=1, step=1, label="Epoch", visible=False)
                        # The /train_grid endpoint's epoch: the slider's range is this page's, and an
                        # API caller may ask for any epoch the checkpoint has.
                        t_grid_epoch = gr.Number(visible=False, label="epoch")
                        t_grid_api = gr.Button(visible=False)
                        t_grid = gr.Image(label="Fixed noise, one row per class, after this epoch", type="pil",
                                          format="png", interactive=False, elem_classes=pixelated,
                                          height=440, elem_id="train-grid")
                    with gr.Column():
                        t_facts = gr.Markdown()
                        t_metrics = gr.Markdown()
                with gr.Accordion("Runs (as the train_status API reports them)", open=False, visible=has_runs):
                    t_run = gr.JSON(label="Runs", elem_id="train-runs")
                t_timer = gr.Timer(TICK_S, active=False)   # on while a run is live (studio.timer_state)
                t_seen = gr.State()   # what the timer last drew: it redraws curves only when they change
                t_outputs = [t_loss, t_fractions, t_others, t_epoch, t_grid, t_facts, t_metrics, t_live, t_run]

        # A number the page cannot read (say "abc" from an API script) gets words, not a bare "Error".
        def num(v):
            return f"{int(v):,}" if float(v).is_integer() else f"{v:g}"

        plain_errors(t_grid_epoch, "The epoch must be a whole number.")
        for number in (s_count, s_seed, s_temp, s_dl_count, c_count, c_seed, i_seed_a, i_seed_b, i_steps, t_epoch, t_epochs, t_batch, t_lr):
            plain_errors(number, f"{number.label} must be a number from {num(number.minimum)} "
                                 f"to {num(number.maximum)}.")

        # ---- wiring --------------------------------------------------------
        s_go.click(studio.sample, [s_family, s_dataset, s_class, s_count, s_seed, s_temp, s_ckpt, s_steps,
                                   s_guidance], s_out, api_name="sample", **compute)
        sampled = [s_family, s_dataset, s_class, s_count, s_seed, s_temp, s_ckpt, s_steps, s_guidance]
        s_near_go.click(studio.closest, [*sampled, s_space], [s_near, s_near_words], api_name="closest", **compute)
        s_dl_go.click(studio.download, [s_family, s_dataset, s_class, s_dl_count, s_seed, s_temp, s_ckpt, s_steps,
                                        s_guidance, s_dl_fmt], s_dl_file, api_name="download", **compute)
        s_path_go.click(studio.sample_path, [s_family, s_dataset, s_class, s_seed, s_temp, s_ckpt, s_steps, s_guidance],
                        [s_path_strip, s_path_gif], api_name="sample_path", **compute)
        # Flow picked: its sampler's controls, at the checkpoint's own defaults, and the path.
        for trigger in (s_family.change, s_dataset.change):
            trigger(lambda f, d: (gr.Group(visible=f == "flow"), gr.Button(visible=f == "flow"),
                                  gr.Row(visible=f == "flow"), *flow_defaults(d)),
                    [s_family, s_dataset], [s_flow, s_path_go, s_path, s_steps, s_guidance], api_visibility="private")
        # The pickers list runs of the family and dataset chosen; a tab opened afresh lists new runs.
        for trigger in (s_family.change, s_dataset.change, s_tab.select):
            trigger(studio.checkpoint_picker, [s_family, s_dataset, s_ckpt], s_ckpt, api_visibility="private")
        s_dice.click(studio.random_seed, None, s_seed, api_visibility="private")
        s_dataset.change(lambda d: gr.Dropdown(choices=studio.class_choices(d, every=True), value=EVERY_CLASS),
                         s_dataset, s_class, api_visibility="private")

        c_go.click(studio.compare, [c_dataset, c_class, c_count, c_seed, c_run], [c_gallery, c_table],
                   api_name="compare", **compute)
        c_tab.select(studio.quality_speed, None, c_chart, api_visibility="private", **compute)
        c_dataset.change(lambda d: (studio.compare_classes(d), studio.compare_run_picker(d)), c_dataset,
                         [c_class, c_run], api_visibility="private")
        c_tab.select(studio.compare_run_picker, c_dataset, c_run, api_visibility="private")

        i_go.click(studio.interpolate, [i_mode, i_family, i_dataset, i_seed_a, i_seed_b, i_class_a, i_class_b,
                                        i_image_a, i_image_b, i_path, i_steps, i_ckpt], [i_strip, i_gif],
                   api_name="interpolate", **compute)
        for trigger in (i_family.change, i_dataset.change, i_tab.select):
            trigger(studio.checkpoint_picker, [i_family, i_dataset, i_ckpt], i_ckpt, api_visibility="private")
        # Pictures need a model that encodes them: from the GAN, switch to the VAE.
        i_mode.change(lambda m, f: gr.Radio(choices=list((encoders if m == "images" else families).items()),
                                            value=f if m != "images" or f in encoders.values() else "vae"),
                      [i_mode, i_family], i_family, api_visibility="private")
        i_dataset.change(lambda d: [gr.Dropdown(choices=studio.class_choices(d), value=studio.class_choices(d)[i][1])
                                    for i in (3, 8)], i_dataset, [i_class_a, i_class_b], api_visibility="private")
        # The fields each way of interpolating uses; the others are hidden.
        toggled = [i_seeds, i_seed_b, i_class_a, i_class_b, i_images]
        uses = {"seeds": [i_seeds, i_seed_b, i_class_a],
                "classes": [i_seeds, i_class_a, i_class_b],
                "images": [i_images]}
        i_mode.change(lambda m: [type(c)(visible=any(c is u for u in uses[m])) for c in toggled],
                      i_mode, toggled, api_visibility="private")

        r_inputs = [r_dataset, r_image, r_ckpt, r_family]
        r_go.click(studio.reconstruct, r_inputs, r_outputs, api_name="reconstruct", **compute)
        r_image.upload(studio.reconstruct, r_inputs, r_outputs, api_visibility="private", **compute)
        r_go_sketch.click(studio.reconstruct_sketch, [r_dataset, r_sketch, r_ckpt, r_family], r_outputs,
                          api_visibility="private", **compute)
        r_clean_go.click(studio.cleanup_sketch, [r_dataset, r_sketch, r_clean_class, r_strength], [r_panels, r_verdict],
                         api_name="cleanup_sketch", api_visibility="private", **compute)
        for examples in r_examples:   # a click on an example fills in dataset and picture, then reconstructs
            examples.load_input_event.then(studio.reconstruct, r_inputs, r_outputs, api_visibility="private",
                                           **compute)
        for trigger in (r_family.change, r_dataset.change, r_tab.select):
            trigger(studio.checkpoint_picker, [r_family, r_dataset, r_ckpt], r_ckpt, api_visibility="private")
        r_dataset.change(lambda d: gr.Dropdown(choices=studio.class_choices(d), value=studio.class_choices(d)[7][1]),
                         r_dataset, r_clean_class, api_visibility="private")
        r_clean_upload.click(studio.cleanup, [r_dataset, r_image, r_clean_class, r_strength], [r_panels, r_verdict],
                             api_name="cleanup", **compute)

        t_name.change(studio.train_status, t_name, t_outputs, api_name="train_status")
        t_refresh.click(studio.checkpoint_dropdown, t_name, t_name, api_visibility="private").then(
            studio.train_status, t_name, t_outputs, api_visibility="private")
        t_epoch.input(studio.train_grid, [t_name, t_epoch], t_grid, api_name="train_grid_slider",
                      api_visibility="private", trigger_mode="always_last", **compute)
        t_grid_api.click(studio.train_grid, [t_name, t_grid_epoch], t_grid, api_name="train_grid", **compute)
        # Live runs: the bar every tick, curves and grid when an epoch ends; the timer stops when no
        # run is live. show_progress hidden: no loading overlay flashing over the plots every few seconds.
        t_timer.tick(studio.tick, [t_name, t_seen], [t_name, *t_outputs, t_seen, t_timer], show_progress="hidden",
                     api_visibility="private")
        # Picking a run fills in its settings, so Resume continues it with them (Epochs: its new total).
        t_name.change(studio.train_settings, t_name, [t_family, t_dataset, t_epochs, t_batch, t_lr],
                      api_visibility="private")
        for trigger in (t_family.input, t_dataset.input):   # the person changed them: that family's defaults
            trigger(lambda f, d: (REGISTRY[f].batch_size, REGISTRY[f].lr, studio.suggest_run_name(f, d)),
                    [t_family, t_dataset], [t_batch, t_lr, t_run_name], api_visibility="private")
        t_start.click(studio.train_start, [t_family, t_dataset, t_epochs, t_batch, t_lr, t_run_name],
                      [t_message, t_name], api_name="train_start").success(
            studio.suggest_run_name, [t_family, t_dataset], t_run_name, api_visibility="private").then(
            studio.timer_state, None, t_timer, api_visibility="private")
        t_stop.click(studio.train_stop, t_name, t_message, api_name="train_stop")
        t_resume.click(studio.train_resume, [t_name, t_epochs], [t_message, t_name], api_name="train_resume_page",
                       api_visibility="private").then(studio.timer_state, None, t_timer, api_visibility="private")
        # For API scripts, an endpoint of its own: a missing `epochs` means the run's own total, where
        # the button's endpoint would take the Epochs slider's initial value instead.
        gr.api(studio.train_resume, api_name="train_resume")
        if checkpoints or has_runs:
            # Opening the page: pick the run training now, if any, and show where everything stands.
            demo.load(studio.train_open, t_name, [t_name, *t_outputs], api_visibility="private")
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
    return demo


def launch(demo: gr.Blocks, *, host: str | None = None, port: int | None = None, share: bool = False, **kwargs):
    """demo.launch with the page's theme and limits (build_demo's, aigc.guard
    in front of every request); returns (app, local_url, share_url)."""
    limits = getattr(demo, "aigc_limits", Limits())
    return demo.launch(server_name=host, server_port=port, share=share, theme=THEME, css=CSS,
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
