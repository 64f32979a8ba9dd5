"""The demo's handlers, called directly on tiny models."""

import json
import shutil

import gradio as gr
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw

from aigc import labels, latent
from aigc.demo import EVERY_CLASS, MAX_COUNT, Studio, picture
from aigc.demo.sample import CHUNK
from aigc.demo.train_status import FLOOR_SERIES, LOG_AXIS, distance_curves, distance_plot
from aigc.preprocess import NOT_AN_IMAGE, prepare

from .tiny_demo import tiny_models, write_checkpoints_dir, write_examples_dir


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    models = tiny_models()
    return Studio(models, checkpoints_dir=write_checkpoints_dir(root / "checkpoints", models),
                  examples_dir=write_examples_dir(root / "examples"), output_dir=root / "out")


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


def opened(path: str) -> Image.Image:
    assert path.endswith(".png")
    with Image.open(path) as img:
        return img.copy()


def cell(img: Image.Image, row: int, col: int, ncols: int, x0: int = 0, y0: int = 0,
         scale: int | None = None) -> np.ndarray:
    """The 28x28 picture at (row, col) of a grid of ncols pictures a row (2 px
    padding, upscaled by `scale`, None: as aigc.latent.tile_scale would) whose
    top-left corner is at (x0, y0): (0, 0) for a class's grid named underneath."""
    scale = scale or latent.tile_scale(30 * ncols + 2)
    a = np.asarray(img)[y0::scale, x0::scale]
    return a[2 + 30 * row:30 + 30 * row, 2 + 30 * col:30 + 30 * col]


def named_underneath(img: Image.Image, grid_size: tuple[int, int]) -> bool:
    """Whether img is a grid of grid_size with writing underneath it, and nothing else."""
    a = np.asarray(img)
    return img.width == grid_size[0] and img.height > grid_size[1] and a[grid_size[1]:].min() < 255


# ---- sample ------------------------------------------------------------------------
def test_same_inputs_same_picture_other_seed_other_picture(studio):
    a = opened(studio.sample("gan", "mnist", "3", 64, 7, 1.0))
    assert np.array_equal(pixels(a), pixels(opened(studio.sample("gan", "mnist", "3", 64, 7, 1.0))))
    assert not np.array_equal(pixels(a), pixels(opened(studio.sample("gan", "mnist", "3", 64, 8, 1.0))))
    assert a.mode == "L" and named_underneath(a, (242 * 3, 242 * 3))  # an 8x8 grid, upscaled 3x, and its class
    assert studio.sample("gan", "mnist", "3", 64, 7, 1.0) == studio.sample("gan", "mnist", "3", 64, 7, 1.0)  # one file


def test_sample_is_what_the_model_draws(studio):
    gan = studio.models[("gan", "fashion")]
    img = opened(studio.sample("gan", "fashion", "Sneaker", 4, 11, 0.7))       # a 2x2 grid, scale 8
    expected = latent.to_uint8(gan.sample(4, gan.classes.index("Sneaker"), 11, 0.7)[3])
    assert np.array_equal(cell(img, 1, 1, 2), expected)


@pytest.mark.parametrize("family", ["gan", "vae"])
def test_every_class_is_one_row_per_class_same_noise_per_column(studio, family):
    model = studio.models[(family, "mnist")]
    img = opened(studio.sample(family, "mnist", EVERY_CLASS, 3, 5, 1.0))
    layout = labels.grid_layout([3] * 10, labels.label_width(model.classes))
    assert img.size == layout.size and (layout.columns, layout.across) == (3, 1)
    for c in (0, 4, 9):   # row c holds class c, drawn from the same noise as a one-class sample
        row = model.sample(3, c, 5, 1.0)
        x0, y0 = layout.origins[c]
        for j in range(3):
            assert np.array_equal(cell(img, 0, j, 3, x0, y0, layout.scale), latent.to_uint8(row[j]))
        assert np.asarray(img)[y0:y0 + 32 * layout.scale, :x0].min() < 255     # its class name, at the left


