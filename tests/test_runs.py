"""Training runs started from the page (aigc.runs): the manager on its own,
then the demo launched with a runs directory and driven through
gradio_client. Runs are real `python -m aigc.train` processes, kept tiny: a
synthetic dataset of 256 images, tiny models, a tiny judging classifier.
Every process a test starts is killed when it ends, whatever happened."""
import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import aigc
import app
from aigc.demo import Studio
from aigc.io import read_jsonl
from aigc.labels import labelled_grid
from aigc.progress import ProgressWriter
from aigc.runs import (RUN_FILE, RunError, RunManager, check_name, duration,
                       start_token)

from .tiny_demo import (free_port, kill_runs, tiny_models, tiny_run_manager, write_checkpoints_dir,
                        write_examples_dir)

IMAGES, BATCH = 256, 32
STEPS = IMAGES // BATCH          # steps per epoch of every run here
ENDED = {"finished", "stopped", "interrupted", "failed"}


# ---- fixtures ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    models = tiny_models()
    w = SimpleNamespace(root=root, runs_dir=root / "runs", models=models,
                        checkpoints=write_checkpoints_dir(root / "checkpoints", models),
                        examples=write_examples_dir(root / "examples"))
    tiny_run_manager(root, IMAGES)   # the data and classifiers, written once
    yield w
    kill_runs(w.runs_dir)


@pytest.fixture(autouse=True)
def no_run_outlives_its_test(request):
    yield
    if "world" in request.fixturenames:
        kill_runs(request.getfixturevalue("world").runs_dir)


def manager(w) -> RunManager:
    return tiny_run_manager(w.root, IMAGES)


@contextmanager
def serve(w, allow_training: bool = True):
    """The demo over w's runs directory, launched on a free port: (client, its RunManager)."""
    runs = manager(w)
    demo = app.build_demo(w.models, checkpoints_dir=w.checkpoints, examples_dir=w.examples, concurrency=2,
                          runs=runs, allow_training=allow_training)
    _, url, _ = app.launch(demo, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield Client(url, verbose=False), runs
    finally:
        demo.close()


@pytest.fixture(scope="module")
def served(world):
    with serve(world) as s:
        yield s


def run_report(client, name) -> dict:
    return client.predict(f"run:{name}", api_name="/train_status")[8]["selected"]


def wait_for(client, name, done, timeout=90.0) -> dict:
    """Poll train_status until done(report) holds."""
    deadline = time.monotonic() + timeout
    while True:
        rep = run_report(client, name)
        if done(rep):
            return rep
        assert rep["state"] not in ENDED or done(rep), f"{name} ended early: {rep}"
        assert time.monotonic() < deadline, f"{name} did not get there in {timeout:.0f} s: {rep}"
        time.sleep(0.3)


def ended(rep) -> bool:
    return rep["state"] in ENDED


def training(rep) -> bool:
    """Running, past its first epoch, with a time left measured."""
    return rep["state"] == "running" and rep["epochs_done"] >= 1 and rep["eta_s"] is not None


def epochs_and_steps(w, name) -> list[tuple[int, int]]:
    return [(r["epoch"], r["step"]) for r in read_jsonl(w.runs_dir / name / "history.jsonl")]


def opened(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("L"))


# ---- the manager on its own (no processes) ------------------------------------------
@pytest.mark.parametrize("name", ["", "..", "../x", "a/b", "/etc", "~x", ".hidden", "-x", "a b", "x" * 65,
                                  "ü", None, 3])
def test_run_names_are_plain_folder_names(name):
    with pytest.raises(RunError, match="letters, digits, '-' or '_'"):
        check_name(name)
    assert check_name("gan_digits-2") == "gan_digits-2"


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "Epochs must be a whole number from 1 to 50"),
    (dict(epochs=51), "Epochs must be"),
    (dict(epochs=2.5), "Epochs must be"),
    (dict(batch_size=IMAGES + 1), f"Batch size must be a whole number from 1 to {IMAGES} .this server trains on"),
    (dict(lr=0.0), "Learning rate must be"),
    (dict(lr=3.0), "Learning rate must be"),
    (dict(family="classifier"), "Unknown model family 'classifier'"),
    (dict(dataset="cifar"), "Unknown dataset 'cifar'"),
])
def test_bad_settings_are_refused_before_anything_starts(tmp_path, kwargs, match):
    runs = RunManager(tmp_path / "runs", max_images=IMAGES)
    with pytest.raises(RunError, match=match):
        runs.start("ok", **{**dict(family="gan", dataset="mnist", epochs=2, batch_size=BATCH, lr=2e-4), **kwargs})
    assert not (tmp_path / "runs").exists()      # nothing created for a refused start


