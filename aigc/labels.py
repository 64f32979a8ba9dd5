"""Pictures that say what they show: the class name beside each block of a
sample grid, a single class's name under its grid, the two ends of an
interpolation strip. The words are drawn into the picture (Pillow), so a
download keeps them. No model, no device; a font file is read only when the
caller names one.

Pillow's bundled font writes ASCII only (not even é). For class names in
another script (T恤/上衣) pass `font`: the path of a font that has their
glyphs (Noto Sans CJK, say) or a loaded ImageFont; find_font looks for one
on this machine. A name the font cannot write is still drawn (as boxes),
and logged once as a warning.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from . import latent

log = logging.getLogger("aigc.labels")

FONT_SIZE = 20        # px: the pictures are upscaled to about 960 px wide (aigc.latent.tile_scale), shown near that
MAX_COLUMNS = 12      # pictures per row of a class's block before it wraps
PADDING = 2           # px around each 28x28 picture before upscaling, as aigc.latent.grid
MARGIN = 8            # px between words and pictures, and around the words
BLOCK_GAP = 12        # px between two classes' blocks
ASPECT = 1.5          # width / height that blocks of several rows are arranged towards: a screen
INK, RULE, PAPER = 60, 200, 255   # gray levels: the words, the line between blocks, the background

FontLike = ImageFont.ImageFont | ImageFont.FreeTypeFont | str | os.PathLike | None
# Where common systems keep a font with Chinese glyphs (Debian's fonts-wqy-microhei and
# fonts-noto-cjk, macOS, Windows); fontconfig's list is asked too, where there is one.
CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
             "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
             "/System/Library/Fonts/PingFang.ttc", "/System/Library/Fonts/STHeiti Light.ttc",
             "C:/Windows/Fonts/msyh.ttc", "C:/Windows/Fonts/simhei.ttf")


@functools.lru_cache(maxsize=8)
def _font_file(path: str, size: int) -> ImageFont.FreeTypeFont:
    # CJK fonts are tens of MB: read each once, not on every picture.
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=8)
def _default_font(size: int):
    return ImageFont.load_default(size=size)


def load_font(font: FontLike = None, size: int = FONT_SIZE):
    """None -> Pillow's bundled font (ASCII); a path -> that TrueType/OpenType
    font at `size` px; a loaded font -> itself."""
    if font is None:
        return _default_font(size)
    if isinstance(font, (str, os.PathLike)):
        return _font_file(os.fspath(font), size)
    return font


def find_font(text: str, candidates=CJK_FONTS) -> str | None:
    """The path of a font file on this machine that writes every character
    of `text` (the first of `candidates`, then of fontconfig's fonts for
    Chinese), or None when there is none."""
    paths = list(candidates)
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10).stdout
            paths += sorted(line.strip().rstrip(":") for line in out.splitlines() if line.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    for path in dict.fromkeys(paths):
        try:
            if os.path.isfile(path) and not missing_glyphs(text, path):
                return path
        except OSError:   # not a font Pillow can read
            continue
    return None


def missing_glyphs(text: str, font: FontLike = None) -> str:
    """The characters of `text` the font has no glyph for, each once, in
    order ("" when it can write all of it): those it draws as its
    missing-glyph box, the one it draws for a private-use character."""
    font = load_font(font)

    def drawn(c: str) -> tuple:
        mask = font.getmask(c)
        return mask.size, bytes(mask)

    box = drawn("\U000FFFFD")
    return "".join(dict.fromkeys(c for c in text if not c.isspace() and drawn(c) == box))


@functools.lru_cache(maxsize=256)
def _check(text: str, font) -> None:
    # Once per text and font: a class name the font cannot write comes out as boxes on every picture.
    missing = missing_glyphs(text, font)
    if missing:
        log.warning("the label font has no glyphs for %r (in %r): pass a font that has them "
                    "(aigc.labels, font=<path of a font file>)", missing, text)


def write(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, anchor: str) -> None:
    """Text in INK at xy (Pillow's anchor: "rm" right-middle, ...)."""
    _check(text, font)
    draw.text(xy, text, fill=INK, font=font, anchor=anchor)


def text_size(text: str, font) -> tuple[int, int]:
    """(width, height) in px of one line of text; the height is at least that
    of "Ag", so a caption of digits and one of names take the same room."""
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    height = max(b[3] - b[1] for b in (draw.textbbox((0, 0), s, font=font) for s in (text, "Ag")))
    return math.ceil(draw.textlength(text, font=font)), math.ceil(height)


def label_width(names: Sequence[str], font: FontLike = None) -> int:
    """The width in px of a column that holds the widest of `names`, with a
    margin each side."""
    font = load_font(font)
    return max(text_size(n, font)[0] for n in names) + 2 * MARGIN


def tiles(images: torch.Tensor, columns: int, padding: int = PADDING) -> np.ndarray:
    """(N, 1, H, W) in [0, 1] -> uint8 (rows (H + p) + p, columns (W + p) + p),
    `columns` pictures per row on white, row-major: aigc.latent.grid's layout,
    but always `columns` wide (a short block keeps the columns of the long ones)."""
    n, _, h, w = images.shape
    rows = math.ceil(n / columns)
    out = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding), PAPER, np.uint8)
    pixels = latent.to_uint8(images).reshape(n, h, w)
    for i in range(n):
        y, x = padding + (i // columns) * (h + padding), padding + (i % columns) * (w + padding)
        out[y:y + h, x:x + w] = pixels[i]
    return out


def block_columns(sizes: Sequence[int], max_columns: int = MAX_COLUMNS) -> int:
    """Pictures per row shared by every block: the largest block on one row if
    it fits; else rows of max_columns / 2 to max_columns pictures, leaving as
    few empty places on the last row as can be, then as few rows (100 -> 10 x 10,
    16 -> 2 x 8, 37 -> 4 rows of 10)."""
    n = max(sizes)
    if n <= max_columns:
        return n
    return min(range(math.ceil(max_columns / 2), max_columns + 1), key=lambda c: (-n % c, -c))


def captioned(img: Image.Image, caption: str, font: FontLike = None) -> Image.Image:
    """A picture with one line of text centred underneath, on white; as wide
    as the picture, or as the text if that is wider. Grayscale ("L")."""
    font = load_font(font)
    tw, th = text_size(caption, font)
    width = max(img.width, tw + 2 * MARGIN)
    out = Image.new("L", (width, img.height + th + 2 * MARGIN), PAPER)
    out.paste(img.convert("L"), ((width - img.width) // 2, 0))
    write(ImageDraw.Draw(out), (width / 2, img.height + MARGIN + th / 2), caption, font, "mm")
    return out


@dataclass(frozen=True)
class GridLayout:
    """Where labelled_grid puts each class's block. Block b's pictures start
    at origins[b] (px, the top-left of its tiles, padding included); its name
    sits in the `gutter` px left of that; picture j of the block is in row
    j // columns, column j % columns, each place (28 + PADDING) * scale px."""
    columns: int                      # pictures per row of a block
    across: int                       # blocks side by side
    scale: int                        # nearest-neighbour upscale of the pictures
    gutter: int                       # px for a block's name, left of its pictures
    size: tuple[int, int]             # (width, height) px of the whole picture
    origins: tuple[tuple[int, int], ...]


def grid_layout(sizes: Sequence[int], gutter: int, columns: int | None = None, aspect: float = ASPECT,
                width: int = 960) -> GridLayout:
    """Blocks of sizes[b] pictures, each `gutter` px of name then its tiles ->
    where they go. columns None: block_columns. Blocks of one row are stacked,
    one per row (a class per row, as a grid of samples reads). Blocks that
    wrap are also put side by side, as many across as brings the picture
    nearest `aspect` (width / height): ten blocks of 10 x 10 stacked would be
    a strip ten times taller than wide, too thin to see on a screen. The
    pictures are upscaled by the largest whole factor (at most 8) that keeps
    the picture within `width` px, at least 1."""
    cols = columns or block_columns(sizes)
    rows = [math.ceil(n / cols) for n in sizes]
    tile = 28 + PADDING
    tiles_w = cols * tile + PADDING

    def extent(across: int, scale: int) -> tuple[int, int]:
        heights = [max(rows[i:i + across]) * tile + PADDING for i in range(0, len(sizes), across)]
        return (across * (gutter + tiles_w * scale) + (across - 1) * BLOCK_GAP,
                sum(h * scale for h in heights) + (len(heights) - 1) * BLOCK_GAP)

    across = 1
    if max(rows) > 1:
        across = min(range(1, len(sizes) + 1), key=lambda a: (abs(math.log(_ratio(extent(a, 1)) / aspect)), a))
    spare = width - across * gutter - (across - 1) * BLOCK_GAP
    scale = max(1, min(8, spare // (across * tiles_w)))
    origins, y = [], 0
    for i in range(0, len(sizes), across):
        row = rows[i:i + across]
        origins += [(a * (gutter + tiles_w * scale + BLOCK_GAP) + gutter, y) for a in range(len(row))]
        y += (max(row) * tile + PADDING) * scale + BLOCK_GAP
    return GridLayout(cols, across, scale, gutter, extent(across, scale), tuple(origins))


def _ratio(size: tuple[int, int]) -> float:
    return size[0] / size[1]


def labelled_grid(images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str], columns: int | None = None,
                  font: FontLike = None) -> Image.Image:
    """Images (N, 1, 28, 28) in [0, 1] of classes labels (N,) (indices into
    `classes`, the names to write) -> a grayscale picture that names them.

    One class: one grid (columns None: a square-ish one), upscaled as the
    unlabelled grid would be, its class name underneath. Several: one block
    per class, in the order the classes first appear, each picture keeping
    its place within its class, the class name at the left of the block's
    first row; blocks wrap at `columns` pictures per row (None:
    block_columns, at most MAX_COLUMNS), so picture j of every class sits in
    the same place of its block; grid_layout places the blocks. The words
    are drawn at the font's size, not upscaled."""
    if images.dim() != 4 or len(images) == 0 or labels.numel() != len(images):
        raise ValueError(f"expected images (N, 1, H, W) and N labels, got {tuple(images.shape)} and "
                         f"{tuple(labels.shape)}")
    font = load_font(font)
    labels = labels.reshape(-1)
    order = list(dict.fromkeys(labels.tolist()))                    # classes, as they first appear
    if len(order) == 1:
        cols = columns or math.ceil(math.sqrt(len(images)))
        grid = tiles(images, cols) if len(images) > 1 else latent.to_uint8(images[0])   # one picture: no frame
        img = Image.fromarray(grid, mode="L")
        return captioned(_upscale(img, latent.tile_scale(img.width)), classes[order[0]], font)
    groups = [torch.nonzero(labels == c).reshape(-1) for c in order]
    names = [classes[c] for c in order]
    layout = grid_layout([len(g) for g in groups], label_width(names, font), columns)
    out = Image.new("L", layout.size, PAPER)
    draw = ImageDraw.Draw(out)
    row_middle = (PADDING + 14) * layout.scale           # the middle of a block's first row, from its top
    ruled = max(map(len, groups)) > layout.columns       # blocks of several rows: a line where a row of them ends
    for i, (g, name, (x, y)) in enumerate(zip(groups, names, layout.origins)):
        if ruled and i and i % layout.across == 0:
            draw.line([(MARGIN, y - BLOCK_GAP // 2 - 1), (layout.size[0] - MARGIN, y - BLOCK_GAP // 2 - 1)],
                      fill=RULE)
        out.paste(_upscale(Image.fromarray(tiles(images[g], layout.columns), mode="L"), layout.scale), (x, y))
        write(draw, (x - MARGIN, y + row_middle), name, font, "rm")
    return out


def labelled_strip(frames: torch.Tensor, columns: int, start: str, end: str, caption: str | None = None,
                   font: FontLike = None) -> Image.Image:
    """Frames (T, 1, 28, 28) in [0, 1] of a path from A to B -> a grayscale
    picture: `columns` frames per row, `start` at the left of the first frame,
    `end` just right of the last one (where the path ends, even on a short
    last row), `caption` (None: none) centred underneath. Frames are upscaled
    as in labelled_grid."""
    font = load_font(font)
    gutter = label_width([start, end], font)
    grid = Image.fromarray(tiles(frames, columns), mode="L")
    scale = latent.tile_scale(grid.width)
    grid = _upscale(grid, scale)
    out = Image.new("L", (grid.width + 2 * gutter, grid.height), PAPER)
    out.paste(grid, (gutter, 0))
    draw = ImageDraw.Draw(out)
    row_middle = (PADDING + 14) * scale                  # the middle of a row's pictures, from the row's top
    write(draw, (gutter - MARGIN, row_middle), start, font, "rm")
    last_row, last_col = divmod(len(frames) - 1, columns)
    x = gutter + (last_col + 1) * (28 + PADDING) * scale
    write(draw, (x + MARGIN, last_row * (28 + PADDING) * scale + row_middle), end, font, "lm")
    return captioned(out, caption, font) if caption else out


def _upscale(img: Image.Image, scale: int) -> Image.Image:
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img


def neighbour_panel(queries: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor,
                    names: Sequence[str], title: str, scale: int = 3, font: FontLike = None,
                    generated: str = "generated") -> Image.Image:
    """One row per generated picture: the picture (`generated` under it),
    then its nearest training images, each with its distance and class name underneath.
    queries (Q, 1, 28, 28) and neighbours (Q, k, 1, 28, 28) in [0, 1];
    distances (Q, k); names (Q, k) class names of the neighbours; the title
    goes above (which space the distances are in). Grayscale ("L")."""
    font = load_font(font, size=14)
    q, k = neighbours.shape[:2]
    side = 28 * scale
    _, th = text_size("0.00 Xg", font)
    cell_w = max(side, *(text_size(n, font)[0] for row in names for n in row)) + 2 * MARGIN
    cell_h = side + 2 * th + 3 * MARGIN
    gap = 3 * MARGIN   # between the generated picture and its neighbours
    _, title_h = text_size(title, font)
    width = cell_w * (k + 1) + gap
    out = Image.new("L", (max(width, text_size(title, font)[0] + 2 * MARGIN), title_h + 2 * MARGIN + q * cell_h),
                    PAPER)
    draw = ImageDraw.Draw(out)
    write(draw, (MARGIN, MARGIN + title_h / 2), title, font, "lm")
    for i in range(q):
        top = title_h + 2 * MARGIN + i * cell_h
        cells = [(queries[i], generated, "")] + [(neighbours[i, j], f"{distances[i, j].item():.2f}", names[i][j])
                                                   for j in range(k)]
        for j, (img, first, second) in enumerate(cells):
            left = j * cell_w + (gap if j else 0)
            x = left + (cell_w - side) // 2
            out.paste(_upscale(latent.to_pil(img).convert("L"), scale), (x, top))
            write(draw, (left + cell_w / 2, top + side + MARGIN + th / 2), first, font, "mm")
            if second:
                write(draw, (left + cell_w / 2, top + side + 2 * MARGIN + 1.5 * th), second, font, "mm")
    return out
