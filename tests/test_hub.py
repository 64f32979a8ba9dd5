"""aigc.hub and aigc.publish against a Hub stand-in on 127.0.0.1 (tests/hub_server.py).

huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and the cache folder once,
at import, which happened long before these tests. aigc.hub reads
HF_ENDPOINT and HF_HUB_OFFLINE again when it loads, so the tests set those
as a user would (environment variables); the cache folder is patched in
huggingface_hub.constants, where hf_hub_download looks for it at each call."""
from __future__ import annotations

import json
import re
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, constants
from PIL import Image

import aigc
from aigc import hub, publish
from aigc.data import class_names
from aigc.families import FAMILIES
from aigc.gan import Generator
from aigc.io import save_model_files

from .conftest import TINY
from .hub_server import HubServer, SilentServer, refused_endpoint

REPO = "org/models"
ROOT = Path(__file__).resolve().parent.parent


# ---- tiny checkpoints ----------------------------------------------------------
def tiny(name: str, seed: int):
    family, dataset = name.split("-")
    torch.manual_seed(seed)
    model = FAMILIES[family].model_class(classes=class_names(dataset), dataset=dataset, **TINY[family]).eval()
    with torch.no_grad():  # so that two seeds differ in every tensor, buffers included
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t))
    return model


def make_checkpoints(root, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """The four models as training leaves them: weights, config, history,
    training facts, a sample grid and an optimizer-state pickle that must
    never be published. Returns {name: state_dict}."""
    states = {}
    for i, name in enumerate(hub.BUNDLED):
        folder = root / name
        model = tiny(name, seed + i)
        save_model_files(model, folder)
        rows = [{"epoch": e, "step": 10 * e, "loss": 1.0 / e, "class_accuracy": 0.5 + e / 10, "frechet": 9.0 - e,
                 "epoch_time_s": 1.5, "device": "cpu"} for e in (1, 2)]
        (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / "training.json").write_text(json.dumps({"hardware": "test CPU", "parameters": 1234,
                                                          "batch_size": 8, "lr": 0.001, "seed": seed}))
        (folder / "samples").mkdir()
        for epoch in (1, 2):
            Image.new("L", (20, 20), 40 * epoch).save(folder / "samples" / f"epoch_{epoch:03d}.png")
        (folder / "train_state.pt").write_bytes(b"a pickle, never uploaded")
        states[name] = {k: v.clone() for k, v in model.state_dict().items()}
    (root / "gan-mnist" / "metrics.json").write_text(json.dumps({"class_accuracy": 0.987, "frechet": 1.25}))
    return states


def same_weights(model, state) -> bool:
    got = model.state_dict()
    return got.keys() == state.keys() and all(torch.equal(got[k].cpu(), state[k]) for k in state)


# ---- fixtures ------------------------------------------------------------------------
@pytest.fixture
def bundled(tmp_path, monkeypatch):
    """A bundled checkpoints/ folder of its own (seed 100), told apart from the Hub's by its weights."""
    monkeypatch.setattr(hub, "BUNDLED_DIR", tmp_path / "bundled")
    return make_checkpoints(tmp_path / "bundled", seed=100)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    # huggingface_hub's user agent looks up a list of AI agents at {ENDPOINT}/api/agent-harnesses
    # once per process (telemetry): kept out of the tests, which must not reach the internet.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    for var in ("HF_HUB_OFFLINE", "HF_HUB_ETAG_TIMEOUT", "AIGC_HUB_TIMEOUT", "HF_TOKEN", "AIGC_HUB_REPO"):
        monkeypatch.delenv(var, raising=False)
    hub.forget_unreachable()
    yield
    # A fetch abandoned at its deadline runs on in a daemon thread until its
    # server goes away; let it end here, or its late socket work can disturb the
    # next test's connections (seen as "Bad file descriptor" under load).
    for t in threading.enumerate():
        if t.name == "aigc-hub-fetch":
            t.join(timeout=30)
    hub.forget_unreachable()


@pytest.fixture
def server(monkeypatch):
    s = HubServer().start()
    monkeypatch.setenv("HF_ENDPOINT", s.endpoint)
    # A healthy local server must not pass for a slow Hub on a loaded machine:
    # generous limits here; the tests of slowness set their own.
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "30")
    monkeypatch.setenv("AIGC_HUB_TIMEOUT", "60")
    yield s
    s.stop()