def fake_run(runs_dir: Path, name: str, *, pid: int, token: str | None, progress: dict | None = None, **extra):
    folder = runs_dir / name
    folder.mkdir(parents=True)
    (folder / RUN_FILE).write_text(json.dumps({"name": name, "family": "gan", "dataset": "mnist", "epochs": 5,
                                               "created": "2025-01-01T00:00:00", **extra,
                                               "process": {"pid": pid, "token": token}}))
    if progress is not None:
        (folder / "progress.json").write_text(json.dumps(progress))


def test_a_reused_pid_is_not_taken_for_the_run(tmp_path):
    runs = RunManager(tmp_path)
    me = os.getpid()                              # alive, but not the trainer the record names
    fake_run(tmp_path, "reused", pid=me, token="another-boot:12345")
    fake_run(tmp_path, "alive", pid=me, token=start_token(me), progress={"state": "running", "epoch": 2,
             "epochs": 5, "step": 3, "steps": 10, "eta_s": 90, "updated": time.time()})
    assert runs.status("reused").state == "interrupted"
    alive = runs.status("alive")
    assert alive.state == "running" and alive.live and (alive.epoch, alive.step, alive.steps) == (2, 3, 10)
    assert 85 <= alive.eta_s <= 90
    assert runs.active().name == "alive"
    with pytest.raises(RunError, match="One run at a time: 'alive' .GAN on digits. is running: epoch 2 of 5, "
                                       "step 3 of 10; it should finish in about 2 min"):
        runs.start("new", family="gan", dataset="mnist", epochs=1)
    with pytest.raises(RunError, match="It is running already"):
        runs.resume("alive")


def test_states_of_runs_whose_process_is_gone(tmp_path):
    runs = RunManager(tmp_path)
    gone = dict(pid=2**22 + 7, token="x:1")      # above any pid Linux hands out by default: not running
    fake_run(tmp_path, "failed", **gone, progress={"state": "failed", "message": "MNIST was not found"})
    fake_run(tmp_path, "stopped", **gone, progress={"state": "running"}, stop_requested=True)
    fake_run(tmp_path, "killed", **gone, progress={"state": "running"})
    assert runs.status("failed").state == "failed" and "MNIST was not found" in runs.status("failed").describe()
    assert runs.status("stopped").state == "stopped"
    killed = runs.status("killed")
    assert killed.state == "interrupted" and "resume continues from epoch 1" in killed.describe()
    assert runs.active() is None and runs.checkpoints() == []      # no finished epoch: no model to pick
    with pytest.raises(RunError, match="not running: there is nothing to stop"):
        runs.stop("killed")
    with pytest.raises(RunError, match="no run called 'nothing'"):
        runs.status("nothing")


