"""Uploads and drawings -> a model input made the way the datasets were made.

MNIST (LeCun et al.): a light digit on black, its bounding box scaled to fit
20x20 (aspect kept, anti-aliased), then placed in 28x28 so that its centre of
mass sits at the centre. Fashion-MNIST products fill the frame instead: the
longest side becomes 28 and the bounding box is centred.

    x = prepare("photo.jpg", "mnist")       # (1, 1, 28, 28) float32 in [0, 1]

Anything a visitor can get wrong (not an image, too big, nothing drawn)
raises ImageError with a sentence they can act on.
"""
from __future__ import annotations

import math
import os
import struct
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import torch
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

SIZE = 28
# The memory budget of one picture, whatever a visitor sends: at most 64 MB. A picture is checked
# from its header (bytes, format, declared pixels) before any pixel is decoded; it is decoded once,
# at most MAX_PIXELS at 4 bytes a pixel (32 MB; 16-bit and palette pictures need one conversion more,
# 48 MB in all), and shrunk to WORK_SIDE before the float work (a few MB).
MAX_BYTES = 10 * 2**20        # a picture file; uploads larger than this are refused unread
MAX_PIXELS = 8_000_000        # about 3300 x 2400
MAX_JPEG_PIXELS = 50_000_000  # a JPEG is decoded at 1/2 to 1/8 scale (draft), so it may declare more
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")   # "JPEG" also opens MPO, the variant some phones write
WORK_SIDE = 1024          # bigger images are shrunk to this before the pixel work
INK = 0.2                 # ink level (0..1) that counts as part of the drawing for its bounding box
FAINT = 0.1               # ink below this is paper texture or JPEG noise: set to 0, as MNIST's background is
MIN_CONTRAST = 0.15       # darkest-to-lightest difference below this: nothing is drawn


class ImageError(ValueError):
    """An image we cannot use; the message is meant for the visitor."""


class EmptyImageError(ImageError):
    """An image with nothing drawn on it (blank, one colour, fully transparent)."""


@dataclass(frozen=True)
class Layout:
    box: int        # the drawing's longest side after scaling, in pixels
    centre: str     # "mass": centre of mass at the middle (MNIST); "box": bounding box in the middle


LAYOUTS = {"mnist": Layout(box=20, centre="mass"), "fashion": Layout(box=28, centre="box")}
NOT_AN_IMAGE = "That file is not a picture we can read. Please upload a PNG, JPEG, GIF, BMP or WebP image."
TOO_BIG = (f"Pictures can have at most {MAX_PIXELS // 1_000_000} million pixels ({MAX_JPEG_PIXELS // 1_000_000} "
           f"million for a JPEG photo) and {MAX_BYTES // 2**20} MB; please shrink it (a few hundred pixels across "
           f"is plenty).")
DAMAGED = "That picture file is damaged or cut short; please upload it again."
# EXIF orientation -> the transpose that shows the picture upright (what ImageOps.exif_transpose does)
ORIENTATIONS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
                5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                8: Image.Transpose.ROTATE_90}


