"""Links that reproduce a result (aigc/demo/links.py): a tab's inputs made
into a query, read back when the page opens, and the same picture drawn;
anything unusable in a link falls back to the defaults with a notice."""
import types
import warnings
from urllib.parse import parse_qs, urlsplit

import gradio as gr
import pytest

from aigc.demo import EVERY_CLASS, Studio
from aigc.demo.links import (COMPARE_FIELDS, COMPARE_RESULTS, INTERPOLATE_FIELDS, INTERPOLATE_RESULTS,
                             SAMPLE_DEFAULTS, SAMPLE_FIELDS, SAMPLE_RESULTS, number)

from .tiny_demo import tiny_models, write_checkpoints_dir, write_examples_dir

S, I = len(SAMPLE_FIELDS) + SAMPLE_RESULTS, len(INTERPOLATE_FIELDS) + INTERPOLATE_RESULTS


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("links")
    models = tiny_models()
    return Studio(models, checkpoints_dir=write_checkpoints_dir(root / "checkpoints", models),
                  examples_dir=write_examples_dir(root / "examples"), output_dir=root / "out", label_fonts={})


def query(box: gr.Textbox) -> dict[str, str]:
    assert box.visible and box.value.startswith("?")
    return {k: v[0] for k, v in parse_qs(urlsplit(box.value).query, keep_blank_values=True).items()}


def open_link(studio, params: dict, lang: str = "en"):
    """open_link as the page calls it -> (its outputs, the notices it gave)."""
    with warnings.catch_warnings(record=True) as notices:   # gr.Warning outside a page event: a warning
        warnings.simplefilter("always")
        out = studio.open_link(lang, types.SimpleNamespace(query_params=params))
    return out, [str(w.message) for w in notices]


def value(update):
    return update.value if isinstance(update, gr.components.Component) else update


def test_a_sample_link_opens_the_same_picture(studio):
    args = ("flow", "fashion", "Bag", 5, 42, 0.35000000000000003, "bundled", 3, 2.5)
    link = query(studio.sample_link(*args, lang="zh"))
    assert link == {"tab": "sample", "lang": "zh", "family": "flow", "dataset": "fashion", "class": "Bag",
                    "count": "5", "seed": "42", "temperature": "0.35000000000000003", "steps": "3", "guidance": "2.5"}
    out, notices = open_link(studio, link, "zh")
    assert notices == [] and out[:2] == ("zh", "zh") and out[2].selected == "sample"
    sample = out[3:3 + S]
    assert [value(v) for v in sample[:-1]] == ["flow", "fashion", "Bag", 5, 42, 0.35000000000000003, "bundled", 3, 2.5]
    assert sample[-1] == studio.sample(*args, lang="zh")              # the very same file: the same bytes
    assert all(v is gr.skip() or isinstance(v, type(gr.skip())) for v in out[3 + S:])   # other tabs untouched


def test_steps_and_guidance_only_where_they_apply(studio):
    link = query(studio.sample_link("gan", "mnist", "3", 8, 1, 1.0, "bundled", 10, 3.0))
    assert "steps" not in link and "guidance" not in link and "checkpoint" not in link
    out, notices = open_link(studio, link)
    assert notices == [] and out[3 + S - 1] == studio.sample("gan", "mnist", "3", 8, 1, 1.0)


def test_bad_or_missing_values_fall_back_to_the_defaults_with_a_notice(studio):
    out, notices = open_link(studio, {"tab": "sample", "family": "dcgan", "dataset": "mnist", "class": "Sneaker",
                                      "count": "500", "seed": "abc", "temperature": "0.8"}, "en")
    sample = [value(v) for v in out[3:3 + S]]
    assert sample[:6] == ["gan", "mnist", EVERY_CLASS, SAMPLE_DEFAULTS["count"], 0, 0.8]   # temperature kept
    assert sample[-1] == studio.sample("gan", "mnist", EVERY_CLASS, SAMPLE_DEFAULTS["count"], 0, 0.8)
    assert len(notices) == 1
    for bad in ("family='dcgan'", "class='Sneaker'", "count='500'", "seed='abc'"):
        assert bad in notices[0]
    _, zh = open_link(studio, {"tab": "sample", "seed": "-1"}, "zh")
    assert zh[0].startswith("这个链接中有些设置无法使用") and "seed='-1'" in zh[0] and "family（缺失）" in zh[0]


def test_a_page_without_a_link_is_left_as_it_is(studio):
    out, notices = open_link(studio, {}, "zh")
    assert notices == [] and out[:2] == ("zh", "zh")
    assert all(isinstance(v, type(gr.skip())) for v in out[2:])
    out, notices = open_link(studio, {"tab": "../../etc"}, "en")
    assert len(notices) == 1 and "tab='../../etc'" in notices[0]


def test_an_interpolation_link_opens_the_same_strip(studio):
    args = ("classes", "vae", "fashion", 7, 9, "Trouser", "Bag", None, None, "linear", 6)
    link = query(studio.interpolate_link(*[a for i, a in enumerate(args) if i not in (7, 8)], "bundled"))
    assert link["mode"] == "classes" and "seed_b" not in link and link["class_b"] == "Bag"
    out, notices = open_link(studio, link)
    interpolate = out[3 + S:3 + S + I]
    assert notices == [] and out[2].selected == "interpolate"
    assert tuple(interpolate[-2:]) == studio.interpolate(*args)
    assert [value(v) for v in interpolate[:5]] == ["classes", "vae", "fashion", 7, 2]   # seed_b: the default
    # Two pictures cannot travel in a link: the settings do, and the page says so.
    pictures = query(studio.interpolate_link("images", "vae", "mnist", 1, 2, "3", "8", "spherical", 4, "bundled"))
    assert "seed_a" not in pictures and "class_a" not in pictures
    out, notices = open_link(studio, pictures)
    assert len(notices) == 1 and "pictures" in notices[0] and value(out[3 + S + 1]) == "vae"


def test_a_comparison_link_opens_the_same_comparison(studio):
    link = query(studio.compare_link("mnist", "3", 2, 5, ""))
    assert link == {"tab": "compare", "lang": "en", "dataset": "mnist", "class": "3", "count": "2", "seed": "5"}
    out, notices = open_link(studio, link)
    gallery, table = out[-2:]
    assert notices == [] and out[2].selected == "compare"
    assert [p for p, _ in gallery] == [p for p, _ in studio.compare("mnist", "3", 2, 5)[0]]
    assert table.startswith("| checkpoint |")
    assert len(out) == 3 + S + I + len(COMPARE_FIELDS) + COMPARE_RESULTS


def test_numbers_are_written_to_read_back_exactly():
    for v in (0, 42, 4294967295, 1.0, 0.35000000000000003, 0.1 + 0.2, 2.5):
        assert float(number(v)) == v
    assert number(8.0) == "8" and number(0.8) == "0.8"