def test_time_left_counts_steps_and_the_end_of_each_epoch(tmp_path, monkeypatch):
    now = [0.0]
    monkeypatch.setattr("aigc.runs.time.monotonic", lambda: now[0])
    w = ProgressWriter(tmp_path / "progress.json")
    for step, t in ((1, 0.0), (2, 0.5), (3, 1.0)):   # epoch 1 of 3, 4 steps, 0.5 s per step
        now[0] = t
        w.on_step({"epoch": 1, "epochs": 3, "step": step, "steps": 4, "loss": 1.0})
    assert w.snapshot()["eta_s"] == pytest.approx(1 * 0.5 + 2 * 4 * 0.5)
    now[0] = 1.5
    w.on_step({"epoch": 1, "epochs": 3, "step": 4, "steps": 4, "loss": 1.0})
    now[0] = 2.5                                      # the epoch's end (grid, quality check, files) took 1 s
    w.on_epoch({"epoch": 1})
    now[0] = 3.0
    w.on_step({"epoch": 2, "epochs": 3, "step": 1, "steps": 4, "loss": 1.0})
    snap = w.snapshot()
    assert snap["eta_s"] == pytest.approx(3 * 0.5 + 1.0 + 1 * (4 * 0.5 + 1.0))
    assert json.loads((tmp_path / "progress.json").read_text())["epochs_done"] == 1   # on_epoch wrote at once
    assert [duration(s) for s in (None, 0.2, 44, 240, 4800)] == [
        "time left not known yet", "about 1 s", "about 44 s", "about 4 min", "about 1 h 20 min"]


# ---- through the API ---------------------------------------------------------------
def test_a_tiny_run_started_through_the_api_finishes_and_can_be_sampled(served, world):
    client, runs = served
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in api["/train_start"]["parameters"]] == [
        "family", "dataset", "epochs", "batch_size", "learning_rate", "name"]
    resume = api["/train_resume"]["parameters"]        # without epochs: the run's own total, not the slider's 5
    assert [p["parameter_name"] for p in resume] == ["name", "epochs"] and resume[1]["parameter_default"] is None
    message, picked = client.predict("gan", "mnist", 2, BATCH, 2e-4, "tiny-gan", api_name="/train_start")
    assert message.startswith("Started 'tiny-gan': 2 epochs in the background") and picked == "run:tiny-gan"
    rep = wait_for(client, "tiny-gan", ended)
    assert (rep["state"], rep["epochs_done"], rep["fraction"]) == ("finished", 2, 1.0)
    assert epochs_and_steps(world, "tiny-gan") == [(1, STEPS), (2, 2 * STEPS)]

    losses, fractions, _, slider, grid, facts, _, live, report = client.predict("run:tiny-gan",
                                                                               api_name="/train_status")
    assert {row[2] for row in losses["data"]} == {"discriminator", "generator"}
    assert {row[2] for row in fractions["data"]} == {"class_accuracy"}    # the quality curve, per epoch
    assert slider["maximum"] == 2 and opened(grid).shape == (604, 604)     # the newest fixed-noise grid
    assert "| epochs | 2 (16 steps) |" in facts
    assert 'data-state="finished"' in live and "2 of 2 epochs done" in live
    assert {"name": "tiny-gan", "state": "finished", "epochs_done": 2, "epochs": 2} in report["runs"]

    # It is a checkpoint now: the API samples it, and it draws what the saved weights draw.
    path = client.predict("gan", "mnist", "3", 4, 0, 1.0, "run:tiny-gan", api_name="/sample")
    model = aigc.load_folder(world.runs_dir / "tiny-gan", device="cpu")
    drawn = labelled_grid(model.sample(4, 3, 0, 1.0), torch.full((4,), 3), model.classes)   # a 2x2 grid, "3" under it
    assert np.array_equal(opened(path), np.asarray(drawn))
    assert not np.array_equal(opened(path), opened(client.predict("gan", "mnist", "3", 4, 0, 1.0,
                                                                   api_name="/sample")))
    with pytest.raises(AppError, match="'tiny-gan' is a GAN trained on mnist, not a VAE on mnist"):
        client.predict("vae", "mnist", "3", 4, 0, 1.0, "run:tiny-gan", api_name="/sample")

    # The page's pickers offer it for its family and dataset only, and load it once.
    studio = Studio(world.models, checkpoints_dir=world.checkpoints, runs=runs)
    assert ("tiny-gan (your run, 2 epochs)", "run:tiny-gan") in studio.checkpoint_choices("gan", "mnist")
    assert [v for _, v in studio.checkpoint_choices("vae", "mnist")] == ["bundled"]
    assert studio.model("gan", "mnist", "run:tiny-gan") is studio.model("gan", "mnist", "run:tiny-gan")


