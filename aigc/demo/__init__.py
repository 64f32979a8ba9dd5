"""The demo's handlers, one module per tab; app.py lays out the page and
wires them. Each handler takes the values of the page's widgets (or of an API
call), checks them, calls aigc, and returns what the widgets show.

    common.py        the choices widgets offer, argument checks, plain errors, pictures
    catalog.py       the models: loaded at start, or from a training run; results, examples
    sample.py        Sample: grids of new pictures; a flow model's path from noise
    interpolate.py   Interpolate: from seed to seed, class to class, picture to picture
    reconstruct.py   Reconstruct: picture -> code -> picture (VAE, flow); clean up a drawing (flow)
    train_status.py  Train status: curves, grids, facts; training runs from the page
    compare.py       Compare: every family side by side, with its measured quality and cost
    links.py         links that reproduce a result: a tab's inputs in the address, read back on opening
    i18n.py          the page in English and Simplified Chinese (its words: locales/en.py, locales/zh.py)
    lettering.py     the words drawn into pictures, in the page's language when a font allows
    studio.py        Studio: the catalogue and the tabs, built together
"""
from .common import (BUNDLED_CHOICE, DATASETS, DOWNLOAD_FORMATS, ENCODERS, EVERY_CLASS, FAMILIES, FLOW_SOLVERS,
                     GUIDANCE, INTERPOLATIONS, MAX_COUNT, MAX_MESSAGE, MAX_SEED, PATHS, RUN_PREFIX, SAMPLER_STEPS,
                     STEPS, check_choice, check_int, check_number, choices, friendly, picture, plain_errors,
                     plain_upload_errors, serving_threads)
from .compare import MAX_COMPARE
from .reconstruct import CLEANUP_STRENGTH
from .sample import NEIGHBOUR_SPACES
from ..export import MAX_DOWNLOAD
from .studio import Studio
from .train_status import TRAINING_OFF, progress_html

__all__ = ["BUNDLED_CHOICE", "CLEANUP_STRENGTH", "DATASETS", "DOWNLOAD_FORMATS", "ENCODERS", "EVERY_CLASS", "FAMILIES",
           "FLOW_SOLVERS", "GUIDANCE", "INTERPOLATIONS", "MAX_COMPARE", "MAX_COUNT", "MAX_DOWNLOAD", "NEIGHBOUR_SPACES",
           "MAX_MESSAGE", "MAX_SEED", "PATHS", "RUN_PREFIX", "SAMPLER_STEPS", "STEPS", "Studio", "TRAINING_OFF",
           "check_choice", "check_int", "check_number", "choices", "friendly", "picture", "plain_errors",
           "plain_upload_errors", "progress_html", "serving_threads"]
