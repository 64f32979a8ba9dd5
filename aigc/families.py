"""The model families, each described once.

Everything that differs between families is read from here: the training
CLI and page runs (recipe, defaults), the demo (pickers, which controls it
shows), evaluation and cards (metrics, wording), Hub loading (the class that
config.json's "family" names), the benchmark and the parametrised tests.

Adding a family is one module (its nn.Module, a subclass of
model.GenerativeModel, and its training recipe) plus one `register(...)` below.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field

from .classifier import Classifier, ClassifierRecipe
from .flow import FlowModel, FlowRecipe
from .gan import GANRecipe, Generator
from .model import HubModule
from .vae import VAE, VAERecipe


@dataclass(frozen=True)
class Family:
    name: str                  # config.json's "family", the training CLI's kind: "gan"
    label: str                 # what the page calls it: "GAN"
    description: str           # a model card's first words: "class-conditional GAN (EMA generator)"
    model_class: type[HubModule]
    recipe: type               # builds the modules and optimizers, takes one training step
    main_module: str           # the recipe's module that is trained and whose arguments shape the model
    batch_size: int            # training defaults
    lr: float
    losses: dict[str, str] = field(default_factory=dict)   # history.jsonl loss columns -> plain names
    generative: bool = True    # draws pictures (the evaluation classifier does not)
    can_blend: bool = False    # generate() takes class weights (n, K): morph one class into another
    can_encode: bool = False   # encode_images() / decode_codes(): picture -> code -> picture (reconstruct, morph pictures)
    invertible: bool = False   # decode_codes(encode_images(x)) is x up to a solver's error, for any picture
    has_likelihood: bool = False   # evaluation reports a likelihood (nats)
    takes_guidance: bool = False   # a multi-step sampler: steps, classifier-free guidance, solver
    sampling_steps: str = "1"      # network passes per picture, in words, for the cost table
    summary: str = ""          # one line for the page: what it does, in plain words


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    if family.name in FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered twice")
    if getattr(family.model_class, "family", None) != family.name:
        raise ValueError(f"{family.model_class.__name__}.family must be {family.name!r} to be registered as it")
    FAMILIES[family.name] = family
    return family


def get(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


MAX_MODEL_ARG = 4096


def model_args(kind: str) -> list[str]:
    """The size arguments of a kind's model (its keyword constructor
    arguments, less the classes and dataset the trainer sets)."""
    params = inspect.signature(get(kind).model_class.__init__).parameters.values()
    return [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name not in ("classes", "dataset")]


def parse_model_kwargs(kind: str, text: str) -> dict:
    """'{"ch": 4}' -> {"ch": 4}, checked against the kind's constructor: known
    names, whole numbers from 1 to MAX_MODEL_ARG (positive numbers for float
    arguments such as kl_weight)."""
    get(kind)   # an unknown family is refused by name
    allowed = model_args(kind)
    defaults = {p.name: p.default for p in inspect.signature(get(kind).model_class.__init__).parameters.values()}
    example = '{"ch": 4}'
    try:
        kwargs = json.loads(text)
    except ValueError as e:
        raise ValueError(f"--model-kwargs {text!r} is not valid JSON ({e}); "
                         f"give an object such as '{example}'") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--model-kwargs must be a JSON object such as '{example}', got {text!r}")
    for k, v in kwargs.items():
        if k not in allowed:
            raise ValueError(f"--model-kwargs: {kind} has no argument {k!r}; it takes {', '.join(allowed)}")
        if isinstance(defaults[k], str):    # a choice such as the flow's default_solver
            if not isinstance(v, str) or len(v) > 64:
                raise ValueError(f"--model-kwargs: {k} must be a short string, got {v!r}")
        elif isinstance(defaults[k], tuple):  # numbers such as the flow's guidance_interval
            if not isinstance(v, list) or len(v) != len(defaults[k]) \
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise ValueError(f"--model-kwargs: {k} must be a list of {len(defaults[k])} numbers, got {v!r}")
            kwargs[k] = [float(x) for x in v]
        elif isinstance(defaults[k], float):  # a weight such as the VAE's kl_weight
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_MODEL_ARG:
                raise ValueError(f"--model-kwargs: {k} must be a positive number, got {v!r}")
            kwargs[k] = float(v)
        elif isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_MODEL_ARG:
            raise ValueError(f"--model-kwargs: {k} must be a whole number from 1 to {MAX_MODEL_ARG}, got {v!r}")
    return kwargs


def generative() -> list[Family]:
    """The families that draw pictures, in registration order."""
    return [f for f in FAMILIES.values() if f.generative]


register(Family(
    "gan", "GAN", "class-conditional GAN (EMA generator)", Generator, GANRecipe, "G",
    batch_size=64, lr=2e-4, can_blend=True,
    losses={"d_loss": "discriminator", "g_loss": "generator",
            "d_cls": "discriminator, class head", "g_cls": "generator, class head"},
    summary="a generator and a critic trained against each other: one pass from noise to picture"))
register(Family(
    "vae", "VAE", "convolutional VAE", VAE, VAERecipe, "vae",
    batch_size=128, lr=1e-3, can_blend=True, can_encode=True, has_likelihood=True,
    losses={"loss": "total (-ELBO)", "rec": "reconstruction", "kl": "KL",
            "iw_bound": "importance-weighted bound (training with iw_samples > 1)"},
    summary="squeezes a picture into a few numbers and redraws it: blurrier, but it has a likelihood"))
register(Family(
    "flow", "Flow", "class-conditional flow-matching model (rectified flow, EMA weights)", FlowModel, FlowRecipe,
    "flow", batch_size=128, lr=1e-3, can_blend=True, can_encode=True, invertible=True, takes_guidance=True,
    sampling_steps="2 per solver step (midpoint), twice that with guidance",
    losses={"loss": "flow matching (velocity MSE)"},
    summary="the idea behind diffusion: a few small steps along a learned flow from noise to picture"))
register(Family(
    "classifier", "classifier", "evaluation classifier", Classifier, ClassifierRecipe, "classifier",
    batch_size=128, lr=1e-3, generative=False, losses={"loss": "cross-entropy"}))
