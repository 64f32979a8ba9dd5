"""The page in English and Simplified Chinese (aigc/demo/i18n.py): both
catalogues complete and in step, handlers speaking the page's language and
English to everyone else, and pictures written in the page's language when
the server has a font for it."""
import ast
import re
import string
from pathlib import Path

import gradio as gr
from gradio.i18n import I18nData
import numpy as np
import pytest
from PIL import Image, ImageFont

import app
from aigc import labels
from aigc.demo import EVERY_CLASS, Studio, check_int
from aigc.demo import i18n
from aigc.demo.i18n import EN, ZH, Problem, Text, foreign, say
from aigc.demo.lettering import Lettering
from aigc.preprocess import NOT_AN_IMAGE

from .tiny_demo import tiny_models, write_checkpoints_dir, write_examples_dir

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "aigc" / "demo" / "locales"


# ---- the catalogues --------------------------------------------------------------------
def test_every_english_key_has_a_chinese_entry_and_no_other():
    assert set(EN) - set(ZH) == set(), "keys with no Chinese words"
    assert set(ZH) - set(EN) == set(), "Chinese words for keys English does not have"
    assert all(isinstance(v, str) and v.strip() for v in [*EN.values(), *ZH.values()])


@pytest.mark.parametrize("name", ["en.py", "zh.py"])
def test_no_key_is_written_twice(name):
    # A dict literal keeps the last of two equal keys without a word: the first would be lost.
    tree = ast.parse((LOCALES / name).read_text())
    keys = [k.value for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys]
    assert len(keys) == len(set(keys)), sorted({k for k in keys if keys.count(k) > 1})


def fields(template: str) -> set[str]:
    """The {names} a template fills in."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


def test_chinese_templates_fill_in_the_same_fields():
    # "s" is English's plural ending; Chinese has none. Any other field missing drops a number or name.
    for key, en in EN.items():
        assert fields(ZH[key]) <= fields(en) and fields(en) - fields(ZH[key]) <= {"s"}, key


def test_page_words_have_no_fields_and_chinese_is_chinese():
    for key in EN:
        if key.startswith("ui."):   # the browser's message format would read { } as fields
            assert "{" not in EN[key] + ZH[key], key
    # a translated page leaves nothing in English by mistake: words with letters only are names
    names = {"GAN", "VAE", "KL", "aigc"}
    latin_only = [k for k, v in ZH.items() if re.fullmatch(r"[\sA-Za-z0-9.,:;()'/_+\-<>{}%*#`=|]+", v)
                  and not set(re.findall(r"[A-Za-z]+", v)) <= names and k not in KEPT_AS_IS]
    assert latin_only == []


# Chinese entries that are the same as English on purpose: names, symbols and numbers.
KEPT_AS_IS = {"ui.family.gan", "ui.family.vae", "msg.series.KL", "msg.closest.end", "msg.train.floor_each"}


def test_every_key_the_code_names_exists():
    # Keys written out whole in app.py and aigc/demo; keys put together at run time
    # (ui.class.fashion.{i}, msg.state.{state}) are checked by the tests that use them.
    sources = [ROOT / "app.py", *sorted((ROOT / "aigc" / "demo").glob("*.py"))]
    named = {k for path in sources for k in re.findall(r'"((?:ui|msg)\.[A-Za-z0-9_.\-]+)"', path.read_text())}
    assert named and named - set(EN) - set(i18n.BUILT) == set()


def test_the_page_gets_every_page_word_in_both_languages():
    words = i18n.page_i18n({"ui.sources": {"en": "models", "zh": "模型"}}).translations_dict
    page = {k for k in EN if k.startswith("ui.")} | {"ui.sources"}
    assert set(words) == {"en", "zh-CN", "zh"}
    assert set(words["en"]) == set(words["zh-CN"]) == page
    assert words["zh-CN"]["ui.tab.sample"] == "生成" and words["en"]["ui.sources"] == "models"
    with pytest.raises(KeyError):
        i18n.ui("ui.no.such.key")


def test_plot_axes_get_words_not_page_keys(tmp_path):
    # Gradio 6.31 shows a plot's axis titles given as page keys untranslated once new data
    # arrive: the page sends them in words (app.py, axis_titles).
    models = tiny_models()
    demo = app.build_demo(models, checkpoints_dir=write_checkpoints_dir(tmp_path / "checkpoints", models),
                          examples_dir=write_examples_dir(tmp_path / "examples"))
    plots = [b for b in demo.blocks.values() if isinstance(b, (gr.LinePlot, gr.ScatterPlot))]
    assert len(plots) == 4
    assert [p for p in plots for a in ("x_title", "y_title", "color_title") if isinstance(getattr(p, a), I18nData)] \
        == []
    assert all(isinstance(p.title, I18nData) for p in plots)   # a plot's title the browser does translate


# ---- saying things -----------------------------------------------------------------------
def test_say_fills_in_values_and_words_in_the_same_language():
    what = Text("msg.what.count")
    assert say("en", "msg.error.whole_number", what=what, lo=1, hi=1000, value="0") == \
        "How many must be a whole number from 1 to 1,000; got 0."
    assert say("zh", "msg.error.whole_number", what=what, lo=1, hi=1000, value="0") == \
        "数量必须是 1 到 1,000 之间的整数；收到的是 0。"
    assert say("fr", "msg.what.count") == say(None, "msg.what.count") == "How many"   # no page: English


def test_a_problem_is_english_for_code_and_the_page_language_through_friendly(studio):
    e = Problem("msg.error.empty_sketch")
    assert isinstance(e, gr.Error) and e.message == EN["msg.error.empty_sketch"]
    with pytest.raises(gr.Error) as zh:
        studio.sample("gan", "mnist", "Sneaker", 4, 0, 1.0, lang="zh")
    assert zh.value.message.startswith("'Sneaker' 不是 mnist 的类别")
    with pytest.raises(gr.Error) as en:
        studio.sample("gan", "mnist", "Sneaker", 4, 0, 1.0)
    assert en.value.message.startswith("'Sneaker' is not a class of mnist")
    with pytest.raises(gr.Error) as seed:
        studio.sample("gan", "mnist", "3", 4, -1, 1.0, lang="zh")
    assert seed.value.message.startswith("种子必须是 0 到 4,294,967,295 之间的整数")
    # a caller that names the thing itself (in English) gets English around it
    with pytest.raises(gr.Error) as it:
        check_int(-1, 0, 3, "It")
    assert it.value.message == "It must be a whole number from 0 to 3; got -1."


def test_messages_from_the_english_only_modules_are_said_again():
    assert foreign(NOT_AN_IMAGE, "zh") == ZH["msg.image.not_a_picture"]
    assert foreign(NOT_AN_IMAGE, "en") == NOT_AN_IMAGE
    assert foreign("That picture is 10,000 x 10,000 pixels, too big to handle here. Pictures can ...", "zh") == \
        "这张图有 10,000 x 10,000 像素，太大了，这里处理不了。请把它缩小。"
    assert foreign("Something nobody foresaw.", "zh") == "Something nobody foresaw."   # unmatched: as it came


def test_an_upload_error_reaches_the_page_in_its_language(studio, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"definitely not a picture")
    with pytest.raises(gr.Error) as e:
        studio.reconstruct("mnist", str(bad), lang="zh")
    assert e.value.message == ZH["msg.image.not_a_picture"]


def test_handlers_write_their_words_in_the_page_language(studio):
    path = studio.example_paths("mnist", 1)[0]
    _, error, verdict = studio.reconstruct("mnist", path, lang="zh")
    assert re.match(r"^(好|一般|差)：", verdict) and "数字" in verdict
    assert studio.reconstruct("mnist", path)[2] == studio.verdict("mnist", error)   # the API's: English
    items, table = studio.compare("mnist", "3", 1, 0, lang="zh")
    assert [c.split(" · ")[0] for _, c in items] == ["GAN", "VAE", "Flow"] and "每张图" in items[0][1]
    assert table.startswith("| 检查点 | 网络运行次数 |")
    losses, *_, facts, metrics, _, _ = studio.train_status("gan-mnist", lang="zh")
    assert set(losses["series"]) == {"判别器", "生成器"} and "| 轮数 | 3（30 步） |" in facts
    assert metrics == ZH["msg.metrics.not_yet"]
    assert ("演示模型" not in str(studio.checkpoint_choices("gan", "mnist"))   # a page key: the browser says it
            and studio.checkpoint_choices("gan", "mnist")[0][0].key == "ui.checkpoint.bundled")


# ---- pictures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A studio whose pictures are written in Pillow's font in every language,
    so these tests need no Chinese font (a Chinese name comes out as boxes,
    but different from the English one)."""
    root = tmp_path_factory.mktemp("i18n")
    models = tiny_models()
    return Studio(models, checkpoints_dir=write_checkpoints_dir(root / "checkpoints", models),
                  examples_dir=write_examples_dir(root / "examples"), output_dir=root / "out",
                  label_fonts={"zh": ImageFont.load_default(size=labels.FONT_SIZE)})   # its own: warned apart


