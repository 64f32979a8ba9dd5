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