@pytest.fixture
def published(tmp_path, server):
    """REPO on the server: the four models (seed 0) in their subfolders, on main."""
    states = make_checkpoints(tmp_path / "hub-repo", seed=0)
    sha = server.add_folder(REPO, tmp_path / "hub-repo")
    server.reset_counts()
    return sha, states


def fallback_lines(caplog, name):
    return [r.getMessage() for r in caplog.records if r.name == "aigc.hub" and r.levelno == logging.WARNING
            and r.getMessage().startswith(f"{name}:")]


def assert_bundled(model, name, bundled, caplog, reason):
    assert model.source == f"bundled:checkpoints/{name}"
    assert same_weights(model, bundled[name])
    found = (lambda text: reason.search(text)) if isinstance(reason, re.Pattern) else (lambda text: reason in text)
    assert found(model.source_note) and "\n" not in model.source_note
    lines = fallback_lines(caplog, name)
    assert len(lines) == 1 and found(lines[0]) and "\n" not in lines[0], lines


# ---- downloads and the cache ---------------------------------------------------------
def test_download_then_second_load_downloads_nothing(published, server, bundled):
    sha, states = published
    for name in hub.BUNDLED:
        m = aigc.load(name, device="cpu", hub_repo=REPO)
        assert m.source == f"hub:{REPO}@{sha}" and m.source_note == ""
        assert same_weights(m, states[name])
    # into huggingface_hub's standard cache, and only the two files a model needs
    snapshot = next(Path(constants.HF_HUB_CACHE).glob("models--org--models/snapshots/*"))
    assert snapshot.name == sha
    assert sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()) == \
        sorted(f"{n}/{f}" for n in hub.BUNDLED for f in ("config.json", "model.safetensors"))
    assert server.downloads() == 2 * len(hub.BUNDLED)

    server.reset_counts()
    for name in hub.BUNDLED:
        m = aigc.load(name, device="cpu", hub_repo=REPO)
        assert m.source == f"hub:{REPO}@{sha}" and same_weights(m, states[name])
    # one small request per model says main is still `sha`; no file is asked for again
    assert server.downloads() == 0 and server.count("HEAD") == 0
    assert server.count("GET", "/api/models/org/models/revision/main") == len(hub.BUNDLED) == len(server.requests)


def test_pinned_revision(tmp_path, published, server, bundled):
    sha1, states1 = published
    server.repo(REPO).branches["v1"] = sha1
    states2 = make_checkpoints(tmp_path / "v2", seed=50)
    sha2 = server.add_folder(REPO, tmp_path / "v2", message="retrained")
    assert sha2 != sha1

    assert same_weights(aigc.load("vae-mnist", device="cpu", hub_repo=REPO), states2["vae-mnist"])
    m = aigc.load("vae-mnist", device="cpu", hub_repo=f"{REPO}@v1")
    assert m.source == f"hub:{REPO}@{sha1}" and same_weights(m, states1["vae-mnist"])

    # a commit sha needs no question at all once its files are cached
    m = aigc.load("vae-mnist", device="cpu", hub_repo=f"{REPO}@{sha1}")
    assert m.source == f"hub:{REPO}@{sha1}" and same_weights(m, states1["vae-mnist"])
    server.reset_counts()
    aigc.load("vae-mnist", device="cpu", hub_repo=f"{REPO}@{sha1}")
    assert server.requests == []