def pixels(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("L"))


def test_class_names_in_pictures_follow_the_page_language(studio):
    en = studio.sample("gan", "fashion", "Sneaker", 4, 1, 1.0)
    zh = studio.sample("gan", "fashion", "Sneaker", 4, 1, 1.0, lang="zh")
    assert en != zh and not np.array_equal(pixels(en), pixels(zh))   # the cache keeps the two apart
    grid = 2 * 30 + 2
    assert np.array_equal(pixels(en)[:grid * 8], pixels(zh)[:grid * 8])   # the same pictures, other words
    # digits are digits in every language: one picture, one file
    assert studio.sample("vae", "mnist", EVERY_CLASS, 2, 1, 1.0) == \
        studio.sample("vae", "mnist", EVERY_CLASS, 2, 1, 1.0, lang="zh")


def test_without_a_font_for_the_language_pictures_keep_english_words():
    lettering = Lettering({"zh": None})
    assert lettering.pick("zh") == ("en", None)
    gan = next(m for m in tiny_models() if (m.family, m.dataset) == ("gan", "fashion"))
    assert lettering.classes(gan, "zh")[0] == tuple(gan.classes)
    found = Lettering({"zh": "/fonts/cjk.ttc"})
    assert found.pick("zh") == ("zh", "/fonts/cjk.ttc") and found.classes(gan, "zh")[0][0] == "T恤/上衣"
    assert found.font(["0", "seed 3"], "zh") is None     # ASCII words: Pillow's font, the same picture as English


def test_find_font_only_returns_a_font_that_writes_the_text(tmp_path):
    not_a_font = tmp_path / "fake.ttc"
    not_a_font.write_bytes(b"no glyphs here")
    found = labels.find_font("T恤/上衣", candidates=[str(not_a_font), str(tmp_path / "missing.ttf")])
    # never the file that is no font; fontconfig's fonts, when it has one that writes Chinese
    assert found != str(not_a_font) and (found is None or labels.missing_glyphs("T恤/上衣", found) == "")
    assert labels.find_font("Bag", candidates=[str(not_a_font)]) != str(not_a_font)


def test_progress_is_told_in_the_page_language(studio):
    seen = []
    studio.sample("vae", "fashion", EVERY_CLASS, 20, 4, 1.0, progress=lambda p, desc=None, **k: seen.append(desc),
                  lang="zh")
    assert seen[0] == "正在画 200 张图"