# ---- decoding ------------------------------------------------------------------
def inspect(source) -> Image.Image:
    """A path or bytes -> the picture opened lazily: only its header is read.
    Refuses, with ImageError, a file over MAX_BYTES, a format outside FORMATS
    and a declared size over MAX_PIXELS (MAX_JPEG_PIXELS for a JPEG), before
    any pixel is decoded. The one check every picture from outside passes:
    uploads, inline data: URLs, sketches (aigc.guard runs it before Gradio
    decodes anything) and examples."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        size, source = len(source), BytesIO(source)
    elif isinstance(source, (str, Path)):
        try:
            size = os.stat(source).st_size
        except FileNotFoundError:
            raise ImageError("The uploaded file has gone missing; please upload it again.") from None
        except (OSError, ValueError):
            raise ImageError(NOT_AN_IMAGE) from None
    else:
        raise ImageError(f"Expected a picture, got {type(source).__name__}.")
    if size > MAX_BYTES:
        raise ImageError(f"That file is {size / 2**20:.1f} MB, too big to handle here. " + TOO_BIG)
    try:
        with warnings.catch_warnings():   # the size is checked below, with a kinder message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(source, formats=FORMATS)
    except FileNotFoundError:
        raise ImageError("The uploaded file has gone missing; please upload it again.") from None
    except Image.DecompressionBombError:   # over twice Pillow's own limit: refused while reading the header
        raise ImageError(TOO_BIG) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise ImageError(NOT_AN_IMAGE) from None
    check_size(img)
    return img


def check_size(img: Image.Image) -> None:
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError("That picture has no pixels.")
    limit = MAX_JPEG_PIXELS if isinstance(img, JpegImagePlugin.JpegImageFile) else MAX_PIXELS
    if w * h > limit:
        raise ImageError(f"That picture is {w:,} x {h:,} pixels, too big to handle here. " + TOO_BIG)


def open_image(source) -> Image.Image:
    """A path, bytes, a PIL image or an array -> a decoded PIL image, upright
    (EXIF orientation applied), first frame of an animation, its longer side
    at most about WORK_SIDE. Checks bytes, format and size before decoding
    (inspect), so a 10,000 x 10,000 upload is refused cheaply."""
    if isinstance(source, Image.Image):
        img = source
        check_size(img)
    elif isinstance(source, np.ndarray):
        if source.size > 4 * MAX_PIXELS:
            raise ImageError(f"An array of shape {source.shape} is too big to be a picture here. " + TOO_BIG)
        try:
            img = Image.fromarray(source)
        except (TypeError, ValueError):
            raise ImageError(f"An array of shape {source.shape} and type {source.dtype} is not a picture.") from None
    else:
        img = inspect(source)
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:   # a broken EXIF block: show the picture as stored
        orientation = 1
    try:
        if isinstance(img, JpegImagePlugin.JpegImageFile):
            # Decode at 1/2, 1/4 or 1/8 scale when the longer side still covers WORK_SIDE.
            w, h = img.size
            s = WORK_SIDE / max(w, h)
            img.draft("L", (math.ceil(w * s), math.ceil(h * s)))
            if img.size[0] * img.size[1] > MAX_PIXELS:   # the decoder could not scale it down
                raise ImageError(f"That picture is {w:,} x {h:,} pixels, too big to handle here. " + TOO_BIG)
        img.seek(0)
        img.load()
        img = reduced(img)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError, Image.DecompressionBombError):
        raise ImageError(DAMAGED) from None
    if orientation in ORIENTATIONS:
        img = img.transpose(ORIENTATIONS[orientation])
    return img


def reduced(img: Image.Image, side: int = WORK_SIDE) -> Image.Image:
    """A decoded picture -> box-averaged by a whole factor so that its longer
    side is at most about `side` (the uint8 pixels, before any float copy)."""
    f = math.ceil(max(img.size) / side)
    if f <= 1:
        return img
    if img.mode.startswith("I;16"):   # modes Image.reduce does not take
        img = img.convert("I")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    return img.reduce(f)


def gray_and_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """-> luminance (H, W) float32 in [0, 1] and opacity (H, W) in [0, 1] or None.
    Handles 8-bit, 16-bit and 32-bit grayscale, palettes, and transparency."""
    if img.mode.startswith("I;16") or img.mode == "I":
        a = np.asarray(img).astype(np.float32)
        # 16-bit PNGs open as I;16 (or I): full scale is 65535, not 255.
        full = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        return np.clip(a / full, 0, 1), None
    if img.mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float32))
        return np.clip(a / 255.0 if a.max() > 1 else a, 0, 1), None
    if "A" in img.getbands() or "transparency" in img.info:
        la = np.asarray(img.convert("RGBA").convert("LA"), dtype=np.float32) / 255.0   # (H, W, 2)
        alpha = la[..., 1]
        return la[..., 0], (None if alpha.min() == 1.0 else alpha)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0, None


def shrink(a: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """Block-average (H, W) so that its longer side is at most about `side`."""
    f = math.ceil(max(a.shape) / side)
    if f <= 1:
        return a
    h, w = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    if h == 0 or w == 0:   # a thin strip: shrink along the long side only
        return a[:: 1 if a.shape[0] < f else f, :: 1 if a.shape[1] < f else f]
    return a[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


# ---- from pixels to ink ---------------------------------------------------------
def ink_map(gray: np.ndarray, alpha: np.ndarray | None = None, *, clean: bool = True) -> np.ndarray:
    """(H, W) luminance and opacity -> ink (H, W) in [0, 1]: 1 where drawn, 0 on
    the background, whether the drawing was dark on light or light on dark.
    clean: stretch the strongest stroke to 1 and drop faint noise (for
    photos and drawings; a picture already in dataset format keeps its values)."""
    if alpha is not None:
        if alpha.max() < 0.1:
            raise EmptyImageError("That picture is fully transparent: there is nothing on it to see.")
        # Transparent pixels are background: lay the picture on a backdrop
        # that contrasts with its opaque pixels (white under dark strokes).
        opaque_mean = float((gray * alpha).sum() / alpha.sum())
        backdrop = 1.0 if opaque_mean < 0.5 else 0.0
        gray = gray * alpha + backdrop * (1 - alpha)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    ink = 1.0 - gray if background > 0.5 else gray   # light paper: invert, as MNIST is light on black
    paper = 1.0 - background if background > 0.5 else background
    ink = np.clip((ink - paper) / max(1.0 - paper, 1e-6), 0, 1)  # gray paper -> 0
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise EmptyImageError("That picture looks blank: we found nothing drawn on it. "
                              "Draw or upload a dark shape on a light background (or light on dark).")
    if clean:
        ink = ink / peak            # MNIST strokes reach full intensity
        ink[ink < FAINT] = 0.0
    return ink


def fit(ink: np.ndarray, layout: Layout) -> np.ndarray:
    """Crop ink (H, W) to the drawing, scale its longer side to layout.box and
    place it in a 28x28 frame -> (28, 28) float32 in [0, 1]."""
    rows, cols = np.nonzero(ink > INK)
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    s = layout.box / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    # Anti-aliased resize in float ("F" mode keeps the values un-quantised).
    patch = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize((nw, nh), Image.LANCZOS))
    patch = np.clip(patch, 0, 1)  # Lanczos overshoots a little at edges
    if layout.centre == "mass":
        total = patch.sum()
        ys, xs = np.arange(nh) + 0.5, np.arange(nw) + 0.5        # pixel centres
        cy = (patch.sum(1) * ys).sum() / total
        cx = (patch.sum(0) * xs).sum() / total
        top, left = round(SIZE / 2 - cy), round(SIZE / 2 - cx)
    else:
        top, left = (SIZE - nh) // 2, (SIZE - nw) // 2
    out = np.zeros((SIZE, SIZE), np.float32)
    # Paste with clipping: centring by mass may push a lopsided shape past the edge.
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + nh, SIZE), min(left + nw, SIZE)
    out[y0:y1, x0:x1] = patch[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


def prepare(source, dataset: str) -> torch.Tensor:
    """Any picture -> (1, 1, 28, 28) float32 in [0, 1], light on black, laid
    out like the dataset's images. A 28x28 picture is taken to be in the
    dataset's format already and is only converted to ink, not refitted."""
    if dataset not in LAYOUTS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(LAYOUTS)}")
    gray, alpha = gray_and_alpha(open_image(source))
    if gray.shape == (SIZE, SIZE):
        ink = ink_map(gray, alpha, clean=False)
    else:
        ink = fit(ink_map(shrink(gray), None if alpha is None else shrink(alpha)), LAYOUTS[dataset])
    return torch.from_numpy(np.ascontiguousarray(ink, dtype=np.float32))[None, None]
