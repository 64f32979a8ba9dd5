"""What every tab's handlers share: the choices the widgets offer, the checks
on values from the page or the API, turning errors into plain words, and
pictures (grids, enlargements, captioned panels).

Widgets hand over values, not labels: each choice is a (label, value) pair
from one of the dicts below (its label a page key, see i18n.py), and the
handlers check the value against it.

Whatever a visitor can get wrong becomes a gr.Error in plain words, in the
page's language (i18n.Problem). Anything else is logged with its traceback
and reported as a short apology, so the page never shows a stack trace and
the server keeps serving.
"""
from __future__ import annotations

import functools
import inspect
import logging
import math
import os

import gradio as gr
import numpy as np
import torch
from PIL import Image, ImageDraw

from .. import export, labels, latent
from ..families import FAMILIES as REGISTRY, generative
from ..flow import MAX_GUIDANCE, MAX_STEPS, SOLVERS
from ..guard import clip, guard_image, short
from ..preprocess import NOT_AN_IMAGE, ImageError
from ..runs import RunError
from .i18n import DEFAULT, Problem, Text, foreign, language, say, ui

log = logging.getLogger("aigc.demo")

# ---- what the widgets offer: label shown -> value the handlers receive -------
FAMILIES = {f.label: f.name for f in generative()}                     # GAN, VAE, Flow
ENCODERS = {f.label: f.name for f in generative() if f.can_encode}     # picture -> code -> picture
DATASETS = {"digits": "mnist", "fashion": "fashion"}
INTERPOLATIONS = {"two seeds": "seeds", "two classes": "classes", "two images": "images"}
PATHS = {"spherical": "spherical", "linear": "linear"}      # values are aigc.latent.PATHS keys
FLOW_SOLVERS = {s: s for s in SOLVERS}
EVERY_CLASS = "every class"                                   # a class value meaning one row per class
DOWNLOAD_FORMATS = {f: f for f in export.DOWNLOAD_FORMATS}  # aigc.export's formats, in its order
BUNDLED_CHOICE = "bundled"   # the model pickers' value for the demo's own model; runs are "run:<name>"
RUN_PREFIX = "run:"

MAX_COUNT = 100          # images per class in a sample grid
MAX_SEED = 2**32 - 1     # seeds the page offers (a browser number is exact up to 2**53)
STEPS = (2, 60)          # frames in an interpolation
SAMPLER_STEPS = (1, 50)  # a flow model's solver steps the page offers
GUIDANCE = (0.0, MAX_GUIDANCE)
SCALE = 8                # nearest-neighbour upscale of single 28x28 pictures: 224 px
MAX_MESSAGE = 400        # characters of an error message: what a visitor sent is never echoed whole
assert SAMPLER_STEPS[1] <= MAX_STEPS


