"""Where checkpoints come from, in this order: an explicit local folder; a
Hugging Face Hub repo, downloaded into huggingface_hub's standard cache; the
bundled checkpoints/ folder. This is the only module that touches the network.

Hub layout: one model repo holds the demo models (hub.BUNDLED), each in a subfolder
named like the bundled one (gan-mnist/config.json, gan-mnist/model.safetensors,
...; `python -m aigc.publish` writes it). Only config.json and
model.safetensors are fetched, and weights are only ever read with
safetensors: nothing downloaded is unpickled.

The revision ("main", a branch, a tag or a commit) is first resolved to a
commit sha with one small API request; the files are then fetched by sha, so a
second load finds them in the cache and downloads nothing, and all files of a
model come from the same commit. `model.source` names that commit.

When the Hub cannot serve a model (unreachable, not answering, offline mode,
missing repo, revision or file, or files that do not load), the bundled
checkpoint is loaded instead; one line saying why is logged and kept as
`model.source_note`. When the Hub cannot be asked (offline, or unreachable a
moment ago) but the cache holds the revision from an earlier download, the
cached copy is used: that is the Hub's content, as huggingface_hub itself does
offline. hub_strict=True turns every fall back to the bundled copy into a
HubError.

Time limits, so that a Hub that accepts connections and never answers cannot
hang the demo:
    HF_HUB_ETAG_TIMEOUT  seconds per metadata request (default here: 3)
    AIGC_HUB_TIMEOUT     seconds for one model's lookup and download (default
                         10); a download still running then goes on in the
                         background and fills the cache for the next start.
After a connection failure or a timeout the endpoint is not asked again for
60 s, so the other models fall back (or use the cache) at once.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .families import generative
from .io import atomic_write_text
from .model import CONFIG_NAME, WEIGHTS_NAME

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DIR = REPO_ROOT / "checkpoints"
# One bundled checkpoint per generative family (aigc.families) and dataset: gan-mnist, ..., flow-fashion.
BUNDLED = tuple(f"{f.name}-{d}" for f in generative() for d in ("mnist", "fashion"))
CLASSIFIERS = ("classifier-mnist", "classifier-fashion")
HUB_FILES = (CONFIG_NAME, WEIGHTS_NAME)  # all a model needs; nothing else is downloaded
MAX_CONFIG_BYTES = 1 << 20

REQUEST_TIMEOUT_S = 3.0  # a metadata request on a healthy Hub takes well under a second
DEADLINE_S = 10.0        # one model's lookup and download, all requests and retries included
UNREACHABLE_TTL_S = 60.0
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
TRUE = ("1", "true", "yes", "on")

log = logging.getLogger(__name__)


# ---- local folders and the bundled checkpoints ---------------------------------
def is_checkpoint_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()


def read_config(folder: str | Path) -> dict:
    path = Path(folder) / CONFIG_NAME
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:   # a config is a few hundred bytes: not read whole
            raise ValueError(f"{path.stat().st_size:,} bytes, more than a config's {MAX_CONFIG_BYTES:,}")
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:   # ValueError: bad UTF-8 or JSON, or too big
        raise ValueError(f"{path} is not a readable JSON config: {str(e)[:200]}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return config


def check_identity(name: str, folder: str | Path, label: str = "") -> None:
    """A folder published as `name` ("gan-mnist") must hold that family and
    dataset: a misplaced file would otherwise serve the wrong model silently.
    label: how to call the config in the error (default: its path)."""
    config = read_config(folder)
    family, _, dataset = name.partition("-")
    if config.get("family") != family or config.get("dataset") != dataset:
        raise ValueError(f"{label or Path(folder) / CONFIG_NAME} describes family {config.get('family')!r} on dataset "
                         f"{config.get('dataset')!r}, but {name} needs family {family!r} on dataset {dataset!r}")


def resolve(name: str) -> tuple[Path, str]:
    """A bundled name or a checkpoint folder -> (folder, source description).
    No network: the Hub is tried by `load` before this."""
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


# ---- settings, read when used (huggingface_hub reads its own once, at import) ---
def endpoint() -> str:
    """HF_ENDPOINT, read now, so a process that sets it after importing
    huggingface_hub still reaches the endpoint it names."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def offline() -> bool:
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE


