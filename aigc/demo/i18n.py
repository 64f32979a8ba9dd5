"""The page in English and Simplified Chinese.

Every word the page shows has a key in locales/en.py and locales/zh.py.
Two kinds of key, by where the words are put together:

    ui.*    fixed words of the page (labels, buttons, tabs, info, choices,
            the header): handed to Gradio's gr.I18n, and the browser
            translates them, so the language switch changes them at once.
    msg.*   words a handler writes (errors, verdicts, tables, captions,
            progress): numbers and names go into them, which gr.I18n cannot
            do (its frontend translates a whole key, not a template), and
            Gradio 6.31 shows a gr.Error's message as sent, untranslated.
            The handler writes them with `say(lang, key, ...)` in the
            page's language.

The page's language reaches a handler as its keyword argument `lang`, from
a gr.State the language switch sets (app.py: inputs_kwargs). An API call
has no page: the State keeps its start value, English, so scripts get
English words and errors, and the API's parameters stay as they were.
A handler never picks words itself: it raises Problem(key, ...) or calls
say(); `friendly` (common.py) renders a Problem in the caller's language.

The browser side: Gradio picks the page's first locale from the browser;
the switch and ?lang= call the frontend's own changeLocale, the function
Gradio's settings panel calls (Gradio has no Python API for it).
"""
from __future__ import annotations

import functools
import json
import logging
import re
from pathlib import Path

import gradio as gr
from gradio.i18n import I18nData

from ..data import class_names
from .locales.en import EN
from .locales.zh import ZH

log = logging.getLogger("aigc.demo")

DEFAULT = "en"
LANGUAGES = {"en": "English", "zh": "简体中文"}   # the switch shows each in its own language
CATALOG = {"en": EN, "zh": ZH}
# Browsers that ask for zh-TW or zh-HK get the Simplified words rather than English.
FRONTEND_LOCALES = {"en": ("en",), "zh": ("zh-CN", "zh")}
LOCALES = {lang: locales[0] for lang, locales in FRONTEND_LOCALES.items()}   # the frontend's locale per language


def language(lang) -> str:
    """A page language from anything (an API call sends nothing: English)."""
    return lang if isinstance(lang, str) and lang in CATALOG else DEFAULT


def say(lang, key: str, **values) -> str:
    """The words of `key` in `lang`, values put into its {fields}. A value
    that is a Text is said in the same language."""
    template = CATALOG[language(lang)].get(key)
    if template is None:   # a key missing from a catalog is a bug; tests/test_i18n.py keeps them in step
        template = EN[key]
    return template.format(**{k: v.say(lang) if isinstance(v, Text) else v for k, v in values.items()})


def say_known(lang, key: str, fallback: str) -> str:
    """say(lang, key) where the catalogues have `key`; `fallback` as it is where not
    (a metric, series, state or family the catalogues do not name)."""
    return say(lang, key) if key in EN else fallback


def class_key(dataset: str, name: str) -> str | None:
    """The key that names a class on the page ("every class"; Fashion-MNIST's
    classes by index); None where the name is shown as it is (digits, unknown names)."""
    if name == "every class":
        return "ui.class.every"
    names = class_names(dataset) if dataset == "fashion" else []
    return f"ui.class.fashion.{names.index(name)}" if name in names else None


def class_label(dataset: str, name: str, lang) -> str:
    """A class name as the page says it ("T-shirt/top" -> "T恤/上衣"; "every
    class"); a name the dataset does not have, as it is."""
    key = class_key(dataset, name)
    return name if key is None else say(lang, key)


class Text:
    """Words to be said later, in the language of whoever reads them."""

    def __init__(self, key: str, **values):
        if key not in EN:
            raise KeyError(f"no words for {key!r} in aigc/demo/locales/en.py")
        self.key, self.values = key, values

    def say(self, lang) -> str:
        return say(lang, self.key, **self.values)

    def __str__(self) -> str:
        return self.say(DEFAULT)


class Problem(gr.Error):
    """Something the visitor can put right, in plain words: its message is
    English (what code and logs see); `friendly` says it in the page's
    language."""

    def __init__(self, key: str, **values):
        self.text = Text(key, **values)
        super().__init__(self.text.say(DEFAULT))

    def say(self, lang) -> str:
        return self.text.say(lang)


MARKER = "__i18n__"   # how gr.I18n's keys travel as text (gradio/i18n.py: I18nData.__str__)
# Page words made when the page is built (which models are loaded, from where): page_i18n's extra.
BUILT = ("ui.sources",)


def ui(key: str) -> I18nData:
    """A fixed word of the page, for any label, info, choice, tab or button."""
    if not key.startswith("ui.") or (key not in EN and key not in BUILT):
        raise KeyError(f"no page words for {key!r} in aigc/demo/locales/en.py")
    return I18nData(key)


def page_i18n(extra: dict[str, dict[str, str]] | None = None) -> gr.I18n:
    """gr.I18n for the page: every ui.* key, plus `extra` ({key: {lang:
    words}} for the BUILT keys, made when the page is built)."""
    words = {lang: {k: v for k, v in catalog.items() if k.startswith("ui.")} for lang, catalog in CATALOG.items()}
    for key, by_lang in (extra or {}).items():
        if key not in BUILT:
            raise KeyError(f"{key!r} is not one of the page's built words {BUILT}")
        for lang in CATALOG:
            words[lang][key] = by_lang.get(lang, by_lang[DEFAULT])
    return gr.I18n(**{locale: words[lang] for lang, locales in FRONTEND_LOCALES.items() for locale in locales})