def serving_threads(concurrency: int | None = None, cores: int | None = None) -> tuple[int, int]:
    """-> (requests run at once, torch threads each). The models are small:
    one thread per request, as many requests as cores, beats several threads
    fighting over the same cores (and a busy machine makes that fight worse)."""
    cores = cores or os.cpu_count() or 1
    concurrency = concurrency or max(2, cores)
    return concurrency, max(1, cores // concurrency)


def friendly(fn):
    """gr.Error passes through, an i18n.Problem said in the caller's
    language (the handler's `lang` argument: the page's; an API call's is
    English); an ImageError's or RunError's message is already meant for
    the visitor; anything else is a bug on our side: log it, apologise."""
    signature = inspect.signature(fn)
    takes_lang = "lang" in signature.parameters

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        lang = DEFAULT
        if takes_lang:
            try:
                lang = language(signature.bind_partial(*args, **kwargs).arguments.get("lang"))
            except TypeError:   # arguments that do not fit: fn itself says so below
                pass
        try:
            return fn(*args, **kwargs)
        except Problem as e:
            raise gr.Error(clip(e.say(lang), MAX_MESSAGE)) from None
        except gr.Error as e:
            if len(str(e.message)) <= MAX_MESSAGE:
                raise
            raise gr.Error(clip(e.message, MAX_MESSAGE)) from None
        except (ImageError, RunError) as e:   # messages already meant for the visitor
            raise gr.Error(clip(foreign(str(e), lang), MAX_MESSAGE)) from None
        except Exception:
            log.exception("%s failed", fn.__name__)
            raise gr.Error(say(lang, "msg.error.ours")) from None

    return wrapper


def choices(options: dict[str, str], group: str) -> list[tuple]:
    """A dict above as a widget's choices: each value labelled by its page
    key ui.<group>.<value>."""
    return [(ui(f"ui.{group}.{value}"), value) for value in options.values()]


# ---- argument checks: API callers can send anything ------------------------
def check_choice(value, choices: dict[str, str], what) -> str:
    """what: the thing chosen, as a Text (msg.what.*) or plain English."""
    if value not in choices.values():
        raise Problem("msg.error.unknown_choice", what=what, value=short(value),
                      choices=", ".join(map(repr, choices.values())))
    return value


def check_int(value, lo: int, hi: int, what) -> int:
    # Sliders and numbers arrive as floats through the API (64.0): accept whole numbers.
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(value) and value == int(value) and lo <= value <= hi:
        return int(value)
    raise Problem("msg.error.whole_number", what=what, lo=lo, hi=hi, value=short(value))


def check_number(value, lo: float, hi: float, what) -> float:
    """A number in (lo, hi]."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(value) and lo < value <= hi:
        return float(value)
    raise Problem("msg.error.number", what=what, lo=lo, hi=hi, value=short(value))


def picture(images: torch.Tensor, nrow: int) -> Image.Image:
    """(N, 1, 28, 28) in [0, 1] -> a grid, upscaled by nearest neighbour to
    about 960 px wide (crisp pixels, never blurred)."""
    g = latent.grid(images, nrow=nrow)                       # (H, W)
    return latent.to_pil(g, scale=latent.tile_scale(g.shape[1]))


def big(x: torch.Tensor) -> Image.Image:
    """One (1, 28, 28) image -> 224x224 grayscale, crisp."""
    return latent.to_pil(x, scale=SCALE)


def side_by_side(panels: list[Image.Image], captions: list[str], gap: int = 8, caption_h: int = 24,
                 font=None) -> Image.Image:
    """Equal-sized panels in a row on white, each captioned underneath: one
    picture to show and to download (one file is also one download for an
    API caller). font: a path or a loaded font (None: Pillow's, Latin only)."""
    w, h = panels[0].size
    out = Image.new("RGB", (len(panels) * w + (len(panels) - 1) * gap, h + caption_h), "white")
    draw = ImageDraw.Draw(out)
    font = labels.load_font(font, size=14)
    for i, (panel, caption) in enumerate(zip(panels, captions)):
        x = i * (w + gap)
        out.paste(panel.convert("RGB"), (x, 0))
        draw.text((x + w / 2, h + caption_h / 2), caption, fill=(60, 60, 60), font=font, anchor="mm")
    return out


def check_guidance(value) -> float:
    """Classifier-free guidance from the page or the API: 0 to MAX_GUIDANCE."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(value) and GUIDANCE[0] <= value <= GUIDANCE[1]:
        return float(value)
    raise Problem("msg.error.guidance", lo=GUIDANCE[0], hi=GUIDANCE[1], value=short(value))


def sampler_settings(model, steps=None, guidance=None, solver=None) -> dict:
    """A flow model's sampler settings, checked ({} for a family without a
    multi-step sampler: the values are then ignored). None: the checkpoint's default."""
    if not REGISTRY[model.family].takes_guidance:
        return {}
    out = {}
    if steps not in (None, ""):
        out["steps"] = check_int(steps, *SAMPLER_STEPS, Text("msg.what.steps"))
    if guidance not in (None, ""):
        out["guidance"] = check_guidance(guidance)
    if solver not in (None, ""):
        out["solver"] = check_choice(solver, FLOW_SOLVERS, Text("msg.what.solver"))
    steps, guidance, solver = model.sampler_args(**out)
    return {"steps": steps, "guidance": guidance, "solver": solver}


def plain_errors(component: gr.components.Component, message: str) -> gr.components.Component:
    """Gradio converts each input before any handler runs, and when that fails
    (an upload that is not a picture, "abc" sent to a number) the visitor sees
    only "Error". Wrap this component's conversion so such a failure becomes a
    gr.Error with `message` instead. (A component subclass could do the same,
    but gradio writes a .pyi stub next to the source of every component class.)"""
    preprocess = component.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except gr.Error:   # gradio's own range checks already speak plainly
            raise
        except Exception:
            raise gr.Error(message) from None

    component.preprocess = checked
    return component


def plain_upload_errors(image: gr.Image) -> gr.Image:
    """For gr.Image(type="filepath", image_mode=None): every picture is
    screened from its header first (aigc.guard.guard_image: bytes, format,
    declared pixels), gradio then only reads the header too, and
    aigc.preprocess does the rest. An inline data: URL arrives as bytes."""
    return guard_image(image, NOT_AN_IMAGE)