def test_a_local_folder_comes_before_the_hub(tmp_path, published, server, monkeypatch):
    local = tmp_path / "here"
    make_checkpoints(local, seed=7)
    monkeypatch.chdir(local)
    m = aigc.load("gan-mnist", device="cpu", hub_repo=REPO)
    assert m.source == "local:gan-mnist" and server.requests == []


# ---- falling back to the bundled copy ----------------------------------------------------
def test_refused_connection_falls_back_at_once(bundled, monkeypatch, caplog):
    monkeypatch.setenv("HF_ENDPOINT", refused_endpoint())
    t0 = time.perf_counter()
    m = aigc.load("gan-fashion", device="cpu", hub_repo=REPO)
    assert time.perf_counter() - t0 < 3
    assert_bundled(m, "gan-fashion", bundled, caplog, "cannot reach the Hub at http://127.0.0.1:")


def test_a_hub_that_never_answers_costs_one_timeout_for_all_models(bundled, monkeypatch, caplog):
    silent = SilentServer().start()
    monkeypatch.setenv("HF_ENDPOINT", silent.endpoint)
    try:
        t0 = time.perf_counter()
        models = [aigc.load(name, device="cpu", hub_repo=REPO) for name in hub.BUNDLED]
        elapsed = time.perf_counter() - t0
    finally:
        silent.stop()
    # the default 3 s request timeout, once: the others do not ask again (the app's bound is 20 s)
    assert hub.REQUEST_TIMEOUT_S <= elapsed < hub.REQUEST_TIMEOUT_S + 10, elapsed
    assert_bundled(models[0], "gan-mnist", bundled, caplog, "did not answer within 3 s")
    for name, m in zip(hub.BUNDLED[1:], models[1:]):
        assert_bundled(m, name, bundled, caplog, "not asked again")


def test_a_fresh_process_with_a_silent_hub_loads_every_model_within_the_bound(tmp_path):
    """As `HF_ENDPOINT=<silent> python app.py` starts: huggingface_hub configured
    at import from the environment, telemetry on, nothing cached."""
    make_checkpoints(tmp_path / "bundled", seed=100)
    silent = SilentServer().start()
    script = (
        "import sys, time, pathlib, aigc\n"
        "from aigc import hub\n"
        "hub.BUNDLED_DIR = pathlib.Path(sys.argv[1])\n"
        "t0 = time.perf_counter()\n"
        "sources = [aigc.load(n, device='cpu', hub_repo='org/models').source for n in hub.BUNDLED]\n"
        "print(round(time.perf_counter() - t0, 2), *sources)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "AIGC_"))}
    env.update(HF_ENDPOINT=silent.endpoint, HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(ROOT))
    try:
        run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "bundled")], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    finally:
        silent.stop()
    assert run.returncode == 0, run.stderr
    elapsed, *sources = run.stdout.split()
    assert sources == [f"bundled:checkpoints/{n}" for n in hub.BUNDLED]
    # 3 s for our one metadata request, 3 s for huggingface_hub's one-time agent lookup; the app's bound is 20 s
    assert float(elapsed) < 10, run.stdout
    assert run.stderr.count("did not answer within 3 s") == len(hub.BUNDLED), run.stderr


def test_a_hub_that_stalls_on_files_is_cut_off_by_the_deadline(published, server, bundled, monkeypatch, caplog):
    monkeypatch.setenv("AIGC_HUB_TIMEOUT", "1.5")
    server.stall_files = True  # the API answers; /resolve/ never does
    t0 = time.perf_counter()
    m = aigc.load("vae-fashion", device="cpu", hub_repo=REPO)
    assert time.perf_counter() - t0 < 3
    assert_bundled(m, "vae-fashion", bundled, caplog, "within 1.5 s (AIGC_HUB_TIMEOUT)")