def test_every_class_with_a_large_count_wraps_each_class_in_a_block(studio):
    model = studio.models[("gan", "fashion")]
    path = studio.sample("gan", "fashion", EVERY_CLASS, MAX_COUNT, 5, 1.0)
    img = opened(path)
    layout = labels.grid_layout([MAX_COUNT] * 10, labels.label_width(model.classes))
    assert img.size == layout.size and layout.columns == 10 and layout.across > 1   # not a 100-wide strip
    z = latent.seed_noise(5, MAX_COUNT, model.z_dim)
    for c in (1, 8):
        x0, y0 = layout.origins[c]
        drawn = model.generate(z[[0, 42, 99]], c)            # pictures 0, 42 and 99 of class c
        for picture_, j in zip(drawn, (0, 42, 99)):
            assert np.array_equal(cell(img, j // 10, j % 10, 10, x0, y0, layout.scale), latent.to_uint8(picture_))
    again = opened(studio.sample("gan", "fashion", EVERY_CLASS, MAX_COUNT, 5, 1.0))
    assert np.array_equal(pixels(img), pixels(again))


def test_a_flow_models_path_names_the_class_of_each_row(studio):
    flow = studio.models[("flow", "mnist")]
    strip_path, _ = studio.sample_path("flow", "mnist", EVERY_CLASS, 3, 1.0, "bundled", 2, 1.0)
    _, path = flow.generate(latent.seed_noise(3, 1, flow.z_dim).repeat(8, 1), torch.arange(8), steps=2,
                            guidance=1.0, return_path=True)                        # (3, 8, 1, 28, 28)
    rows = path.transpose(0, 1).reshape(-1, 1, 28, 28)
    expected = labels.labelled_grid(rows, torch.arange(8).repeat_interleave(3), flow.classes, columns=3)
    assert np.array_equal(pixels(opened(strip_path)), pixels(expected))    # row i: class i, named at its left
    one, _ = studio.sample_path("flow", "mnist", "5", 3, 1.0, "bundled", 2, 1.0)
    assert named_underneath(opened(one), ((3 * 30 + 2) * 8, (8 * 30 + 2) * 8))   # eight paths of a 5, and "5"


def test_vae_temperature_changes_the_picture(studio):
    a = opened(studio.sample("vae", "mnist", "1", 9, 0, 1.0))
    b = opened(studio.sample("vae", "mnist", "1", 9, 0, 0.3))
    assert not np.array_equal(pixels(a), pixels(b))


@pytest.mark.parametrize("args, match", [
    (("gan", "mnist", "3", 0, 0, 1.0), "How many must be a whole number from 1 to 100"),
    (("gan", "mnist", "3", MAX_COUNT + 1, 0, 1.0), "How many"),
    (("gan", "mnist", "3", 2.5, 0, 1.0), "How many"),
    (("gan", "mnist", "3", "64", 0, 1.0), "How many"),
    (("gan", "mnist", "3", 4, -1, 1.0), "The seed must be a whole number"),
    (("gan", "mnist", "3", 4, 2**40, 1.0), "The seed"),
    (("gan", "mnist", "3", 4, 0, 0.0), "The temperature must be a number above 0"),
    (("gan", "mnist", "3", 4, 0, float("nan")), "The temperature"),
    (("gan", "mnist", "3", 4, 0, 2.5), "The temperature"),
    (("dcgan", "mnist", "3", 4, 0, 1.0), "Unknown model family 'dcgan'"),
    (("gan", "cifar", "3", 4, 0, 1.0), "Unknown dataset 'cifar'"),
    (("gan", "fashion", "3", 4, 0, 1.0), "'3' is not a class of fashion"),
    (("gan", "mnist", None, 4, 0, 1.0), "None is not a class of mnist"),
])
def test_bad_sample_settings_are_refused_in_plain_words(studio, args, match):
    with pytest.raises(gr.Error, match=match):
        studio.sample(*args)


def test_whole_floats_from_the_api_are_accepted(studio):
    assert named_underneath(opened(studio.sample("gan", "mnist", "3", 4.0, 2.0, 1)), (62 * 8, 62 * 8))


def test_an_unexpected_failure_is_an_apology_not_a_traceback(studio, monkeypatch, caplog):
    def broken(*a, **k):
        raise RuntimeError("CUDA out of memory at 0xdeadbeef")
    monkeypatch.setattr(studio.models[("gan", "mnist")], "generate", broken)
    with pytest.raises(gr.Error) as e:
        studio.sample("gan", "mnist", "3", 4, 0, 1.0)
    assert "went wrong on our side" in e.value.message and "0xdeadbeef" not in e.value.message
    assert "0xdeadbeef" in caplog.text      # the details go to the server log


# ---- long work shows progress ----------------------------------------------------------
def test_a_large_grid_or_a_flow_model_reports_its_progress(studio):
    seen = []

    def progress(p, desc=None, **kwargs):
        seen.append((p, desc))

    studio.sample("vae", "fashion", EVERY_CLASS, 20, 3, 1.0, progress=progress)   # 200 pictures: class by class
    assert [p for p, _ in seen] == [c / 10 for c in range(11)] and seen[0][1] == "Drawing 200 pictures"
    seen.clear()
    studio.sample("flow", "mnist", "3", 2, 3, 1.0, "bundled", 3, 1.0, progress=progress)   # a flow model: its steps
    assert seen == [(0.0, "Drawing 2 pictures, 3 steps each"), (1.0, "Drawing 2 pictures, 3 steps each")]
    seen.clear()
    studio.sample("gan", "mnist", "3", 4, 3, 1.0, progress=progress)               # quick: nothing to report
    assert seen == []
    assert CHUNK < 200


def test_a_grid_drawn_class_by_class_is_the_grid_drawn_at_once(studio):
    # Every class is drawn a class at a time, to report progress: the same noise, the same pictures.
    model = studio.models[("vae", "mnist")]
    at_once = model.generate(latent.seed_noise(7, 3, model.z_dim).repeat(10, 1), torch.arange(10).repeat_interleave(3))
    images, y = studio.sample_tab._images(model, EVERY_CLASS, 3, 7, 1.0, {})
    assert torch.equal(y, torch.arange(10).repeat_interleave(3)) and torch.allclose(images, at_once, atol=1e-5)


# ---- interpolate -----------------------------------------------------------------
def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("L")))
        return frames


