"""Files the demo hands out: PNGs and animated GIFs, and the folder they are written to."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import weakref
from io import BytesIO
from pathlib import Path

from PIL import Image

from .io import atomic_write


def png_bytes(img: Image.Image) -> bytes:
    """PNG at zlib level 1: 3-5x faster to write than the default level 6 and,
    for these mostly flat pictures, barely bigger."""
    buf = BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def gif_bytes(frames: list[Image.Image], duration_ms: int | list[int]) -> bytes:
    """Frames (same size, mode "L") -> an animated GIF that loops forever.
    duration_ms: every frame's, or one per frame."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    buf = BytesIO()
    # optimize=False: Pillow's per-frame palette/bbox search costs ~4x the
    # time, and grayscale frames gain little from it.
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms,
                   loop=0, optimize=False, disposal=1)
    return buf.getvalue()


class OutputFolder:
    """A temporary folder for generated files, named by their content (the
    same request gives the same file), keeping only the newest `keep` files.
    Gradio copies what a handler returns into its own cache, so older files
    here can go."""

    PRUNE_EVERY = 20

    def __init__(self, root: str | Path | None = None, keep: int = 200):
        if root is None:   # our own temp folder: removed with this object, or when Python exits
            root = tempfile.mkdtemp(prefix="aigc-demo-")
            weakref.finalize(self, shutil.rmtree, root, ignore_errors=True)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self._lock = threading.Lock()  # handlers run in several threads at once
        self._since_prune = 0          # listing the folder costs ms: prune every PRUNE_EVERY writes

    def write(self, data: bytes, suffix: str) -> Path:
        path = self.root / f"{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
        with self._lock:
            if path.exists():
                os.utime(path)  # fresh again: keep it
            else:
                atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
                self._since_prune += 1
                if self._since_prune >= self.PRUNE_EVERY:
                    self._prune()
                    self._since_prune = 0
        return path

    def _prune(self) -> None:
        files = [p for p in self.root.iterdir() if p.is_file() and not p.name.startswith(".")]
        if len(files) <= self.keep:
            return
        files.sort(key=lambda p: p.stat().st_mtime)
        for p in files[:len(files) - self.keep]:
            p.unlink(missing_ok=True)