def test_offline_mode_uses_the_cache_or_the_bundled_copy(published, server, bundled, monkeypatch, caplog):
    sha, states = published
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = aigc.load("gan-mnist", device="cpu", hub_repo=REPO)
    assert_bundled(m, "gan-mnist", bundled, caplog, "offline mode (HF_HUB_OFFLINE=1), and org/models@main is not")
    assert server.requests == []

    monkeypatch.delenv("HF_HUB_OFFLINE")
    aigc.load("gan-mnist", device="cpu", hub_repo=REPO)  # online: fills the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    server.reset_counts()
    m = aigc.load("gan-mnist", device="cpu", hub_repo=REPO)
    assert m.source == f"hub:{REPO}@{sha}" and same_weights(m, states["gan-mnist"])
    assert m.source_note == "offline mode (HF_HUB_OFFLINE=1); using the cached org/models@main"
    assert server.requests == []


def test_an_unreachable_hub_still_serves_what_is_cached(published, server, bundled, monkeypatch):
    sha, states = published
    aigc.load("vae-mnist", device="cpu", hub_repo=REPO)
    monkeypatch.setenv("HF_ENDPOINT", refused_endpoint())  # the same repo, now out of reach
    m = aigc.load("vae-mnist", device="cpu", hub_repo=REPO)
    assert m.source == f"hub:{REPO}@{sha}" and same_weights(m, states["vae-mnist"])
    assert m.source_note.startswith("cannot reach the Hub") and "using the cached org/models@main" in m.source_note


@pytest.mark.parametrize("spec, reason", [
    ("org/absent", "repo org/absent was not found on http://127.0.0.1:"),
    (f"{REPO}@no-such-branch", "revision 'no-such-branch' does not exist in org/models"),
    (f"{REPO}@{'0' * 40}", "revision '" + "0" * 40 + "' does not exist in org/models"),
])
def test_missing_repo_or_revision_falls_back(published, server, bundled, caplog, spec, reason):
    m = aigc.load("vae-fashion", device="cpu", hub_repo=spec)
    assert_bundled(m, "vae-fashion", bundled, caplog, reason)


def test_missing_file_falls_back(tmp_path, server, bundled, caplog):
    make_checkpoints(tmp_path / "partial", seed=0)
    (tmp_path / "partial" / "gan-mnist" / "model.safetensors").unlink()
    sha = server.add_folder(REPO, tmp_path / "partial")
    m = aigc.load("gan-mnist", device="cpu", hub_repo=REPO)
    assert_bundled(m, "gan-mnist", bundled, caplog, f"{REPO}@{sha[:12]} has no gan-mnist/model.safetensors")


def _truncate(folder):
    p = folder / "gan-mnist" / "model.safetensors"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _garble(folder):
    p = folder / "gan-mnist" / "model.safetensors"
    p.write_bytes(b"\xff" * p.stat().st_size)


def _wrong_shapes(folder):  # a checkpoint of another size under the right config: strict loading refuses it
    other = Generator(classes=class_names("mnist"), dataset="mnist", z_dim=8, ch=6)
    save_model_files(other, folder / "tmp")
    (folder / "tmp" / "model.safetensors").replace(folder / "gan-mnist" / "model.safetensors")


def _wrong_family(folder):  # the VAE's files in the GAN's folder
    for f in ("config.json", "model.safetensors"):
        (folder / "vae-mnist" / f).replace(folder / "gan-mnist" / f)


@pytest.mark.parametrize("damage, reason", [
    (_truncate, re.compile(r"gan-mnist does not load \(ValueError: .*gan-mnist/model.safetensors is not a readable")),
    (_garble, re.compile(r"gan-mnist does not load \(ValueError: .*gan-mnist/model.safetensors is not a readable")),
    (_wrong_shapes, re.compile(r"gan-mnist does not load \(ValueError: .*gan-mnist/model.safetensors does not fit")),
    (_wrong_family, "describes family 'vae' on dataset 'mnist', but gan-mnist needs family 'gan'"),
])
def test_corrupt_truncated_or_wrong_files_fall_back(tmp_path, server, bundled, caplog, damage, reason):
    make_checkpoints(tmp_path / "bad", seed=0)
    damage(tmp_path / "bad")
    server.add_folder(REPO, tmp_path / "bad")
    m = aigc.load("gan-mnist", device="cpu", hub_repo=REPO)
    assert_bundled(m, "gan-mnist", bundled, caplog, reason)


