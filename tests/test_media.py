import os
import time

from PIL import Image

from aigc import media


def test_gif_loops_back_and_forth_frames_and_timing():
    frames = [Image.new("L", (8, 8), v) for v in (0, 100, 200)]
    data = media.gif_bytes(frames, duration_ms=70)
    out = media.OutputFolder()
    path = out.write(data, ".gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.info["loop"] == 0 and gif.info["duration"] == 70
        gif.seek(2)
        assert gif.convert("L").getpixel((0, 0)) == 200


def test_png_round_trip():
    img = Image.new("L", (30, 20), 7)
    out = media.OutputFolder()
    path = out.write(media.png_bytes(img), ".png")
    with Image.open(path) as back:
        assert back.size == (30, 20) and back.getpixel((3, 3)) == 7


def test_output_folder_names_by_content_and_keeps_the_newest(tmp_path):
    out = media.OutputFolder(tmp_path, keep=5)
    first = out.write(b"same", ".bin")
    assert out.write(b"same", ".bin") == first            # same content, same file
    old = time.time() - 1000
    os.utime(first, (old, old))
    # PRUNE_EVERY new files in all (with the first): the last write prunes
    paths = [out.write(f"file {i}".encode(), ".bin") for i in range(media.OutputFolder.PRUNE_EVERY - 1)]
    left = {p.name for p in tmp_path.iterdir()}
    assert len(left) == 5 and first.name not in left      # the oldest went
    assert paths[-1].name in left


def test_own_temp_folder_goes_away_with_the_object():
    import gc

    out = media.OutputFolder()
    root = out.root
    out.write(b"x", ".bin")
    assert root.is_dir()
    del out
    gc.collect()
    assert not root.exists()