def test_stop_then_resume_continues_from_the_right_epoch(served, world):
    client, _ = served
    client.predict("vae", "fashion", 30, BATCH, 1e-3, "long-vae", api_name="/train_start")
    wait_for(client, "long-vae", training)
    # One run at a time: a second start says what runs and when it should finish.
    with pytest.raises(AppError, match=r"One run at a time: 'long-vae' \(VAE on fashion\) is running: epoch \d+ "
                                       r"of 30, step \d+ of 8; it should finish in about \d+ (s|min)"):
        client.predict("gan", "mnist", 2, BATCH, 2e-4, "second", api_name="/train_start")
    assert not (world.runs_dir / "second").exists()

    assert client.predict("run:long-vae", api_name="/train_stop").startswith("Stopping 'long-vae'")
    rep = wait_for(client, "long-vae", ended)
    k = rep["epochs_done"]
    assert rep["state"] == "stopped" and 1 <= k < 30
    assert epochs_and_steps(world, "long-vae") == [(e, e * STEPS) for e in range(1, k + 1)]
    rows_before = read_jsonl(world.runs_dir / "long-vae" / "history.jsonl")
    before = client.predict("vae", "fashion", "Bag", 4, 0, 1.0, "run:long-vae", api_name="/sample")

    message, _ = client.predict("run:long-vae", k + 2, api_name="/train_resume")
    assert message == f"Resumed 'long-vae' from epoch {k + 1} of {k + 2}, in the background."
    rep = wait_for(client, "long-vae", ended)
    assert (rep["state"], rep["epochs_done"], rep["epochs"]) == ("finished", k + 2, k + 2)
    # Epoch k+1 continued from the stop: no epoch twice, and the step count runs on.
    assert epochs_and_steps(world, "long-vae") == [(e, e * STEPS) for e in range(1, k + 3)]
    # Epochs 1..k were not trained again (a retrain from scratch would give the same steps, not the same timings).
    assert read_jsonl(world.runs_dir / "long-vae" / "history.jsonl")[:k] == rows_before
    assert f"resuming {world.runs_dir.resolve() / 'long-vae'} after epoch {k}" in \
        (world.runs_dir / "long-vae" / "train.log").read_text()
    after = client.predict("vae", "fashion", "Bag", 4, 0, 1.0, "run:long-vae", api_name="/sample")
    assert not np.array_equal(opened(before), opened(after))     # the new weights, not the cached model
    example = sorted((world.examples / "fashion").glob("*.png"))[0]
    panels, error, verdict = client.predict("fashion", handle_file(str(example)), "run:long-vae",
                                            api_name="/reconstruct")
    assert opened(panels).shape == (248, 688) and 0 <= error <= 1 and verdict.split(":")[0] in {"Good", "Fair", "Poor"}


