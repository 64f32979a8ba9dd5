"""Pictures that name what they show (aigc.labels): layout, words in the
picture, and the pictures themselves left untouched by the words."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageFont

from aigc import labels, latent
from aigc.data import class_names

DIGITS, FASHION = class_names("mnist"), class_names("fashion")
TILE = 28 + labels.PADDING


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def inked(a: np.ndarray) -> bool:
    """Whether a region holds writing (or anything but paper)."""
    return a.size > 0 and a.min() < labels.PAPER


def picture_at(img: Image.Image, x0: int, y0: int, row: int, col: int, scale: int) -> np.ndarray:
    """The 28x28 picture at (row, col) of tiles whose top-left corner is (x0, y0)."""
    a = np.asarray(img)[y0::scale, x0::scale]
    return a[labels.PADDING + TILE * row:TILE * (row + 1), labels.PADDING + TILE * col:TILE * (col + 1)]


def test_block_columns_wrap_evenly():
    assert labels.block_columns([8]) == 8                  # one row while it fits
    assert labels.block_columns([12]) == labels.MAX_COLUMNS
    assert labels.block_columns([100]) == 10               # 10 x 10, not 8 rows of 12 and one of 4
    assert labels.block_columns([16]) == 8                 # 2 x 8, not 12 and 4
    assert labels.block_columns([37]) == 10
    assert labels.block_columns([3, 100, 5]) == 10         # every block shares the largest one's columns


def test_every_class_with_a_large_count_is_blocks_not_a_strip():
    x, y = images(1000), torch.arange(10).repeat_interleave(100)     # 100 of each class, class order
    img = labels.labelled_grid(x, y, FASHION)
    layout = labels.grid_layout([100] * 10, labels.label_width(FASHION))
    assert img.mode == "L" and img.size == layout.size
    assert layout.columns == 10 and 2 <= layout.across <= 5          # 10 x 10 blocks, several side by side
    assert 1 <= img.width / img.height <= 3 and img.width < 2000     # not 100 wide, nor 100 rows tall
    for c in (0, 3, 9):
        x0, y0 = layout.origins[c]
        for j in (0, 9, 10, 57, 99):                                 # picture j of class c: row j // 10, column j % 10
            expected = latent.to_uint8(x[100 * c + j])
            assert np.array_equal(picture_at(img, x0, y0, j // 10, j % 10, layout.scale), expected)
        block_h = (10 * TILE + labels.PADDING) * layout.scale
        assert inked(np.asarray(img)[y0:y0 + block_h, x0 - layout.gutter:x0])   # its name, left of the block
    assert labels.labelled_grid(x, y, FASHION).tobytes() == img.tobytes()     # the same picture every time


def test_one_row_per_class_when_it_fits():
    x, y = images(80), torch.arange(10).repeat_interleave(8)
    img = labels.labelled_grid(x, y, DIGITS)
    layout = labels.grid_layout([8] * 10, labels.label_width(DIGITS))
    assert (layout.columns, layout.across) == (8, 1)
    assert layout.scale == latent.tile_scale(8 * TILE + labels.PADDING)        # as big as the unlabelled grid
    heights = {b - a for (_, a), (_, b) in zip(layout.origins, layout.origins[1:])}
    assert heights == {(TILE + labels.PADDING) * layout.scale + labels.BLOCK_GAP}   # evenly spaced rows
    # The pictures are the unlabelled grid's, cut in rows; the words only add a column at the left.
    plain = np.asarray(latent.to_pil(latent.grid(x, nrow=8), scale=layout.scale))
    a = np.asarray(img)
    row_h = (TILE + labels.PADDING) * layout.scale
    for c, (x0, y0) in enumerate(layout.origins):
        top = c * TILE * layout.scale
        assert np.array_equal(a[y0:y0 + row_h, x0:], plain[top:top + row_h])
    assert inked(a[:, :layout.gutter]) and not inked(a[:, layout.gutter - labels.MARGIN + 1:layout.gutter])


def test_the_words_are_the_class_names():
    x, y = images(20), torch.arange(10).repeat_interleave(2)
    digits = np.asarray(labels.labelled_grid(x, y, DIGITS))
    gutter = labels.label_width(DIGITS)
    named = np.asarray(labels.labelled_grid(x, y, [f"class {c}" for c in DIGITS]))
    other = labels.label_width([f"class {c}" for c in DIGITS])
    assert inked(digits[:, :gutter]) and other > gutter
    # the same pictures right of the words, other words left of them
    assert np.array_equal(digits[:, gutter:], named[:, other:])
    assert not np.array_equal(digits[:, :gutter], named[:, other - gutter:other])


def test_one_class_is_named_underneath():
    x = images(9)
    img = labels.labelled_grid(x, torch.full((9,), 7), DIGITS)
    plain = latent.to_pil(latent.grid(x, nrow=3), scale=latent.tile_scale(3 * TILE + labels.PADDING))
    a = np.asarray(img)
    assert img.width == plain.width and img.height > plain.height
    assert np.array_equal(a[:plain.height], np.asarray(plain))      # the grid as before, untouched
    assert inked(a[plain.height:])                                  # "7" underneath
    one = labels.labelled_grid(x[:1], torch.tensor([9]), FASHION)   # one picture: 224 px, no frame, then its name
    assert one.width == 224 and np.array_equal(np.asarray(one)[:224:8, ::8], latent.to_uint8(x[0]))
    assert inked(np.asarray(one)[224:])


def test_labels_must_match_the_images():
    with pytest.raises(ValueError, match="N labels"):
        labels.labelled_grid(images(4), torch.zeros(3, dtype=torch.long), DIGITS)


def test_strip_names_its_two_ends():
    x = images(16)
    img = labels.labelled_strip(x, 12, "T-shirt/top", "Bag", "seed 3, linear path")
    gutter = labels.label_width(["T-shirt/top", "Bag"])
    scale = latent.tile_scale(12 * TILE + labels.PADDING)
    a = np.asarray(img)
    grid_w, grid_h = (12 * TILE + labels.PADDING) * scale, (2 * TILE + labels.PADDING) * scale
    assert img.size[0] == grid_w + 2 * gutter and img.size[1] > grid_h
    assert np.array_equal(picture_at(img, gutter, 0, 0, 0, scale), latent.to_uint8(x[0]))
    assert np.array_equal(picture_at(img, gutter, 0, 1, 3, scale), latent.to_uint8(x[15]))
    row = TILE * scale
    assert inked(a[:row, :gutter])                                  # the start, left of the first frame
    assert not inked(a[row:grid_h, :gutter - labels.MARGIN])        # nothing left of the second row
    end_x = gutter + 4 * TILE * scale + labels.PADDING * scale      # just right of frame 16, on the second row
    assert inked(a[row:grid_h, end_x:gutter + grid_w])
    assert not inked(a[:row, gutter + grid_w:])                     # nothing right of the full first row
    assert inked(a[grid_h:])                                        # the caption
    plain = np.asarray(labels.labelled_strip(x, 12, "", "", None))
    assert plain.shape[0] == grid_h and not inked(plain[:, :labels.label_width([""])])


def test_names_the_font_cannot_write_are_found_and_logged(caplog):
    assert labels.missing_glyphs("T-shirt/top") == "" and labels.missing_glyphs("Ankle boot 9") == ""
    assert labels.missing_glyphs("T恤/上衣 恤") == "恤上衣"                 # Pillow's own font: ASCII only
    with caplog.at_level("WARNING", logger="aigc.labels"):
        labels.labelled_grid(images(2), torch.tensor([0, 1]), ["T恤/上衣", "裤子"])
    assert "no glyphs for '恤上衣'" in caplog.text and "裤子" in caplog.text


def test_a_font_file_or_a_loaded_font():
    loaded = ImageFont.load_default(size=labels.FONT_SIZE)
    assert labels.load_font(loaded) is loaded


def test_a_font_by_path(tmp_path):
    # Pillow's own font, written out: a font file from the caller (a CJK font, say) is read the same way.
    path = tmp_path / "font.ttf"
    path.write_bytes(ImageFont.load_default(size=labels.FONT_SIZE).path.getvalue())
    font = labels.load_font(str(path))
    assert labels.load_font(path) is font                           # read once
    x, y = images(4), torch.tensor([0, 0, 1, 1])
    by_path = labels.labelled_grid(x, y, DIGITS, font=str(path))
    assert by_path.tobytes() == labels.labelled_grid(x, y, DIGITS).tobytes()
    big = labels.labelled_grid(x, y, ["wide name", "x"], font=labels.load_font(path, size=40))
    assert big.width > labels.labelled_grid(x, y, ["wide name", "x"]).width