@pytest.mark.parametrize("spec, reason", [
    ("org/absent", "repo org/absent was not found"),
    (f"{REPO}@nope", "revision 'nope' does not exist"),
])
def test_strict_mode_raises_instead_of_falling_back(published, server, bundled, spec, reason):
    with pytest.raises(aigc.HubError, match=f"gan-mnist: Hub repo {spec} not used: {reason}.*Strict mode"):
        aigc.load("gan-mnist", device="cpu", hub_repo=spec, hub_strict=True)


def test_no_hub_and_no_bundled_copy_says_both(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "BUNDLED_DIR", tmp_path / "nothing-here")
    monkeypatch.setenv("HF_ENDPOINT", refused_endpoint())
    with pytest.raises(FileNotFoundError, match="cannot reach the Hub.*; and the bundled checkpoint .* is missing"):
        aigc.load("gan-mnist", device="cpu", hub_repo=REPO)


def test_strict_mode_raises_when_the_hub_is_unreachable(bundled, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", refused_endpoint())
    with pytest.raises(aigc.HubError, match="cannot reach the Hub"):
        aigc.load("vae-mnist", device="cpu", hub_repo=REPO, hub_strict=True)


@pytest.mark.parametrize("spec", ["models", "org/a/b", "org/models@", "org/bad name"])
def test_a_malformed_repo_is_an_error_not_a_fallback(bundled, spec):
    with pytest.raises(ValueError, match="use ORG/NAME or ORG/NAME@REVISION"):
        aigc.load("gan-mnist", device="cpu", hub_repo=spec)


def test_no_hub_repo_means_the_bundled_copy_whatever_the_environment(bundled, server, monkeypatch):
    monkeypatch.setenv("AIGC_HUB_REPO", REPO)  # the app's default for --hub-repo; load() itself ignores it
    m = aigc.load("gan-mnist", device="cpu")
    assert m.source == "bundled:checkpoints/gan-mnist" and m.source_note == "" and server.requests == []
    assert hub.env_hub_repo() == REPO


# ---- publishing ------------------------------------------------------------------------
EXPECTED_FILES = sorted(
    ["README.md"]
    + [f"{n}/{f}" for n in hub.BUNDLED for f in ("config.json", "model.safetensors", "history.jsonl",
                                                  "training.json", "samples/epoch_002.png", "README.md")]
    + ["gan-mnist/metrics.json"])


def test_publish_then_load(tmp_path, server, bundled, monkeypatch, capsys):
    states = make_checkpoints(tmp_path / "ckpts", seed=0)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    assert publish.main(["--repo", "org/pub", "--checkpoints", str(tmp_path / "ckpts")]) == 0
    repo = server.repos["org/pub"]
    sha = repo.branches["main"]
    assert sorted(f for f in repo.commits[sha] if f != ".gitattributes") == EXPECTED_FILES
    assert set(server.auth) == {"Bearer hf_test_token"}
    assert f'hub_repo="org/pub@{sha}"' in capsys.readouterr().out
    for name in hub.BUNDLED:
        m = aigc.load(name, device="cpu", hub_repo="org/pub")
        assert m.source == f"hub:org/pub@{sha}", getattr(m, "source_note", "")
        assert same_weights(m, states[name])

    # a branch: created from main, committed to, main untouched
    states2 = make_checkpoints(tmp_path / "ckpts2", seed=33)
    assert publish.main(["--repo", "org/pub", "--revision", "exp", "--models", "vae-mnist",
                         "--checkpoints", str(tmp_path / "ckpts2")]) == 0
    assert repo.branches["main"] == sha and repo.branches["exp"] != sha
    exp, main = repo.commits[repo.branches["exp"]], repo.commits[sha]
    assert exp.keys() == main.keys()  # a partial publish leaves the repo card and the other models alone
    assert sorted(f for f in exp if exp[f] != main[f]) == \
        ["vae-mnist/README.md", "vae-mnist/model.safetensors", "vae-mnist/training.json"]
    assert 'aigc.load("vae-mnist", hub_repo="org/pub@exp")' in exp["vae-mnist/README.md"].decode()
    assert same_weights(aigc.load("vae-mnist", device="cpu", hub_repo="org/pub@exp"), states2["vae-mnist"])
    assert same_weights(aigc.load("vae-mnist", device="cpu", hub_repo="org/pub"), states["vae-mnist"])


def test_dry_run_writes_exactly_what_would_go_up(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", refused_endpoint())  # any request would fail the run
    ckpts, out = tmp_path / "ckpts", tmp_path / "out"
    make_checkpoints(ckpts, seed=0)
    assert publish.main(["--repo", "org/pub", "--dry-run", "--out", str(out), "--checkpoints", str(ckpts)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == EXPECTED_FILES
    for name in hub.BUNDLED:  # copied byte for byte; the latest grid only; no optimizer pickle
        for f in ("config.json", "model.safetensors", "history.jsonl", "training.json", "samples/epoch_002.png"):
            assert (out / name / f).read_bytes() == (ckpts / name / f).read_bytes()
        assert not (out / name / "train_state.pt").exists()
        m = aigc.load(out / name, device="cpu")
        assert m.source == f"local:{out / name}"
        card = (out / name / "README.md").read_text()
        assert f'aigc.load("{name}", hub_repo="org/pub")' in card and "## Training" in card
    assert (out / "gan-mnist" / "metrics.json").read_bytes() == (ckpts / "gan-mnist" / "metrics.json").read_bytes()
    assert "| class_accuracy | 0.987 |" in (out / "gan-mnist" / "README.md").read_text()   # from metrics.json
    assert "| frechet | 7 |" in (out / "vae-mnist" / "README.md").read_text()             # from the last epoch

    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "aigc" and card.data.license == "mit"
    assert card.data.datasets == ["ylecun/mnist", "zalando-datasets/fashion_mnist"]
    for name in hub.BUNDLED:
        assert f"## {name}" in card.text and f'aigc.load("{name}", hub_repo="org/pub")' in card.text
        assert f"![{name} samples]({name}/samples/epoch_002.png)" in card.text
    assert "| [gan-mnist](gan-mnist/README.md) | class-conditional GAN (EMA generator) | MNIST digits | 2 | " \
           "class_accuracy 0.987, frechet 1.25 |" in card.text
    assert "| parameters | 1,234 |" in card.text

    # a second dry run into the same folder would mix two uploads: refused
    assert publish.main(["--repo", "org/pub", "--dry-run", "--out", str(out), "--checkpoints", str(ckpts)]) == 2


def test_publish_refuses_a_broken_checkpoint_before_any_request(tmp_path, server, monkeypatch, capsys):
    make_checkpoints(tmp_path / "ckpts", seed=0)
    _truncate(tmp_path / "ckpts")
    (tmp_path / "ckpts" / "vae-fashion" / "history.jsonl").unlink()
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    assert publish.main(["--repo", "org/pub", "--checkpoints", str(tmp_path / "ckpts")]) == 2
    err = capsys.readouterr().err
    assert "gan-mnist: does not load (ValueError: " in err and "is not a readable safetensors" in err
    assert "vae-fashion: missing history.jsonl" in err
    assert server.requests == []


@pytest.mark.parametrize("argv, message", [
    (["--repo", "org/pub"], "no Hugging Face token: set HF_TOKEN"),
    (["--repo", "org/pub", "--dry-run"], "--dry-run needs --out DIR"),
    (["--repo", "org/pub@exp", "--dry-run", "--out", "x"], "give the branch with --revision"),
])
def test_publish_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        publish.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err