def env_hub_repo() -> str | None:
    """AIGC_HUB_REPO, for the app's --hub-repo default. aigc.load itself reads
    no environment: hub_repo=None means the bundled checkpoints."""
    return os.environ.get("AIGC_HUB_REPO") or None


def env_hub_strict() -> bool:
    """AIGC_HUB_STRICT=1, for the app's --hub-strict default."""
    return os.environ.get("AIGC_HUB_STRICT", "").strip().lower() in TRUE


def _seconds(var: str, default: float) -> float:
    raw = os.environ.get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{var}={raw!r}: expected a positive number of seconds")
    return value


def parse_repo(spec: str) -> tuple[str, str]:
    """"ORG/NAME" or "ORG/NAME@REVISION" -> (repo_id, revision); revision
    defaults to "main" and may be a branch, a tag or a commit sha."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    repo_id, at, revision = str(spec).strip().partition("@")
    problem = ""
    if repo_id.count("/") != 1:
        problem = "it needs exactly one '/' between owner and name"
    elif at and not revision:
        problem = "nothing follows '@'"
    else:
        try:
            validate_repo_id(repo_id)
        except HFValidationError as e:
            problem = str(e).splitlines()[0]
    if problem:
        raise ValueError(f"Hub repo {spec!r} is not valid ({problem}); use ORG/NAME or ORG/NAME@REVISION, "
                         f"e.g. my-org/aigc-models@main")
    return repo_id, revision or "main"


# ---- Hub failures ----------------------------------------------------------------
class HubUnavailable(Exception):
    """The Hub could not serve a model; str() is the one-line reason."""

    def __init__(self, reason: str, transient: bool = False):
        super().__init__(reason)
        self.transient = transient  # a connection problem, not an answer: worth not retrying for a while


class HubError(RuntimeError):
    """Strict mode: the Hub could not serve a model, and falling back is not allowed."""


_unreachable: dict[str, tuple[float, str]] = {}
_unreachable_lock = threading.Lock()


def _mark_unreachable(ep: str, reason: str) -> None:
    with _unreachable_lock:
        _unreachable[ep] = (time.monotonic(), reason)


def forget_unreachable() -> None:
    """Ask the Hub again on the next load, even within the 60 s after a failure."""
    with _unreachable_lock:
        _unreachable.clear()


def _no_network_reason(ep: str) -> str:
    """Why the Hub must not be asked now ("" when it may be)."""
    if offline():
        return "offline mode (HF_HUB_OFFLINE=1)"
    with _unreachable_lock:
        when, reason = _unreachable.get(ep, (None, ""))
    if when is not None and time.monotonic() - when < UNREACHABLE_TTL_S:
        return f"{reason} (not asked again for {UNREACHABLE_TTL_S:g} s)"
    return ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:200]


def _explain(e: BaseException, *, ep: str, repo_id: str, revision: str, path: str = "",
             timeout: float = 0.0) -> HubUnavailable:
    """A huggingface_hub / transport exception -> one line for the demo and the log."""
    import httpx2
    from huggingface_hub.errors import (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled,
                                        RemoteEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    # hf_hub_download reports a failed connection as "not in the cache": the cause says what happened.
    if isinstance(e, LocalEntryNotFoundError) and isinstance(e.__cause__, (httpx2.TransportError, HfHubHTTPError)):
        e = e.__cause__
    if isinstance(e, RevisionNotFoundError):
        return HubUnavailable(f"revision {revision!r} does not exist in {repo_id}")
    if isinstance(e, RepositoryNotFoundError):  # also gated repos; the Hub says 401 or 404 alike
        return HubUnavailable(f"repo {repo_id} was not found on {ep} "
                              f"(or it is private or gated and HF_TOKEN does not give access)")
    if isinstance(e, RemoteEntryNotFoundError):
        return HubUnavailable(f"{repo_id}@{revision[:12]} has no {path}")
    if isinstance(e, OfflineModeIsEnabled):
        return HubUnavailable("offline mode (HF_HUB_OFFLINE=1)")
    if isinstance(e, httpx2.TimeoutException):
        return HubUnavailable(f"the Hub at {ep} did not answer within {timeout:g} s", transient=True)
    if isinstance(e, httpx2.TransportError):
        return HubUnavailable(f"cannot reach the Hub at {ep} ({type(e).__name__}: {_first_line(e)})",
                              transient=True)
    if isinstance(e, HfHubHTTPError) and e.response is not None:
        code = e.response.status_code
        if code >= 500:
            return HubUnavailable(f"the Hub at {ep} answered HTTP {code}", transient=True)
        if code in (401, 403):
            return HubUnavailable(f"the Hub refused access to {repo_id} (HTTP {code}); check HF_TOKEN")
        return HubUnavailable(f"the Hub answered HTTP {code} for {repo_id}@{revision} {path}".rstrip())
    if isinstance(e, OSError) and "Consistency check failed" in str(e):
        return HubUnavailable(f"the download of {path} from {repo_id} was incomplete")
    return HubUnavailable(f"{path or repo_id}: {type(e).__name__}: {_first_line(e)}")


# ---- the Hub ---------------------------------------------------------------------
@dataclass(frozen=True)
class HubCheckpoint:
    folder: Path     # the cache snapshot folder holding config.json and model.safetensors
    repo_id: str
    revision: str    # as asked: "main", a tag, a sha
    commit: str      # the sha it resolved to
    note: str = ""   # set when the cache was used because the Hub could not be asked

    @property
    def source(self) -> str:
        return f"hub:{self.repo_id}@{self.commit}"


def fetch(name: str, hub_repo: str) -> HubCheckpoint:
    """Download (or find in the cache) `name`'s files from `hub_repo`
    ("ORG/NAME[@REVISION]"). Raises HubUnavailable with a one-line reason,
    within AIGC_HUB_TIMEOUT seconds whatever the network does."""
    repo_id, revision = parse_repo(hub_repo)
    if name not in BUNDLED:
        raise ValueError(f"only the bundled models {list(BUNDLED)} are looked up on the Hub, not {name!r}")
    ep = endpoint()
    timeout = _seconds("HF_HUB_ETAG_TIMEOUT", REQUEST_TIMEOUT_S)
    deadline = _seconds("AIGC_HUB_TIMEOUT", DEADLINE_S)
    timeout = min(timeout, deadline)
    abandoned = threading.Event()
    try:
        return _within(deadline, lambda: _fetch(name, repo_id, revision, ep, timeout, abandoned))
    except TimeoutError:
        abandoned.set()
        reason = (f"the Hub at {ep} did not deliver {name} within {deadline:g} s (AIGC_HUB_TIMEOUT); "
                  f"a download under way finishes in the background, for the next start")
        _mark_unreachable(ep, reason)
        raise HubUnavailable(reason, transient=True) from None


def _within(seconds: float, fn: Callable):
    """fn() in a daemon thread, waited on for at most `seconds`. huggingface_hub
    bounds each request, but after a failed first request hf_hub_download
    retries with a 60 s timeout and backoff; this bounds the whole, and a
    daemon thread left behind does not keep the process alive."""
    box: dict = {}
    done = threading.Event()

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=run, name="aigc-hub-fetch", daemon=True).start()
    if not done.wait(seconds):
        raise TimeoutError
    if "error" in box:
        raise box["error"]
    return box["value"]


def _fetch(name: str, repo_id: str, revision: str, ep: str, timeout: float,
           abandoned: threading.Event) -> HubCheckpoint:
    from huggingface_hub import HfApi, constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.file_download import repo_folder_name

    cache_dir = constants.HF_HUB_CACHE
    storage = Path(cache_dir) / repo_folder_name(repo_id=repo_id, repo_type="model")
    no_network = _no_network_reason(ep)

    def failure(e: BaseException, path: str = "", rev: str = revision) -> HubUnavailable:
        err = _explain(e, ep=ep, repo_id=repo_id, revision=rev, path=path, timeout=timeout)
        if err.transient and not abandoned.is_set():  # once given up on, this thread's news is stale
            _mark_unreachable(ep, str(err))
        return err

    # 1. revision -> commit sha (a sha is its own answer)
    if COMMIT_RE.fullmatch(revision):
        commit = revision
    else:
        commit = None
        if not no_network:
            try:
                commit = HfApi(endpoint=ep).model_info(repo_id, revision=revision, timeout=timeout).sha
            except Exception as e:
                err = failure(e)
                if not err.transient:
                    raise err from e
                no_network = str(err)  # then try the cache, as offline
            else:
                if not commit:
                    raise HubUnavailable(f"{ep} answered for {repo_id}@{revision} without a commit sha")
                _remember_ref(storage, revision, commit)
        if commit is None:
            commit = _cached_ref(storage, revision)
            if commit is None:
                raise HubUnavailable(f"{no_network}, and {repo_id}@{revision} is not in the Hugging Face cache")

    # 2. the files, by sha: from the cache when there, else downloaded
    paths = []
    for filename in HUB_FILES:
        path = f"{name}/{filename}"
        try:
            paths.append(Path(hf_hub_download(repo_id, path, revision=commit, cache_dir=cache_dir, endpoint=ep,
                                              etag_timeout=timeout, local_files_only=bool(no_network))))
        except LocalEntryNotFoundError as e:
            if not no_network:
                raise failure(e, path, commit) from e
            raise HubUnavailable(f"{no_network}, and {path} of {repo_id}@{commit[:12]} is not in the "
                                 f"Hugging Face cache") from e
        except Exception as e:
            raise failure(e, path, commit) from e
    note = f"{no_network}; using the cached {repo_id}@{revision}" if no_network else ""
    return HubCheckpoint(paths[0].parent, repo_id, revision, commit, note)


def _remember_ref(storage: Path, revision: str, commit: str) -> None:
    """Record revision -> sha where huggingface_hub keeps it (refs/<revision>),
    so an offline start can find the same snapshot. Best effort, as there."""
    ref = storage / "refs" / revision
    try:
        if not ref.is_file() or ref.read_text().strip() != commit:
            atomic_write_text(ref, commit)
    except OSError as e:
        log.debug("could not record %s -> %s: %s", ref, commit, e)


def _cached_ref(storage: Path, revision: str) -> str | None:
    try:
        commit = (storage / "refs" / revision).read_text().strip()
    except OSError:
        return None
    return commit if COMMIT_RE.fullmatch(commit) else None


# ---- the whole order: local folder, Hub, bundled ----------------------------------
def load(name: str | Path, build: Callable[[Path], object], *, hub_repo: str | None = None,
         hub_strict: bool = False):
    """`build(folder)` -> model, from the first place that serves `name`.

    The Hub is tried for the bundled names only, and only when no local folder
    of that name exists. Sets model.source ("local:...", "hub:ORG/NAME@sha",
    "bundled:checkpoints/...") and model.source_note ("" or why the Hub copy
    was not used, or came from the cache)."""
    note = ""
    if hub_repo and str(name) in BUNDLED and not is_checkpoint_dir(name):
        name = str(name)
        try:
            ckpt = fetch(name, hub_repo)
            model = _build_from_hub(name, ckpt, build)
        except HubUnavailable as e:
            note = f"Hub repo {hub_repo} not used: {e}"
            if hub_strict:
                raise HubError(f"{name}: {note}. Strict mode (--hub-strict / AIGC_HUB_STRICT=1) does not fall "
                               f"back to the bundled checkpoint; drop it to allow that, or fix the Hub repo") from e
        else:
            model.source, model.source_note = ckpt.source, ckpt.note
            if ckpt.note:
                log.warning("%s: %s (%s)", name, ckpt.note, ckpt.source)
            else:
                log.info("%s: loaded %s", name, ckpt.source)
            return model
    try:
        folder, source = resolve(name)
    except FileNotFoundError as e:
        if not note:
            raise
        raise FileNotFoundError(f"{name}: {note}; and {e}") from None  # both places failed: say both
    model = build(folder)
    model.source, model.source_note = source, note
    if note:
        log.warning("%s: %s; loaded %s", name, note, source)
    return model


def _build_from_hub(name: str, ckpt: HubCheckpoint, build: Callable[[Path], object]):
    where = f"{ckpt.repo_id}@{ckpt.commit[:12]}"
    try:
        check_identity(name, ckpt.folder, label=f"{name}/{CONFIG_NAME}")  # the cache path would hide the point
        return build(ckpt.folder)
    except Exception as e:  # whatever the downloaded bytes break (JSON, safetensors, shapes) is the Hub copy's fault
        raise HubUnavailable(f"{where}: {name} does not load ({type(e).__name__}: {_first_line(e)})") from e
