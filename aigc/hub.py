"""Where checkpoints come from: an explicit local folder, or the bundled
checkpoints/ folder shipped with the repo."""
from __future__ import annotations

import json
from pathlib import Path

from .model import CONFIG_NAME, WEIGHTS_NAME

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DIR = REPO_ROOT / "checkpoints"
BUNDLED = ("gan-mnist", "gan-fashion", "vae-mnist", "vae-fashion")
CLASSIFIERS = ("classifier-mnist", "classifier-fashion")


def is_checkpoint_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()


def read_config(folder: str | Path) -> dict:
    path = Path(folder) / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a readable JSON config: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return config


def resolve(name: str) -> tuple[Path, str]:
    """A bundled name or a checkpoint folder -> (folder, source description)."""
    if not isinstance(name, (str, Path)) or not str(name):
        raise ValueError(f"name must be a bundled model name {list(BUNDLED)} or a checkpoint folder, got {name!r}")
    if is_checkpoint_dir(name):
        return Path(name), f"local:{name}"
    if str(name) in BUNDLED + CLASSIFIERS:
        folder = BUNDLED_DIR / str(name)
        if not is_checkpoint_dir(folder):
            raise FileNotFoundError(f"the bundled checkpoint {folder} is missing its {CONFIG_NAME} or {WEIGHTS_NAME}")
        return folder, f"bundled:checkpoints/{name}"
    if Path(name).exists():
        raise ValueError(f"{name} is not a checkpoint folder: it needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    raise ValueError(f"unknown model {name!r}: use one of {', '.join(BUNDLED)}, "
                     f"or a folder holding {CONFIG_NAME} and {WEIGHTS_NAME}")