def test_a_run_that_died_with_its_server_is_listed_interrupted_and_resumes(world):
    with serve(world) as (client, _):
        client.predict("gan", "fashion", 30, BATCH, 2e-4, "crash", api_name="/train_start")
        wait_for(client, "crash", training)
    # The server is gone, without a word to its runs (as when killed). The trainer is in a session
    # of its own, so a restarted server finds it still running and takes it over...
    pid = json.loads((world.runs_dir / "crash" / RUN_FILE).read_text())["process"]["pid"]
    with serve(world) as (client, runs):
        assert run_report(client, "crash")["state"] == "running"
        with pytest.raises(AppError, match="One run at a time: 'crash'"):
            client.predict("gan", "mnist", 2, BATCH, 2e-4, "other", api_name="/train_start")
        # ...and when the machine went down with the server, the trainer is dead too.
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while start_token(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    with serve(world) as (client, runs):             # the server after the restart
        rep = run_report(client, "crash")
        k = rep["epochs_done"]
        assert rep["state"] == "interrupted" and k >= 1
        assert "crash" in {s.name for s in runs.checkpoints("gan", "fashion")}   # its last epoch is usable
        message, _ = client.predict("run:crash", k + 1, api_name="/train_resume")
        assert message.startswith(f"Resumed 'crash' from epoch {k + 1} of {k + 1}")
        rep = wait_for(client, "crash", ended)
        assert (rep["state"], rep["epochs_done"]) == ("finished", k + 1)
        assert epochs_and_steps(world, "crash") == [(e, e * STEPS) for e in range(1, k + 2)]


def test_a_server_shutting_down_stops_its_run_to_be_resumed_later(world):
    runs = manager(world)
    runs.start("shutdown", family="vae", dataset="mnist", epochs=30, batch_size=BATCH)
    deadline = time.monotonic() + 60
    while runs.status("shutdown").epochs_done < 1:
        assert time.monotonic() < deadline and runs.status("shutdown").live, runs.status("shutdown")
        time.sleep(0.2)
    runs.shutdown(timeout=20)                                      # what app.main does after Ctrl-C
    st = manager(world).status("shutdown")                         # as the next server reads it
    assert (st.state, st.message) == ("interrupted", "the server shut down") and st.epochs_done >= 1
    assert epochs_and_steps(world, "shutdown") == [(e, e * STEPS) for e in range(1, st.epochs_done + 1)]
    assert "stopped after epoch" in (world.runs_dir / "shutdown" / "train.log").read_text()   # gracefully
    resumed = runs.resume("shutdown")                              # no epochs given: its own total
    assert resumed.live and resumed.epochs == 30


def test_with_training_off_the_endpoints_refuse_and_runs_stay_readable(world):
    with serve(world, allow_training=False) as (client, _):
        for args, api_name in (((("gan", "mnist", 2, BATCH, 2e-4, "nope")), "/train_start"),
                               (("run:nope",), "/train_stop"), (("run:nope", 3), "/train_resume")):
            with pytest.raises(AppError, match="Training from the page is turned off on this server") as e:
                client.predict(*args, api_name=api_name)
            assert "Traceback" not in str(e.value)
        assert not (world.runs_dir / "nope").exists()
        report = client.predict("gan-mnist", api_name="/train_status")[8]
        assert report["training_now"] is None and isinstance(report["runs"], list)


@pytest.mark.parametrize("argv, env, allowed", [
    ([], {}, True),                                         # a local launch
    (["--share"], {}, False),                               # a public link
    ([], {"SPACE_ID": "me/aigc"}, False),                   # a Hugging Face Space
    (["--share", "--allow-training"], {}, True),            # asked for explicitly
    (["--allow-training"], {"SPACE_ID": "me/aigc"}, True),
    (["--no-allow-training"], {}, False),
])
def test_allow_training_defaults(monkeypatch, tmp_path, argv, env, allowed):
    monkeypatch.delenv("SPACE_ID", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    built = {}
    monkeypatch.setattr(app, "load_models", lambda **kw: [])
    monkeypatch.setattr(app, "build_demo", lambda models, **kw: built.update(kw) or SimpleNamespace(close=lambda: None))
    monkeypatch.setattr(app, "launch", lambda demo, **kw: None)
    monkeypatch.setattr(app.torch, "set_num_threads", lambda n: None)   # the test process keeps its threads
    assert app.main([*argv, "--runs-dir", str(tmp_path / "r"), "--train-max-images", "64"]) == 0
    assert built["allow_training"] is allowed
    assert built["runs"].runs_dir == tmp_path / "r" and built["runs"].max_images == 64
    assert not (tmp_path / "r").exists()                   # nothing is created until a run starts