@pytest.mark.parametrize("path", ["spherical", "linear"])
def test_interpolate_seeds(studio, path):
    strip_path, gif = studio.interpolate("seeds", "gan", "mnist", 1, 2, "3", "8", None, None, path, 5)
    strip = opened(strip_path)
    gan = studio.models[("gan", "mnist")]
    z = latent.interpolate(latent.seed_noise(1, 1, gan.z_dim), latent.seed_noise(2, 1, gan.z_dim), 5, path)
    frames = gan.generate(z, 3)                              # (5, 1, 28, 28)
    x0 = labels.label_width(["seed 1", "seed 2"])            # the strip's ends are named either side
    assert np.array_equal(cell(strip, 0, 0, 5, x0), latent.to_uint8(frames[0]))
    assert np.array_equal(cell(strip, 0, 4, 5, x0), latent.to_uint8(frames[4]))
    assert np.array_equal(cell(strip, 0, 0, 5, x0), latent.to_uint8(gan.sample(1, 3, 1)[0]))  # starts at seed A
    named = labels.labelled_strip(frames, 5, "seed 1", "seed 2", f"class 3, {path} path")
    assert np.array_equal(pixels(strip), pixels(named))
    assert pixels(strip)[:, :x0].min() < 255 and pixels(strip)[:, -x0:].min() < 255
    played = gif_frames(gif)
    assert len(played) == 2 * 5 - 2                          # there and back
    assert played[0].shape == (224, 224)
    assert np.array_equal(played[0][::8, ::8], latent.to_uint8(frames[0]))
    assert np.array_equal(played[4][::8, ::8], latent.to_uint8(frames[4]))
    assert np.array_equal(played[5], played[3])              # on the way back