# ---- errors written by parts of aigc that speak English only -------------------
# aigc.preprocess (ImageError) and aigc.runs (RunError) write their messages in
# English for every caller; for the page they are matched here and said again.
# A message matched by none stays English.
FOREIGN = [(re.compile(p), key) for p, key in [
    (r"^That file is not a picture we can read", "msg.image.not_a_picture"),
    (r"^The uploaded file has gone missing", "msg.image.missing"),
    (r"^That picture is fully transparent", "msg.image.transparent"),
    (r"^That picture looks blank", "msg.image.blank"),
    (r"^That picture has no pixels", "msg.image.no_pixels"),
    (r"^That picture is (?P<w>[\d,]+) x (?P<h>[\d,]+) pixels, too big", "msg.image.too_many_pixels"),
    (r"^That (?:file|picture) is (?:about )?(?P<mb>[\d.]+) MB", "msg.image.too_many_bytes"),
    (r"^One run at a time", "msg.runerror.one_at_a_time"),
    (r"^Run name (?P<name>'.*') is not allowed", "msg.runerror.bad_name"),
    (r"^A run called '(?P<name>[^']*)' already exists", "msg.runerror.exists"),
    (r"It is not running: there is nothing to stop", "msg.runerror.not_running"),
    (r"It is running already: there is nothing to resume", "msg.runerror.running"),
    (r"^'(?P<name>[^']*)' has trained (?P<done>\d+) epochs already", "msg.runerror.trained"),
    (r"^There is no run called (?P<name>'.*?');", "msg.runerror.unknown"),
]]


def foreign(message: str, lang) -> str:
    """An English message from aigc.preprocess or aigc.runs, in `lang`."""
    if language(lang) == DEFAULT:
        return message
    for pattern, key in FOREIGN:
        m = pattern.search(message)
        if m:
            return say(lang, key, **m.groupdict())
    return message


# ---- the browser: the frontend's locale ------------------------------------------
@functools.lru_cache(maxsize=1)
def _core_module() -> str | None:
    """The file name of Gradio's frontend module that exports changeLocale
    (assets/core-<hash>.js; the hash changes with each Gradio release), or
    None when there is not exactly one: the page then looks for it itself."""
    found = sorted((Path(gr.__file__).parent / "templates" / "frontend" / "assets").glob("core-*.js"))
    if len(found) != 1:
        log.warning("expected one core-*.js in Gradio %s's frontend, found %s: the language switch looks for "
                    "it in the page", gr.__version__, [p.name for p in found])
        return None
    return found[0].name


def _set_locale_js() -> str:
    # The module is imported from beside the page's own index-*.js, so it is the same module
    # object the page runs, whatever path the server is mounted under. Gradio loads a locale's
    # words, then switches to them and sets <html lang>: the function returns once that is done,
    # so what the page does next happens in the new language. A locale already shown is left be.
    return f"""async function(lang) {{
        const locale = {json.dumps(LOCALES)}[lang] || "en";
        if (document.documentElement.lang === locale) return;
        const page = document.querySelector('script[src*="/assets/index-"]');
        const name = {json.dumps(_core_module())};
        const url = name ? new URL(name, page ? page.src : new URL("assets/", document.baseURI)).href
            : performance.getEntriesByType("resource").map(e => e.name).find(n => /\\/core-[^/]+\\.js$/.test(n));
        const core = url ? await import(url) : {{}};
        if (!core.changeLocale) return;
        core.changeLocale(locale);
        for (let i = 0; i < 100 && document.documentElement.lang !== locale; i++) {{
            await new Promise(done => setTimeout(done, 50));
        }}
    }}"""


def first_language_js() -> str:
    """The page load's js: ?lang= when it names a language, else the
    browser's first language; the frontend is switched to it, and it is
    handed to the load handler."""
    return f"""async () => {{
        const asked = new URLSearchParams(window.location.search).get("lang");
        const browser = (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
        const lang = {list(LANGUAGES)}.includes(asked) ? asked : browser;
        await ({_set_locale_js()})(lang);
        return [lang];
    }}"""


def switch_js() -> str:
    """The language switch's js: the frontend follows it at once."""
    return f"""async (lang) => {{ await ({_set_locale_js()})(lang); return [lang]; }}"""


# A visitor's own choice goes into the address, so a reload or a bookmark keeps it.
REMEMBER_JS = """(lang) => {
    const url = new URL(window.location.href);
    url.searchParams.set("lang", lang);
    window.history.replaceState(window.history.state, "", url.toString());
    return [];
}"""


def english_api_labels(blocks: gr.Blocks) -> None:
    """The API description (view_api, /info, the API page) names parameters
    by their labels; a label that is a page key would reach a script as the
    key's marker (__i18n__{"__type__": "translation_metadata", "key": ...}).
    Give scripts the English words instead."""
    get_api_info = blocks.get_api_info

    def english(value):
        if isinstance(value, I18nData):
            return EN.get(value.key, value.key)
        if isinstance(value, str) and value.startswith(MARKER):
            try:
                key = json.loads(value[len(MARKER):]).get("key")
            except (ValueError, AttributeError):
                return value
            return EN.get(key, value)
        if isinstance(value, dict):
            return {k: english(v) for k, v in value.items()}
        if isinstance(value, list):
            return [english(v) for v in value]
        return value

    blocks.get_api_info = lambda *a, **kw: english(get_api_info(*a, **kw))
