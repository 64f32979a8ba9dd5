"""The Compare tab, and the Sample tab's copying check and download, on tiny
models and a synthetic training set."""
from __future__ import annotations

import csv
import io
import zipfile

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from aigc.demo import Studio
from aigc.demo.sample import NEIGHBOUR_SAMPLES, NEIGHBOURS_K

from .tiny_demo import tiny_models, write_checkpoints_dir, write_examples_dir, write_synthetic_datasets


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    models = tiny_models()
    for m in models:   # as aigc.load marks a model from a local folder: its metrics.json is read from there
        m.save_pretrained(root / "ckpt" / f"{m.family}-{m.dataset}")
        m.source = f"local:{root / 'ckpt' / f'{m.family}-{m.dataset}'}"
    (root / "ckpt" / "gan-mnist" / "metrics.json").write_text(
        '{"class_accuracy": 0.75, "frechet_ratio": 4.25, "precision": 0.5, "recall": 0.25, '
        '"nn_distance": 5.0, "nn_distance_real": 4.0}')
    return Studio(models, checkpoints_dir=write_checkpoints_dir(root / "checkpoints", models),
                  examples_dir=write_examples_dir(root / "examples"), output_dir=root / "out",
                  data_dir=str(write_synthetic_datasets(root / "data", train=300, test=16)))


def test_compare_draws_every_family_with_its_numbers(studio):
    items, table = studio.compare("mnist", "3", 2, 5)
    assert [c.split(" · ")[0] for _, c in items] == ["GAN", "VAE", "Flow"]
    gan = items[0][1]
    assert "class accuracy 75.0%" in gan and "Frechet 4.2x floor" in gan and "recall 0.25" in gan
    assert "ms per image" in gan and "M parameters" in gan
    assert "not evaluated" in items[1][1]                    # no metrics.json: said, not invented
    # the same pictures as the Sample tab draws for that family, class and seed
    assert items[2][0] == studio.sample("flow", "mnist", "3", 2, 5, 1.0)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 4 and rows[3].startswith("| Flow | 8 |")   # header + a row per family; 4 midpoint: 8


def test_compare_refuses_an_unknown_run_in_plain_words(studio):
    with pytest.raises(gr.Error, match="No finished or stopped run"):
        studio.compare("mnist", "3", 2, 5, "run:nope")


def test_the_chart_has_a_point_per_evaluated_checkpoint(studio):
    frame = studio.quality_speed()
    assert list(frame["checkpoint"]) == ["gan-mnist"] and frame["Frechet / floor"][0] == 4.25
    assert frame["ms per image"][0] > 0


def test_closest_training_images_are_shown_with_their_space(studio, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))   # the features' cache
    png, words = studio.closest("gan", "mnist", "every class", 3, 0, 1.0, "bundled", None, None, "pixels")
    assert "pixel space" in words and "real test images" in words and "4.00" in words
    img = Image.open(png)
    # one row per picture: 16 of the 30, every class's first ones first
    rows = np.asarray(img.convert("L"))[:, 10] < 128   # the first column of each generated picture
    assert img.height > NEIGHBOUR_SAMPLES * 28 * 3
    assert rows.any()
    png2, words2 = studio.closest("gan", "mnist", "every class", 3, 0, 1.0, "bundled", None, None, "features")
    assert "feature space" in words2 and png2 != png
    assert list(tmp_path.joinpath("aigc").glob("*.safetensors"))   # the training features, cached on disk


def test_a_model_that_copies_is_flagged(studio, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    index = studio.neighbour_index("mnist")
    found = index.search(index.train.floats(list(range(NEIGHBOURS_K))), k=2)
    words = studio.sample_tab._verdict(studio.models[("gan", "mnist")], found, "pixels", 3)
    assert "3 of 3" in words and "copy" in words


def test_download_is_a_labelled_balanced_set(studio):
    path = studio.download("vae", "fashion", "every class", 25, 1, 1.0, "bundled", None, None, "zip")
    with zipfile.ZipFile(path) as z:
        rows = list(csv.DictReader(io.StringIO(z.read("metadata.csv").decode())))
        assert len(rows) == 25 and len([n for n in z.namelist() if n.endswith(".png")]) == 25
        counts = {}
        for r in rows:
            counts[r["class_name"]] = counts.get(r["class_name"], 0) + 1
        assert len(counts) == 10 and max(counts.values()) - min(counts.values()) <= 1
    with pytest.raises(gr.Error, match="How many to download"):
        studio.download("vae", "fashion", "every class", 1001, 1, 1.0, "bundled", None, None, "zip")
