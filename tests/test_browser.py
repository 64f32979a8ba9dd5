"""A real browser (headless Chromium through Playwright) on the demo built from
tiny models: open the page, visit each tab, make something on each, see it
appear, and save screenshots (to $AIGC_SCREENSHOT_DIR when set, else a temp folder).
The page in both languages (a zh-CN and an en-US browser, the switch,
?lang=), a link made in one browser opened in another, and the README's
screenshots, taken on the bundled models.

Chromium comes from the system (Debian: apt-get install chromium), or
$AIGC_CHROMIUM. This test is never skipped: without a browser it fails.
Chinese words are checked in the page's text, not in pixels: without a
Chinese font (Debian: fonts-wqy-microhei) they pass, and only the
screenshots show boxes."""
import io
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

import app
from aigc import labels
from aigc.data import class_names
from aigc.demo.i18n import EN, ZH

from .tiny_demo import free_port, kill_runs, tiny_models, tiny_run_manager, write_checkpoints_dir, write_examples_dir

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000


def chromium_path() -> str:
    for candidate in (os.environ.get("AIGC_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("no Chromium found: install it (apt-get install chromium) or set AIGC_CHROMIUM; "
                "the browser test must run, not be skipped")


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    models = tiny_models()
    demo = app.build_demo(models, checkpoints_dir=write_checkpoints_dir(root / "checkpoints", models),
                          examples_dir=write_examples_dir(root / "examples"))
    _, local_url, _ = app.launch(demo, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    # One Playwright for the module: its sync API cannot be started twice at once.
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_page(browser, url: str, locale: str = "en-US"):
    """A page in a fresh browser context (its own cookies, storage and
    language) -> (page, the JavaScript errors it has thrown so far)."""
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    return pg, errors


def close_page(pg, errors):
    context = pg.context
    pg.close()
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def page(url, browser):
    pg, errors = open_page(browser, url)
    yield pg
    close_page(pg, errors)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("AIGC_SCREENSHOT_DIR")
    folder = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def loaded(img) -> bool:
    return img.evaluate("el => el.complete && el.naturalWidth > 0")


def no_error_toast(page):
    expect(page.locator(".toast-body.error")).to_have_count(0)


def test_sample_tab_generates_a_new_grid(page, shots):
    expect(page.get_by_role("heading", name="aigc studio")).to_be_visible()
    first = page.locator("#sample-out img")
    expect(first).to_be_visible()
    before = first.get_attribute("src")
    page.get_by_label("Seed", exact=True).fill("12345")
    page.locator("#sample-go").click()
    # The picture is replaced by the one for seed 12345 and actually loads.
    page.wait_for_function("src => { const i = document.querySelector('#sample-out img');"
                           " return i && i.src !== src && i.complete && i.naturalWidth > 0 }", arg=before)
    img = page.locator("#sample-out img")
    # every class, 8 a row, 2 px padding, upscaled 3x, the class names at the left
    assert img.evaluate("el => el.naturalWidth") == 242 * 3 + labels.label_width(class_names("mnist"))
    assert img.evaluate("el => getComputedStyle(el).imageRendering") == "pixelated"
    no_error_toast(page)
    page.screenshot(path=shots / "sample.png", full_page=True)


def test_interpolate_tab_makes_a_strip_and_an_animation(page, shots):
    page.get_by_role("tab", name="Interpolate").click()
    page.get_by_label("two classes").check()
    expect(page.get_by_label("Class B")).to_be_visible()              # the fields follow the mode
    expect(page.get_by_label("Seed B", exact=True)).to_be_hidden()
    page.locator("#interpolate-go").click()
    gif = page.locator("#interpolate-gif img")
    expect(gif).to_be_visible()
    assert ".gif" in gif.get_attribute("src")
    page.wait_for_function("() => { const i = document.querySelector('#interpolate-strip img');"
                           " return i && i.complete && i.naturalWidth > 0 }")
    no_error_toast(page)
    page.screenshot(path=shots / "interpolate.png", full_page=True)


def test_reconstruct_tab_example_and_drawing(page, shots):
    page.get_by_role("tab", name="Reconstruct").click()
    page.locator("#examples-mnist button").nth(3).click()           # the test digit 3
    verdict = page.locator("#reconstruct-verdict textarea")
    expect(verdict).to_have_value(re.compile(r"^(Good|Fair|Poor): .+"))
    page.wait_for_function("() => { const i = document.querySelector('#reconstruct-out img');"
                           " return i && i.complete && i.naturalWidth === 688 }")
    no_error_toast(page)
    page.screenshot(path=shots / "reconstruct.png", full_page=True)

    # An empty sketchpad is refused in plain words...
    page.get_by_role("tab", name="Draw").click()
    page.locator("#sketch-go").click()
    expect(page.get_by_text("The sketchpad is empty")).to_be_visible()
    # ...and a drawing is redrawn.
    canvas = page.locator("canvas").last
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(x0, y0 + box["height"] * 0.06 * k, steps=2)
    page.mouse.up()
    before = page.locator("#reconstruct-out img").get_attribute("src")    # the example's
    page.locator("#sketch-go").click()
    page.wait_for_function("src => { const i = document.querySelector('#reconstruct-out img');"
                           " return i && i.src !== src && i.complete && i.naturalWidth === 688 }", arg=before)
    expect(verdict).to_have_value(re.compile(r"^(Good|Fair|Poor): .+"))
    page.screenshot(path=shots / "reconstruct-drawing.png", full_page=True)


def test_flow_shows_its_controls_draws_a_grid_and_its_path(page, shots):
    page.get_by_role("tab", name="Sample").click()
    expect(page.locator("#flow-controls").first).to_be_hidden()            # GAN picked: no sampler controls
    page.get_by_label("Flow").first.check()
    expect(page.get_by_label("Steps (more: slower", exact=False).first).to_be_visible()
    expect(page.get_by_label("Guidance (1: none", exact=False).first).to_be_visible()
    before = page.locator("#sample-out img").get_attribute("src")
    page.locator("#sample-go").click()
    page.wait_for_function("src => { const i = document.querySelector('#sample-out img');"
                           " return i && i.src !== src && i.complete && i.naturalWidth > 0 }", arg=before)
    page.locator("#sample-path-go").click()
    page.wait_for_function("() => { const i = document.querySelector('#sample-path-strip img');"
                           " return i && i.complete && i.naturalWidth > 0 }")
    assert ".gif" in page.locator("#sample-path-gif img").get_attribute("src")
    no_error_toast(page)
    page.screenshot(path=shots / "sample-flow.png", full_page=True)
    page.get_by_label("GAN").first.check()                                   # back as the other tests expect
    expect(page.locator("#flow-controls").first).to_be_hidden()


def test_clean_up_my_drawing_returns_a_picture(page, shots):
    page.get_by_role("tab", name="Reconstruct").click()
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("canvas").last
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.25
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + box["width"] * 0.4, y0, steps=4)                # a rough 7: a bar, then a slant
    page.mouse.move(x0 + box["width"] * 0.15, y0 + box["height"] * 0.5, steps=6)
    page.mouse.up()
    before = page.locator("#reconstruct-out img").get_attribute("src")
    page.locator("#cleanup-go").click()
    page.wait_for_function("src => { const i = document.querySelector('#reconstruct-out img');"
                           " return i && i.src !== src && i.complete && i.naturalWidth > 0 }", arg=before)
    expect(page.locator("#reconstruct-verdict textarea")).to_have_value(re.compile(r"clean picture of 7"))
    no_error_toast(page)
    page.screenshot(path=shots / "cleanup.png", full_page=True)


def test_training_tab_shows_curves_grid_and_facts(page, shots):
    page.get_by_role("tab", name="Train status").click()
    expect(page.get_by_text("3 (30 steps)")).to_be_visible()
    grid = page.locator("#train-grid img")
    expect(grid).to_be_visible()
    assert loaded(grid)
    expect(page.get_by_text("generator").first).to_be_visible()          # the loss legend
    last = grid.get_attribute("src")
    page.get_by_label("Epoch (1 to 3)", exact=False).first.fill("1")   # the slider's number box
    page.get_by_label("Epoch (1 to 3)", exact=False).first.press("Enter")
    page.wait_for_function("src => { const i = document.querySelector('#train-grid img');"
                           " return i && i.src !== src && i.complete && i.naturalWidth > 0 }", arg=last)
    page.screenshot(path=shots / "training.png", full_page=True)
    assert {"interpolate.png", "reconstruct-drawing.png", "reconstruct.png", "sample.png",
            "training.png"} <= {p.name for p in shots.glob("*.png")}


@pytest.fixture(scope="module")
def training_url(tmp_path_factory):
    """A demo that lets visitors train, with tiny runs (synthetic data, tiny models)."""
    root = tmp_path_factory.mktemp("browser-runs")
    models = tiny_models()
    runs = tiny_run_manager(root, images=512)
    demo = app.build_demo(models, checkpoints_dir=write_checkpoints_dir(root / "checkpoints", models),
                          examples_dir=write_examples_dir(root / "examples"), runs=runs, allow_training=True)
    _, local_url, _ = app.launch(demo, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield local_url
    finally:
        demo.close()
        kill_runs(runs.runs_dir)


def test_training_from_the_page_live_then_stopped_then_picked(training_url, browser, shots):
    pg, errors = open_page(browser, training_url)
    pg.get_by_role("tab", name="Train status").click()
    pg.locator("#train-run-name textarea, #train-run-name input").first.fill("page-run")
    pg.get_by_label("Epochs").first.fill("20")
    pg.get_by_label("Epochs").first.press("Enter")
    pg.locator("#train-start").click()
    expect(pg.locator("#train-message")).to_contain_text("Started 'page-run'")
    expect(pg.locator("#train-name input")).to_have_value("run:page-run")
    # The timer brings the bar, the time left, the curves and the newest grid while it trains.
    live = pg.locator("#train-live")
    expect(live).to_contain_text(re.compile(r"epoch \d+ of 20, step \d+ of 8; it should finish in about"),
                                 timeout=60_000)
    expect(pg.get_by_text("generator").first).to_be_visible(timeout=10_000)
    pg.wait_for_function("() => { const i = document.querySelector('#train-grid img');"
                         " return i && i.complete && i.naturalWidth === 604 }")
    expect(pg.locator("#train-run-name textarea, #train-run-name input").first).not_to_have_value("page-run")
    pg.screenshot(path=shots / "training-live.png", full_page=True)

    pg.locator("#train-stop").click()
    expect(live).to_contain_text("was stopped", timeout=30_000)
    done = int(re.search(r"(\d+) of 20 epochs done", live.inner_text()).group(1))

    # The stopped run is a checkpoint in the Sample tab's picker, and draws.
    pg.get_by_role("tab", name="Sample").click()
    pg.get_by_label("Checkpoint").first.click()
    pg.get_by_role("option", name=f"page-run (your run, {done} epoch").click()
    before = pg.locator("#sample-out img").get_attribute("src")
    pg.locator("#sample-go").click()
    pg.wait_for_function("src => { const i = document.querySelector('#sample-out img');"
                         " return i && i.src !== src && i.complete && i.naturalWidth > 0 }", arg=before)
    no_error_toast(pg)
    close_page(pg, errors)


# ---- two languages -------------------------------------------------------------------------
# Each tab by its name in each language, and a label on it that only that language writes.
TABS = {"zh-CN": [("生成", "种子"), ("渐变", "在什么之间渐变"), ("重建", "训练数据"), ("比较", "同一种子、类别和数据集，逐个模型"),
                  ("训练情况", "刷新")],
        "en-US": [("Sample", "Seed"), ("Interpolate", "Morph between"), ("Reconstruct", "Trained on"),
                  ("Compare", "The same seed, class and dataset, model by model"), ("Train status", "Refresh")]}
# English page phrases (several words, no markup) that a Chinese page must not show.
ENGLISH = sorted({v for k, v in EN.items() if k.startswith("ui.") and " " in v and not set("*`\n") & set(v)
                  and v != ZH[k]}, key=len, reverse=True)
# Words wider than the box that holds them (a label, a button, a tab): cut off or spilling over.
# Boxes a few pixels high or wide are the page's hidden copies (screen-reader text, tab menus).
OVERFLOWING = """() => [...document.querySelectorAll('button, label, [role=tab], [data-testid=block-info]')]
    .filter(e => e.offsetParent !== null && e.clientWidth > 10 && e.clientHeight > 5 && e.innerText.trim())
    .filter(e => e.scrollWidth > e.clientWidth + 6)
    .map(e => e.innerText.trim().slice(0, 60))"""


def untranslated(pg, locale: str) -> list[str]:
    """Words on the page that are not in its language: English page phrases on
    a Chinese page, Chinese on an English one, and page keys shown raw."""
    text = pg.locator("body").inner_text() + " ".join(pg.eval_on_selector_all(   # the plots' words too
        "svg text", "texts => texts.filter(t => t.getBoundingClientRect().width > 0).map(t => t.textContent)"))
    raw = re.findall(r"__i18n__|\bui\.[a-z_]+\.[a-z_]+", text)
    if locale == "zh-CN":
        return raw + [p for p in ENGLISH if p in text]
    return raw + re.findall(r"[\u4e00-\u9fff]+", text.replace("简体中文", ""))


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_browser_language_picks_the_page_language_on_every_tab(url, browser, shots, locale):
    pg, errors = open_page(browser, url, locale)
    lang = "zh" if locale == "zh-CN" else "en"
    expect(pg.locator("#lang-switch input:checked")).to_have_value(lang)
    for i, (tab, label) in enumerate(TABS[locale]):
        pg.get_by_role("tab", name=tab, exact=True).click()
        expect(pg.get_by_text(label, exact=True).first).to_be_visible()
        if i == 0:   # the server's words too: the loaded models, in the page's language
            expect(pg.locator("#sources")).to_contain_text("已加载的模型" if lang == "zh" else "Models loaded")
            # A visitor reads the first tab while the page's opening events end: the other tabs are then
            # drawn from what arrived while they were hidden (Gradio left plots' axis titles untranslated).
            pg.wait_for_timeout(2500)
        if i == 4:   # the curves drawn, their series named by the server, their axes in the page's language
            expect(pg.get_by_text("生成器" if lang == "zh" else "generator", exact=True).first).to_be_visible()
            axis = (ZH if lang == "zh" else EN)["ui.train.epoch_axis"]
            expect(pg.locator("svg text").filter(has_text=re.compile(f"^{axis}$")).first).to_be_visible()
        assert untranslated(pg, locale) == [], f"{tab}: words not in {locale}"
        assert pg.evaluate(OVERFLOWING) == [], f"{tab}: text cut off"
        pg.screenshot(path=shots / f"{lang}-{TABS['en-US'][i][0].replace(' ', '-').lower()}.png", full_page=True)
    no_error_toast(pg)
    close_page(pg, errors)


def test_the_switch_and_the_address_change_the_language(url, browser):
    pg, errors = open_page(browser, url + "?lang=zh", "en-US")      # the address wins over the browser
    expect(pg.get_by_role("tab", name="生成", exact=True)).to_be_visible()
    pg.get_by_role("tab", name="重建", exact=True).click()
    pg.get_by_role("tab", name="手绘", exact=True).click()
    pg.locator("#sketch-go").click()                                 # an error from a handler: in Chinese
    expect(pg.locator(".toast-body.error")).to_contain_text(ZH["msg.error.empty_sketch"])
    pg.get_by_label("English", exact=True).check()                   # the switch: at once, no reload
    expect(pg.get_by_role("tab", name="Reconstruct", exact=True)).to_be_visible()
    assert "lang=en" in pg.url                                       # a reload keeps the pick
    pg.locator(".toast-close").first.click()
    pg.locator("#sketch-go").click()
    expect(pg.locator(".toast-body.error").last).to_contain_text(EN["msg.error.empty_sketch"])
    close_page(pg, errors)


# ---- links that reproduce a result ---------------------------------------------------------------
def picture(pg, selector: str) -> bytes:
    return pg.request.get(pg.locator(f"{selector} img").get_attribute("src")).body()


def test_a_link_made_in_one_browser_opens_the_same_picture_in_another(url, browser, shots):
    sender, sender_errors = open_page(browser, url, "zh-CN")
    sender.get_by_label("流模型", exact=True).check()
    sender.get_by_label("服装", exact=True).check()
    expect(sender.locator("#flow-controls").first).to_be_visible()
    sender.get_by_label("类别", exact=True).click()
    sender.get_by_role("option", name="包", exact=True).click()
    sender.get_by_label("种子", exact=True).fill("4242")
    before = sender.locator("#sample-out img").get_attribute("src")
    sender.locator("#sample-go").click()
    sender.wait_for_function("src => { const i = document.querySelector('#sample-out img');"
                             " return i && i.src !== src && i.complete && i.naturalWidth > 0 }", arg=before)
    sender.locator("#sample-link-go").click()
    box = sender.locator("#sample-link textarea, #sample-link input").first
    expect(box).to_have_value(re.compile(r"^http://.*\?tab=sample&lang=zh&"))
    link = box.input_value()
    assert "family=flow" in link and "dataset=fashion" in link and "class=Bag" in link and "seed=4242" in link
    sent = picture(sender, "#sample-out")
    sender.screenshot(path=shots / "link-sender.png", full_page=True)
    close_page(sender, sender_errors)

    receiver, receiver_errors = open_page(browser, link, "en-US")   # a fresh context: nothing shared but the link
    expect(receiver.get_by_role("tab", name="生成", exact=True)).to_be_visible()
    receiver.wait_for_function("name => { const i = document.querySelector('#sample-out img');"
                               " return i && i.complete && i.naturalWidth > 0 && !i.src.endsWith(name) }",
                               arg=before.rsplit("/", 1)[-1])
    expect(receiver.locator("#flow-controls").first).to_be_visible()
    expect(receiver.get_by_label("种子", exact=True)).to_have_value("4242")
    assert picture(receiver, "#sample-out") == sent                    # byte for byte
    receiver.screenshot(path=shots / "link-receiver.png", full_page=True)
    no_error_toast(receiver)
    close_page(receiver, receiver_errors)


def test_a_broken_link_opens_the_defaults_with_a_notice(url, browser):
    pg, errors = open_page(browser, url + "?tab=interpolate&seed_a=abc&mode=spiral", "en-US")
    expect(pg.locator(".toast-body.warning")).to_contain_text("seed_a='abc'")
    expect(pg.locator(".toast-body.warning")).to_contain_text("mode='spiral'")
    expect(pg.get_by_label("Seed A", exact=True)).to_have_value("1")   # the default
    pg.wait_for_function("() => { const i = document.querySelector('#interpolate-strip img');"
                         " return i && i.complete && i.naturalWidth > 0 }")
    no_error_toast(pg)
    close_page(pg, errors)


# ---- the README's pictures ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled_url():
    """The demo on the bundled checkpoints, as `python app.py` serves it."""
    demo = app.build_demo(app.load_models(device="cpu"))
    _, local_url, _ = app.launch(demo, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield local_url
    finally:
        demo.close()


def small_png(png: bytes, path: Path) -> None:
    """A screenshot kept small enough to commit: 256 colours, compressed."""
    with Image.open(io.BytesIO(png)) as img:
        img.convert("RGB").quantize(colors=256).save(path, optimize=True)


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_readme_screenshots(bundled_url, browser, shots, locale):
    lang = locale[:2]
    pg, errors = open_page(browser, bundled_url, locale)
    pg.set_viewport_size({"width": 1280, "height": 860})
    pg.get_by_label("服装" if lang == "zh" else "fashion", exact=True).check()
    before = pg.locator("#sample-out img").get_attribute("src")
    pg.get_by_label("种子" if lang == "zh" else "Seed", exact=True).fill("7")
    pg.locator("#sample-go").click()
    pg.wait_for_function("src => { const i = document.querySelector('#sample-out img');"
                         " return i && i.src !== src && i.complete && i.naturalWidth > 0 }", arg=before)
    pg.locator("#explain-sample").get_by_text((EN if lang == "en" else ZH)["ui.explain.title"]).click()
    assert untranslated(pg, locale) == []
    small_png(pg.screenshot(), shots / f"screenshot-{lang}.png")
    assert (shots / f"screenshot-{lang}.png").stat().st_size < 200_000
    no_error_toast(pg)
    close_page(pg, errors)


def test_compare_tab_shows_every_family_and_its_chart(bundled_url, browser, shots):
    """The bundled checkpoints side by side, each captioned with its measured
    numbers, and the chart of quality against speed with a point per checkpoint."""
    pg, errors = open_page(browser, bundled_url)
    pg.get_by_role("tab", name="Compare").click()
    chart = pg.locator("#compare-chart")
    expect(chart.locator("canvas, svg").first).to_be_visible()       # drawn on opening the tab
    pg.locator("#compare-go").click()
    thumbs = pg.locator("#compare-out img")
    expect(thumbs).to_have_count(3, timeout=120_000)   # the first comparison also times each model once
    pg.wait_for_function("() => [...document.querySelectorAll('#compare-out img')]"
                         ".every(i => i.complete && i.naturalWidth > 0)")
    captions = pg.locator("#compare-out").inner_text()
    for family in ("GAN", "VAE", "Flow"):
        assert re.search(rf"{family} · class accuracy \d+\.\d% · Frechet [\d.]+x floor", captions), captions
    expect(pg.locator("#compare-table table tr")).to_have_count(4)    # a header and a row per family
    no_error_toast(pg)
    pg.screenshot(path=shots / "compare.png", full_page=True)
    close_page(pg, errors)
