"""The checkpoints shipped in checkpoints/: they load, sample, and carry
what the demo and the model cards need."""
import json

import pytest
import torch

import aigc
from aigc.data import class_names
from aigc.hub import BUNDLED_DIR
from aigc.io import read_jsonl


@pytest.mark.parametrize("name", aigc.BUNDLED)
def test_bundled_checkpoint_loads_samples_and_documents_itself(name):
    family, dataset = name.split("-")
    m = aigc.load(name, device="cpu")
    assert m.family == family and m.dataset == dataset and m.classes == class_names(dataset)
    assert m.source == f"bundled:checkpoints/{name}"
    x = m.sample(n=20, labels=list(range(10)) * 2, seed=0)
    assert x.shape == (20, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert x.std() > 0.1  # real images, not a flat grey
    assert torch.equal(x, m.sample(n=20, labels=list(range(10)) * 2, seed=0))
    folder = BUNDLED_DIR / name
    history = read_jsonl(folder / "history.jsonl")
    assert history and history[-1]["epoch"] == len(history)
    assert (folder / "samples" / f"epoch_{len(history):03d}.png").is_file()
    card = (folder / "README.md").read_text()
    assert card.startswith("---") and "library_name: aigc" in card and "parameters" in card
    assert json.loads((folder / "config.json").read_text())["family"] == family


def test_gan_generator_is_under_four_million_parameters():
    for name in ("gan-mnist", "gan-fashion"):
        assert aigc.load(name, device="cpu").num_parameters() < 4_000_000


def test_checkpoints_folder_stays_small():
    tracked = [p for p in BUNDLED_DIR.rglob("*") if p.is_file() and p.name != "train_state.pt"]
    assert sum(p.stat().st_size for p in tracked) < 40 * 2**20


# The quality bar each bundled model was accepted at (issue 2), as measured by
# `python -m aigc.evaluate` and recorded in its metrics.json.
QUALITY_BAR = {
    "gan-mnist": ("class_accuracy", 0.98),
    "gan-fashion": ("class_accuracy", 0.85),
    "vae-mnist": ("reconstruction_class_accuracy", 0.97),
    "vae-fashion": ("reconstruction_class_accuracy", 0.85),
    # the flow models (issue 12): their round trip must be near exact
    "flow-mnist": ("class_accuracy", 0.97),
    "flow-fashion": ("class_accuracy", 0.85),
}


@pytest.mark.parametrize("name", aigc.BUNDLED)
def test_bundled_metrics_meet_the_quality_bar(name):
    metrics = json.loads((BUNDLED_DIR / name / "metrics.json").read_text())
    key, bar = QUALITY_BAR[name]
    assert metrics[key] >= bar, f"{name}: {key} {metrics[key]} is below {bar}"
    assert metrics["samples_per_class"] >= 1000 and metrics["frechet"] > 0 and metrics["frechet_floor"] > 0
    # No collapsed class. A VAE's class control is a Gaussian per class in its
    # latent space, a blunter tool than the GAN's: its samples of Fashion's
    # Shirt pass as shirts ~30% of the time (chance: 10%).
    per_class = metrics["class_accuracy_per_class"]
    assert min(per_class.values()) > (0.2 if name.startswith("vae") else 0.5), f"{name}: a collapsed class: {per_class}"
    if name.startswith("flow"):   # picture -> noise -> picture through the ODE: only the solver's error
        assert metrics["reconstruction_mse"] < 0.002, metrics["reconstruction_mse"]


# The issues' targets, as recorded in metrics.json: (model, key, "<=" or ">=", target,
# why not met yet or None, issue). The ones not met yet are strict xfails: the day a
# retrained checkpoint meets one, its test turns red and the mark must go.
FLOW_MNIST_ACC = None
FLOW_MNIST_FD = ("Frechet distance 1.93x the floor after 14 epochs (106 CPU-minutes); real images drawn "
                 "1,000 per class, as the samples are, score 1.33x")
FLOW_FASHION_ACC = None
FLOW_FASHION_FD = "Frechet distance 5.71x the floor after 14 epochs (106 CPU-minutes)"
TARGETS = [
    ("gan-mnist", "frechet_ratio", "<=", 3.0, "Frechet distance 3.5x the real-data floor", 5),
    ("gan-fashion", "frechet_ratio", "<=", 5.0, "Frechet distance 16.7x the real-data floor", 5),
    ("vae-mnist", "nll_iw", "<=", 84.0, None, 5),
    ("vae-mnist", "class_accuracy", ">=", 0.95, None, 13),
    ("vae-fashion", "class_accuracy", ">=", 0.90, None, 13),
    ("flow-mnist", "class_accuracy", ">=", 0.99, FLOW_MNIST_ACC, 12),
    ("flow-mnist", "frechet_ratio", "<=", 1.5, FLOW_MNIST_FD, 12),
    ("flow-fashion", "class_accuracy", ">=", 0.95, FLOW_FASHION_ACC, 12),
    ("flow-fashion", "frechet_ratio", "<=", 4.0, FLOW_FASHION_FD, 12),
]


@pytest.mark.parametrize("name, key, op, target", [
    pytest.param(name, key, op, target, id=f"{name}-{key}",
                 marks=[pytest.mark.xfail(strict=True, reason=f"{why}: open work (issue {issue})")] if why else [])
    for name, key, op, target, why, issue in TARGETS])
def test_bundled_metrics_meet_the_measurement_targets(name, key, op, target):
    value = json.loads((BUNDLED_DIR / name / "metrics.json").read_text())[key]
    assert (value <= target) if op == "<=" else (value >= target), f"{name}: {key} {value}, target {op} {target}"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", aigc.BUNDLED)
def test_a_seed_gives_the_same_images_on_cuda_and_cpu(name):
    cpu = aigc.load(name, device="cpu").sample(n=16, labels=None, seed=11)
    cuda = aigc.load(name, device="cuda").sample(n=16, labels=None, seed=11)
    torch.testing.assert_close(cuda, cpu, atol=2e-3, rtol=0)