def test_interpolate_classes_morphs_a_into_b(studio):
    strip_path, gif = studio.interpolate("classes", "gan", "fashion", 4, 0, "Trouser", "Bag", None, None, "linear", 6)
    strip = opened(strip_path)
    gan = studio.models[("gan", "fashion")]
    start, end = gan.sample(1, 1, 4)[0], gan.sample(1, 8, 4)[0]   # same noise (seed 4), class 1 then class 8
    x0 = labels.label_width(["Trouser", "Bag"])
    assert np.array_equal(cell(strip, 0, 0, 6, x0), latent.to_uint8(start))
    assert np.array_equal(cell(strip, 0, 5, 6, x0), latent.to_uint8(end))
    bare = labels.labelled_strip(torch.ones(6, 1, 28, 28), 6, "Trouser", "Bag", "seed 4, linear path")
    h = 32 * latent.tile_scale(6 * 30 + 2)   # the words either side of the row: as written for these two classes
    assert np.array_equal(pixels(strip)[:h, :x0], pixels(bare)[:h, :x0]) and pixels(bare)[:h, :x0].min() < 255
    assert len({f.tobytes() for f in gif_frames(gif)}) == 6         # every step is a new picture


def test_interpolate_images_with_the_vae(studio):
    a, b = studio.example_paths("mnist", 2)
    strip_path, gif = studio.interpolate("images", "vae", "mnist", 0, 0, "0", "0", a, b, "spherical", 3)
    strip = opened(strip_path)
    vae = studio.models[("vae", "mnist")]
    ends = vae.reconstruct(torch.cat([prepare(a, "mnist"), prepare(b, "mnist")]))
    x0 = labels.label_width(["picture A", "picture B"])
    assert np.array_equal(cell(strip, 0, 0, 3, x0), latent.to_uint8(ends[0]))   # the VAE's version of picture A
    assert np.array_equal(cell(strip, 0, 2, 3, x0), latent.to_uint8(ends[1]))


def test_a_60_step_interpolation_wraps_the_strip(studio):
    strip_path, gif = studio.interpolate("seeds", "vae", "fashion", 1, 2, "Bag", "Bag", None, None, "linear", 60)
    strip = opened(strip_path)
    assert strip.size[1] > strip.size[0] / 3              # 5 rows of 12, not one long line
    assert len(gif_frames(gif)) == 118


@pytest.mark.parametrize("args, match", [
    (("seeds", "gan", "mnist", 1, 2, "3", "8", None, None, "spherical", 1),
     "Steps must be a whole number from 2 to 60"),
    (("seeds", "gan", "mnist", 1, 2, "3", "8", None, None, "spherical", 61), "Steps"),
    (("seeds", "gan", "mnist", 1, 2, "3", "8", None, None, "cubic", 8), "Unknown path 'cubic'"),
    (("blend", "gan", "mnist", 1, 2, "3", "8", None, None, "linear", 8), "Unknown interpolation 'blend'"),
    (("seeds", "gan", "mnist", 1, -2, "3", "8", None, None, "linear", 8), "Seed B"),
    (("classes", "gan", "mnist", 1, 2, "3", EVERY_CLASS, None, None, "linear", 8), "'every class' is not a class"),
    (("images", "vae", "mnist", 1, 2, "3", "8", None, None, "linear", 8), "Please give the first picture"),
])
def test_bad_interpolation_settings(studio, args, match):
    with pytest.raises(gr.Error, match=match):
        studio.interpolate(*args)


def test_same_interpolation_same_gif_file(studio):
    args = ("seeds", "gan", "mnist", 1, 2, "3", "8", None, None, "linear", 4)
    assert studio.interpolate(*args)[1] == studio.interpolate(*args)[1]


