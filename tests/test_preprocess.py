import io
import time

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from aigc.preprocess import (MAX_PIXELS, NOT_AN_IMAGE, EmptyImageError, ImageError, open_image, prepare)


def drawing(size=(300, 200), ink=0, paper=255, mode="L") -> Image.Image:
    """A dark 'L' shape off-centre on light paper, like a photo of a drawing."""
    img = Image.new(mode, size, paper)
    d = ImageDraw.Draw(img)
    d.rectangle([40, 30, 60, 150], fill=ink)      # the upright stroke
    d.rectangle([40, 130, 120, 150], fill=ink)    # the foot
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def centre_of_mass(x: torch.Tensor) -> tuple[float, float]:
    a = x[0, 0].numpy()
    ys, xs = np.arange(28) + 0.5, np.arange(28) + 0.5
    return float((a.sum(1) * ys).sum() / a.sum()), float((a.sum(0) * xs).sum() / a.sum())


def test_mnist_layout_light_on_black_in_20x20_centred_by_mass():
    x = prepare(drawing(), "mnist")
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() == 0 and x.max() == pytest.approx(1.0, abs=0.02)   # inverted: ink is bright
    cy, cx = centre_of_mass(x)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    rows, cols = torch.nonzero(x[0, 0] > 0.2, as_tuple=True)
    assert rows.max() - rows.min() + 1 == 20                   # the longer side (height) fills 20 px
    assert cols.max() - cols.min() + 1 < 20                    # aspect ratio kept


def test_fashion_layout_fills_the_frame_centred_by_box():
    x = prepare(drawing(), "fashion")
    rows, cols = torch.nonzero(x[0, 0] > 0.2, as_tuple=True)
    assert rows.max() - rows.min() + 1 == 28
    assert abs((cols.min() + cols.max()).item() / 2 - 13.5) <= 1


def test_light_on_dark_is_not_inverted():
    dark = prepare(drawing(ink=255, paper=0), "mnist")
    light = prepare(drawing(), "mnist")
    torch.testing.assert_close(dark, light)


def test_gray_paper_and_rgb_photo_give_the_same_drawing():
    plain = prepare(drawing(), "mnist")
    gray_paper = prepare(drawing(ink=30, paper=200).convert("RGB"), "mnist")
    torch.testing.assert_close(gray_paper, plain, atol=0.02, rtol=0)


def test_16_bit_image_matches_its_8_bit_version():
    eight = drawing()
    sixteen = Image.fromarray(np.asarray(eight).astype(np.uint16) * 257)   # mode I;16, full scale 65535
    assert sixteen.mode.startswith("I;16") or sixteen.mode == "I"
    back = Image.open(io.BytesIO(png(sixteen)))                           # through a real 16-bit PNG
    torch.testing.assert_close(prepare(back, "mnist"), prepare(eight, "mnist"), atol=1e-3, rtol=0)


def test_transparent_png_with_dark_strokes_reads_like_white_paper():
    rgba = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    rgba.paste(Image.new("RGBA", (300, 200), (0, 0, 0, 255)), mask=drawing(ink=255, paper=0))
    from_file = Image.open(io.BytesIO(png(rgba)))
    torch.testing.assert_close(prepare(from_file, "mnist"), prepare(drawing(), "mnist"), atol=1e-3, rtol=0)


def test_28x28_picture_in_dataset_format_is_kept_as_is():
    a = np.zeros((28, 28), np.uint8)
    a[5:23, 12:16] = 255
    a[5:23, 16] = 77          # a faint anti-aliased edge survives
    x = prepare(Image.fromarray(a), "mnist")
    torch.testing.assert_close(x[0, 0], torch.from_numpy(a).float() / 255)


@pytest.mark.parametrize("img, match", [
    (Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "fully transparent"),
    (Image.new("L", (64, 64), 255), "looks blank"),
    (Image.new("RGB", (64, 64), (90, 90, 90)), "looks blank"),
])
def test_empty_pictures_are_refused_in_plain_words(img, match):
    with pytest.raises(EmptyImageError, match=match):
        prepare(img, "mnist")


def test_not_an_image_and_a_damaged_one(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a picture")
    with pytest.raises(ImageError) as e:
        prepare(str(bad), "mnist")
    assert str(e.value) == NOT_AN_IMAGE
    cut = tmp_path / "cut.png"
    cut.write_bytes(png(drawing())[:300])   # a real PNG header, then nothing
    with pytest.raises(ImageError, match="damaged or cut short"):
        prepare(str(cut), "mnist")


def test_a_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000), 1).save(path)        # 100 million pixels, a small file
    t0 = time.perf_counter()
    with pytest.raises(ImageError, match="10,000 x 10,000 pixels, too big"):
        prepare(str(path), "mnist")
    assert time.perf_counter() - t0 < 1.0                  # refused from the header, not decoded
    assert 10_000 * 10_000 > MAX_PIXELS


def test_big_jpeg_photo_is_shrunk_and_read():
    big = drawing().resize((3000, 2000), Image.NEAREST).convert("RGB")
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=85)
    x = prepare(buf.getvalue(), "mnist")
    torch.testing.assert_close(x, prepare(drawing(), "mnist"), atol=0.08, rtol=0)
    assert max(open_image(buf.getvalue()).size) <= 1500   # decoded at reduced scale (JPEG draft)


def test_exif_rotation_is_applied():
    img = drawing().convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6          # "rotate 90 degrees clockwise to display"
    buf = io.BytesIO()
    img.rotate(90, expand=True).save(buf, format="JPEG", exif=exif, quality=95)
    torch.testing.assert_close(prepare(buf.getvalue(), "mnist"), prepare(img, "mnist"), atol=0.08, rtol=0)


def test_unknown_dataset_is_a_value_error():
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare(drawing(), "cifar")


def test_a_decompression_bomb_is_called_too_big_not_unreadable(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (20_000, 10_000), 1).save(path)   # over twice Pillow's limit: Image.open itself refuses
    with pytest.raises(ImageError, match=f"at most {MAX_PIXELS // 1_000_000} million pixels"):
        prepare(str(path), "mnist")
