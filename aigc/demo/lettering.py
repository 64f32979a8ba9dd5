"""The words drawn into pictures (class names, a strip's two ends, captions,
titles) in the page's language. They are pixels, out of gr.I18n's reach:
the handler draws them in the language it is given. Chinese needs a font
with its glyphs on the server (aigc.labels.find_font); without one the
pictures keep English words in Pillow's font, and say so nowhere but the
README, as a picture with boxes for words would be worse."""
from __future__ import annotations

from .. import labels
from ..model import GenerativeModel
from .i18n import DEFAULT, class_label, language

CJK_PROBE = "T恤/上衣种子图片"   # a font that writes these writes every Chinese word the pictures use


class Lettering:
    """fonts: {language: font for its words} (a path or a loaded font);
    None: a font with Chinese glyphs found on this machine, if any. English
    is always written in Pillow's own font."""

    def __init__(self, fonts: dict | None = None):
        self.fonts = {"zh": labels.find_font(CJK_PROBE)} if fonts is None else dict(fonts)

    def pick(self, lang) -> tuple[str, labels.FontLike]:
        """(the language pictures are written in for a page in `lang`, its
        font): English when this server has no font for `lang`."""
        lang = language(lang)
        font = self.fonts.get(lang)
        return (lang, font) if lang != DEFAULT and font is not None else (DEFAULT, None)

    def font(self, words, lang) -> labels.FontLike:
        """The font for these words: Pillow's own when they are all ASCII, so
        a grid of digits is the same picture in every language."""
        return None if all(w.isascii() for w in words) else self.pick(lang)[1]

    def classes(self, model: GenerativeModel, lang) -> tuple[tuple[str, ...], labels.FontLike]:
        """(model's class names as its pictures are to name them, their font)."""
        words_lang, _ = self.pick(lang)
        names = tuple(class_label(model.dataset, n, words_lang) for n in model.classes)
        return names, self.font(names, words_lang)