# ---- reconstruct -----------------------------------------------------------------
def panels(img: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three 224x224 panels of a reconstruction picture, 8 px apart, captions below."""
    a = np.asarray(img)
    return a[:224, 0:224], a[:224, 232:456], a[:224, 464:688]


def test_reconstruct_an_example(studio):
    path = studio.example_paths("mnist", 1)[0]
    picture_path, error, verdict = studio.reconstruct("mnist", path)
    picture_ = opened(picture_path)
    assert picture_.size == (688, 248) and picture_.mode == "RGB"
    seen, redrawn, heat = panels(picture_)
    x = prepare(path, "mnist")
    r = studio.models[("vae", "mnist")].reconstruct(x)
    assert np.array_equal(seen[::8, ::8, 0], latent.to_uint8(x[0]))
    assert np.array_equal(redrawn[::8, ::8, 1], latent.to_uint8(r[0]))
    assert np.array_equal(heat[::8, ::8], latent.heatmap((x - r).abs()[0]))
    assert error == pytest.approx((x - r).abs().mean().item(), abs=1e-4)
    assert verdict == studio.verdict("mnist", error)


def test_verdict_words_follow_the_error(studio):
    high = np.quantile(studio.reference_errors(studio.models[("vae", "mnist")]), 0.9)
    assert studio.verdict("mnist", high * 0.5).startswith("Good")
    assert studio.verdict("mnist", high * 1.5).startswith("Fair")
    assert studio.verdict("mnist", high * 3).startswith("Poor")


def test_reconstruct_an_upload_and_a_sketch(studio, tmp_path):
    img = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(img).ellipse([80, 40, 220, 260], outline=0, width=25)
    path = tmp_path / "zero.png"
    img.save(path)
    seen = panels(opened(studio.reconstruct("mnist", str(path))[0]))[0]
    assert seen[::8, ::8].max() == 255 and seen[0, 0, 0] == 0     # light on black
    # The sketchpad's value: strokes on a transparent layer.
    sketch = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    sketch.paste(Image.new("RGBA", (300, 300), (0, 0, 0, 255)), mask=Image.eval(img, lambda v: 255 - v))
    from_sketch = opened(studio.reconstruct_sketch("mnist", {"background": None, "layers": [], "composite": sketch})[0])
    assert np.array_equal(panels(from_sketch)[0], seen)


@pytest.mark.parametrize("sketch", [None, {"background": None, "layers": [], "composite": None},
                                    {"composite": Image.new("RGBA", (100, 100), (0, 0, 0, 0))},
                                    {"composite": Image.new("RGB", (100, 100), "white")}])
def test_an_empty_sketch(studio, sketch):
    with pytest.raises(gr.Error, match="The sketchpad is empty"):
        studio.reconstruct_sketch("mnist", sketch)


def test_bad_uploads(studio, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"GIF89a but not really")
    with pytest.raises(gr.Error) as e:
        studio.reconstruct("mnist", str(bad))
    assert e.value.message == NOT_AN_IMAGE
    with pytest.raises(gr.Error, match="Please give the picture"):
        studio.reconstruct("mnist", None)
    with pytest.raises(gr.Error, match="fully transparent"):
        studio.reconstruct("fashion", Image.new("RGBA", (50, 50), (255, 0, 0, 0)))
    with pytest.raises(gr.Error, match="Unknown dataset"):
        studio.reconstruct("svhn", str(bad))


# ---- train status ----------------------------------------------------------------
def plotted(plot: gr.LinePlot) -> pd.DataFrame:
    """What a LinePlot update draws, as a frame."""
    return pd.DataFrame(plot.value["data"], columns=plot.value["columns"])


def test_train_status_of_a_gan(studio):
    losses, fractions, others, slider, grid, facts, metrics, live, runs = studio.train_status("gan-mnist")
    assert isinstance(losses, pd.DataFrame)
    assert set(losses["series"]) == {"discriminator", "generator"} and losses["epoch"].max() == 3
    assert losses[(losses.series == "generator") & (losses.epoch == 2)]["value"].item() == 2.5
    assert fractions.empty and plotted(others).empty and others.y == "value" and others.caption is None
    assert slider.maximum == 3 and slider.value == 3
    assert grid.size == (302, 302)
    assert "| epochs | 3 (30 steps) |" in facts and "| dataset | digits |" in facts and "| family | GAN |" in facts
    assert "once the checkpoint has been evaluated" in metrics
    assert live == "" and runs is None       # a demo without a runs directory reports no runs


def test_train_status_shows_quality_metrics_and_evaluation(studio):
    losses, fractions, others, slider, grid, facts, metrics, _, _ = studio.train_status("vae-mnist")
    assert set(losses["series"]) == {"total (-ELBO)", "reconstruction", "KL"}
    assert set(fractions["series"]) == {"class_accuracy"}
    assert fractions["value"].tolist() == pytest.approx([0.6, 0.7, 0.8])
    drawn = plotted(others)
    assert set(drawn["series"]) == {"frechet"} and drawn["value"].tolist() == [30.0, 20.0, 10.0]
    assert others.y == "log10" and others.y_title == LOG_AXIS and others.tooltip == ["value"]   # a log scale
    assert drawn["log10"].tolist() == pytest.approx(np.log10([30.0, 20.0, 10.0]), abs=1e-4)
    assert "floor unknown" in others.caption          # its metrics.json has no frechet_floor: no line
    assert "| Frechet distance of samples to test images (lower: closer to real) | 12.5 |" in metrics
    assert "| class_accuracy_per_class | 0 0.9, 1 0.8 |" in metrics and "| nll_iw_k | 5000 |" in metrics


def test_distances_are_on_a_log_scale_above_the_real_data_floor(studio):
    folder = studio.checkpoints_dir / "evaluated-run"
    folder.mkdir()
    rows = [{"epoch": e, "loss": 1.0 / e, "frechet": f} for e, f in ((1, 1713.1), (2, 267.4), (3, 36.4))]
    (folder / "history.jsonl").write_text("".join(f"{json.dumps(r)}\n" for r in rows))
    (folder / "metrics.json").write_text(json.dumps({"frechet": 12.1, "frechet_floor": 3.471, "frechet_real": 10000}))
    try:
        others = studio.train_status("evaluated-run")[2]
    finally:
        shutil.rmtree(folder)
    drawn = plotted(others)
    floor = drawn[drawn.series == FLOOR_SERIES]
    assert floor["epoch"].tolist() == [1, 2, 3] and set(floor["value"]) == {3.471}     # a flat line at the floor
    assert floor["log10"].tolist() == pytest.approx([np.log10(3.471)] * 3, abs=1e-4)
    assert drawn[drawn.series == "frechet"]["log10"].tolist() == pytest.approx(np.log10([1713.1, 267.4, 36.4]),
                                                                                abs=1e-4)
    assert others.y == "log10" and "3.471" in others.caption and "10,000 each" in others.caption


def test_distance_curves():
    points = [{"epoch": 1, "value": 100.0, "series": "frechet"}, {"epoch": 2, "value": 10.0, "series": "frechet"},
              {"epoch": 2, "value": 0.0, "series": "other"}]
    frame = distance_curves(points, floor=2.0)
    assert list(frame.columns) == ["epoch", "value", "series", "log10"]
    assert frame["log10"].tolist()[:2] == [2.0, 1.0] and np.isnan(frame["log10"][2])   # no log of 0
    assert frame[frame.series == FLOOR_SERIES][["epoch", "value"]].values.tolist() == [[1, 2.0], [2, 2.0]]
    assert FLOOR_SERIES not in set(distance_curves(points)["series"])                   # floor unknown: no line
    assert distance_curves([], floor=2.0).empty                                          # nothing measured yet
    linear = distance_plot(points, floor=2.0)                # a value of 0 has no logarithm: a linear plot
    assert linear.y == "value" and linear.y_title == "value" and linear.caption is None


def test_train_grid_per_epoch(studio):
    first, last = studio.train_grid("gan-mnist", 1), studio.train_grid("gan-mnist", 3)
    assert first is not None and not np.array_equal(pixels(first), pixels(last))
    assert studio.train_grid("gan-mnist", 9) is None


def test_a_run_that_has_not_finished_an_epoch(studio):
    folder = studio.checkpoints_dir / "vae-fashion"
    folder.mkdir()
    (folder / "training.json").write_text('{"kind": "vae"}')
    (folder / "history.jsonl").write_text("")
    losses, fractions, others, slider, grid, facts, metrics, _, _ = studio.train_status("vae-fashion")
    assert losses.empty and grid is None and slider.visible is False
    assert "no epoch has finished yet" in facts


@pytest.mark.parametrize("name", ["gan-cifar", "../checkpoints", "/etc", None, "run:gan-mnist", "run:../x"])
def test_unknown_checkpoints_are_refused(studio, name):
    with pytest.raises(gr.Error, match="No checkpoint called"):
        studio.train_status(name)


def test_checkpoint_names_bundled_first(studio):
    assert studio.checkpoint_names()[:2] == ["gan-mnist", "vae-mnist"]


def test_model_sources_say_in_plain_words_where_the_models_came_from(studio, monkeypatch):
    gan, vae = studio.models[("gan", "mnist")], studio.models[("vae", "fashion")]
    monkeypatch.setattr(gan, "source", "hub:my-org/aigc-models@0123abcd")
    monkeypatch.setattr(vae, "source", "bundled:checkpoints/vae-fashion")
    monkeypatch.setattr(vae, "source_note", "hub unreachable, used the bundled copy", raising=False)
    text = studio.model_sources()
    words, details = text.split("<details>")
    # the sentence names the models and where from, in the registry's order; the paths wait in the detail
    assert words.startswith("**Models loaded**: from the Hugging Face Hub (my-org/aigc-models): GAN digits; ")
    assert "bundled with this demo: VAE fashion" in words and "`" not in words
    assert "- GAN digits: `hub:my-org/aigc-models@0123abcd`" in details
    assert "- VAE fashion: `bundled:checkpoints/vae-fashion` (hub unreachable, used the bundled copy)" in details
    assert "</summary>" in details and details.rstrip().endswith("</details>")
    zh = studio.model_sources("zh")
    assert "来自 Hugging Face Hub（my-org/aigc-models）：GAN（手写数字）" in zh and "随演示一起提供：VAE（服装）" in zh


def test_studio_refuses_models_it_cannot_serve(tmp_path):
    models = tiny_models()
    with pytest.raises(ValueError, match="two models"):
        Studio(models + models[:1], checkpoints_dir=tmp_path)
    only_gan = Studio(models[:1], checkpoints_dir=tmp_path)
    with pytest.raises(gr.Error, match="no VAE for mnist"):
        only_gan.reconstruct("mnist", Image.new("L", (28, 28)))


def test_picture_is_crisp():
    x = torch.rand(4, 1, 28, 28)
    img = picture(x, nrow=2)
    a = np.asarray(img)
    s = latent.tile_scale(62)
    assert np.array_equal(a, np.kron(a[::s, ::s], np.ones((s, s), np.uint8)))   # blocks of one value: no blur


def test_plain_upload_errors_turns_gradios_own_failure_into_words(tmp_path):
    from gradio.data_classes import ImageData

    from aigc.demo import plain_upload_errors

    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not a picture")
    payload = ImageData(path=str(bad), orig_name="notes.png")
    with pytest.raises(Exception) as bare:     # gradio on its own: an exception the visitor sees as "Error"
        gr.Image(type="filepath", image_mode=None, render=False).preprocess(payload)
    assert not isinstance(bare.value, gr.Error)
    image = plain_upload_errors(gr.Image(type="filepath", image_mode=None, render=False))
    with pytest.raises(gr.Error) as e:
        image.preprocess(payload)
    assert e.value.message == NOT_AN_IMAGE
    good = tmp_path / "ok.png"
    Image.new("L", (5, 5)).save(good)
    assert image.preprocess(ImageData(path=str(good), orig_name="ok.png")) == str(good)

