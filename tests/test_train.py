import json
import os
import signal

import pytest
import torch

import aigc
from aigc import train
from aigc.classifier import ClassifierRecipe
from aigc.families import FAMILIES, generative
from aigc.io import atomic_write_text, read_jsonl
from aigc.train import Trainer

from .conftest import TINY, TINY_GAN, TINY_VAE, synthetic_set
from .tiny_demo import write_synthetic_datasets

KW = TINY


def make(kind, out, **kw):
    data = synthetic_set(128)
    return Trainer(kind, "mnist", out, batch_size=32, seed=0, device="cpu", model_kwargs=KW[kind],
                   train_set=data, test_set=synthetic_set(64, seed=1), progress=False, **kw)


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_one_step_changes_weights_without_nan(kind, tmp_path):
    t = make(kind, tmp_path)
    before = {k: {n: p.clone() for n, p in m.named_parameters()} for k, m in t.recipe.modules.items()}
    x = t.train_set.floats(slice(0, 32))
    losses = t.recipe.step(x, t.train_set.labels[:32], t.noise_gen)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    for k, m in t.recipe.modules.items():
        for n, p in m.named_parameters():
            assert torch.isfinite(p).all(), f"{k}.{n} has NaN"
        if k != "G_ema":
            assert any(not torch.equal(p, before[k][n]) for n, p in m.named_parameters()), f"{k} did not move"


@pytest.mark.parametrize("kind", [f.name for f in generative()])
def test_epoch_writes_loadable_checkpoint_history_and_grid(kind, tmp_path):
    t = make(kind, tmp_path / "run")
    t.train(1)
    run = tmp_path / "run"
    for name in ("config.json", "model.safetensors", "history.jsonl", "README.md", "training.json",
                 "samples/epoch_001.png", train.STATE_NAME):
        assert (run / name).is_file(), name
    row = read_jsonl(run / "history.jsonl")[0]
    assert row["epoch"] == 1 and row["step"] == 4 and row["device"] == "cpu" and row["images_per_s"] > 0
    m = aigc.load(str(run), device="cpu")
    assert m.sample(4, labels=2, seed=0).shape == (4, 1, 28, 28)
    assert not list(run.glob(".*tmp")) and not list(run.glob(".export.*"))


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_resume_continues_exactly(kind, tmp_path):
    straight = make(kind, tmp_path / "a")
    straight.train(2)

    first = make(kind, tmp_path / "b")
    first.train(1)
    resumed = Trainer.resume(tmp_path / "b", device="cpu", progress=False,
                             train_set=synthetic_set(128), test_set=synthetic_set(64, seed=1))
    assert resumed.epoch == 1 and resumed.step_count == 4
    resumed.train(2)
    for k, m in straight.recipe.modules.items():
        other = resumed.recipe.modules[k].state_dict()
        for n, v in m.state_dict().items():
            assert torch.equal(v, other[n]), f"{k}.{n} differs after resume"
    assert [r["epoch"] for r in read_jsonl(tmp_path / "b" / "history.jsonl")] == [1, 2]


def test_resume_drops_history_rows_newer_than_the_state(tmp_path):
    t = make("vae", tmp_path)
    t.train(1)
    rows = read_jsonl(tmp_path / "history.jsonl")
    # a kill between the history write and the state write leaves one row too many
    atomic_write_text(tmp_path / "history.jsonl",
                      "".join(json.dumps(r) + "\n" for r in rows + [{**rows[0], "epoch": 2}]))
    r = Trainer.resume(tmp_path, device="cpu", progress=False, train_set=synthetic_set(128))
    r.train(2)
    assert [row["epoch"] for row in read_jsonl(tmp_path / "history.jsonl")] == [1, 2]


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")

    def boom(tmp):
        open(tmp, "w").write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_cli_errors_are_plain(tmp_path, capsys):
    assert train.main(["gan", "--dataset", "mnist", "--epochs", "1", "--out", str(tmp_path / "x"),
                       "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["gan", "--dataset", "cifar", "--epochs", "1", "--out", str(tmp_path)])
    assert "invalid choice: 'cifar'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown model family"):
        Trainer("gpt", "mnist", tmp_path, train_set=synthetic_set(64))
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        make("vae", tmp_path).train(0)


def test_cuda_request_without_cuda_is_explained():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device is available"):
        train.pick_device("cuda")


# ---- hooks and CLI options for runs started from the page (aigc.runs) ----------------
def test_on_step_reports_every_step_and_max_images_trains_on_the_first_n(tmp_path):
    seen = []
    t = make("vae", tmp_path / "run", max_images=64)            # 64 images, batch 32: 2 steps per epoch
    assert torch.equal(t.images.cpu(), synthetic_set(128).images[:64])
    t.train(2, on_step=lambda info: seen.append((info["epoch"], info["epochs"], info["step"], info["steps"],
                                                 sorted(k for k in info if k in ("loss", "rec", "kl")))))
    assert seen == [(e, 2, s, 2, ["kl", "loss", "rec"]) for e in (1, 2) for s in (1, 2)]
    resumed = Trainer.resume(tmp_path / "run", device="cpu", progress=False, train_set=synthetic_set(128))
    assert resumed.max_images == 64 and len(resumed.images) == 64   # the state keeps the image count


def test_sigterm_stops_between_steps_leaving_the_last_finished_epoch(tmp_path):
    t = make("gan", tmp_path / "run")

    def kill_at_epoch_2(info):
        if (info["epoch"], info["step"]) == (2, 2):
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with train.StopOnSigterm() as stop:
        t.train(5, should_stop=stop, on_step=kill_at_epoch_2)
    assert signal.getsignal(signal.SIGTERM) == before              # the handler is the CLI's only while it runs
    assert t.epoch == 1 and t.step_count == 6                      # epoch 1's 4 steps, then 2 of epoch 2
    assert [r["epoch"] for r in read_jsonl(tmp_path / "run" / "history.jsonl")] == [1]
    state = Trainer.read_state(tmp_path / "run")
    assert state["epoch"] == 1 and state["step"] == 4               # the last finished epoch's files, untouched
    assert not (tmp_path / "run" / "samples" / "epoch_002.png").exists()


@pytest.mark.parametrize("text, match", [
    ('{"chx": 4}', "gan has no argument 'chx'; it takes z_dim, ch"),
    ('{"ch": 0}', "ch must be a whole number from 1 to 4096"),
    ('{"ch": 4.5}', "ch must be a whole number"),
    ('{"ch": true}', "ch must be a whole number"),
    ('{"classes": 3}', "no argument 'classes'"),
    ("[4]", "must be a JSON object"),
    ("{ch: 4}", "is not valid JSON"),
])
def test_model_kwargs_are_checked_against_the_constructor(text, match):
    with pytest.raises(ValueError, match=match):
        train.parse_model_kwargs("gan", text)


def test_model_kwargs_accepted():
    assert train.parse_model_kwargs("vae", '{"z_dim": 4, "ch": 4, "hidden": 16}') == TINY_VAE
    assert train.parse_model_kwargs("vae", '{"iw_samples": 5}') == {"iw_samples": 5}
    assert train.model_args("classifier") == ["ch", "feature_dim"]


def test_cli_tiny_run_writes_progress_and_keeps_its_settings_on_resume(tmp_path, capsys):
    data = write_synthetic_datasets(tmp_path / "data")
    out, progress = tmp_path / "run", tmp_path / "run" / "progress.json"
    common = ["--out", str(out), "--data-dir", str(data), "--no-progress", "--progress-file", str(progress),
              "--eval-classifier", str(tiny_classifier(tmp_path / "clf"))]
    assert train.main(["gan", "--dataset", "mnist", "--epochs", "1", "--max-images", "64", "--batch-size", "32",
                       "--model-kwargs", json.dumps(TINY_GAN), *common]) == 0
    p = json.loads(progress.read_text())
    assert (p["state"], p["epochs_done"], p["epoch"], p["epochs"], p["step"], p["steps"]) == ("finished", 1, 1, 1, 2, 2)
    assert set(p["losses"]) == {"d_loss", "g_loss"} and p["pid"] == os.getpid()
    assert aigc.load(str(out), device="cpu").ch == TINY_GAN["ch"]
    assert {"class_accuracy", "frechet"} <= set(read_jsonl(out / "history.jsonl")[0])   # the quality check ran
    with pytest.raises(SystemExit):
        train.main(["gan", "--epochs", "2", "--resume", "--max-images", "128", *common])
    assert "trained with --max-images 64; --resume keeps it" in capsys.readouterr().err
    assert json.loads(progress.read_text())["state"] == "failed"   # a refused run does not look alive
    assert train.main(["gan", "--epochs", "2", "--resume", *common]) == 0
    assert [(r["epoch"], r["step"]) for r in read_jsonl(out / "history.jsonl")] == [(1, 2), (2, 4)]
    assert json.loads(progress.read_text())["epochs_done"] == 2


def tiny_classifier(folder):
    torch.manual_seed(0)
    aigc.Classifier(classes=[str(i) for i in range(10)], dataset="mnist", ch=2, feature_dim=8).save_pretrained(folder)
    return folder


def test_resume_with_a_new_learning_rate_uses_it_from_then_on(tmp_path):
    make("classifier", tmp_path).train(1)
    t = Trainer.resume(tmp_path, device="cpu", progress=False, train_set=synthetic_set(128),
                       test_set=synthetic_set(64, seed=1))
    t.set_lr(1e-4)
    t.train(2)
    state = Trainer.read_state(tmp_path)
    assert state["settings"]["lr"] == 1e-4
    assert [(p["from_epoch"], p["lr"]) for p in state["settings"]["phases"]] == [(1, 1e-3), (2, 1e-4)]
    assert state["optimizers"]["classifier"]["param_groups"][0]["lr"] == 1e-4
    with pytest.raises(ValueError, match="must be positive"):
        t.set_lr(0)


def test_model_kwargs_accept_a_kl_weight_and_the_vae_trains_on_it(tmp_path):
    assert train.parse_model_kwargs("vae", '{"kl_weight": 0.25, "ch": 4}') == {"kl_weight": 0.25, "ch": 4}
    with pytest.raises(ValueError, match="kl_weight must be a positive number"):
        train.parse_model_kwargs("vae", '{"kl_weight": 0}')
    with pytest.raises(ValueError, match="ch must be a whole number"):
        train.parse_model_kwargs("vae", '{"ch": 2.5}')
    t = Trainer("vae", "mnist", tmp_path, batch_size=32, device="cpu", train_set=synthetic_set(128),
                model_kwargs={**TINY_VAE, "kl_weight": 0.25}, progress=False)
    t.train(1)
    m = aigc.load(str(tmp_path), device="cpu")
    assert m.kl_weight == 0.25  # travels in config.json


def test_resume_may_change_the_vae_objective_but_not_its_shape(tmp_path, capsys):
    data = write_synthetic_datasets(tmp_path / "data")
    out = tmp_path / "run"
    common = ["--out", str(out), "--data-dir", str(data), "--no-progress",
              "--eval-classifier", str(tiny_classifier(tmp_path / "clf"))]
    assert train.main(["vae", "--dataset", "mnist", "--epochs", "1", "--batch-size", "32", "--max-images", "64",
                       "--model-kwargs", json.dumps(TINY_VAE), *common]) == 0
    wider = json.dumps({**TINY_VAE, "ch": 8})
    assert train.main(["vae", "--epochs", "2", "--resume", "--model-kwargs", wider, *common]) == 2
    assert "cannot change ch" in capsys.readouterr().err
    iw = json.dumps({"iw_samples": 3})   # an update: the run keeps its other arguments
    assert train.main(["vae", "--epochs", "2", "--resume", "--model-kwargs", iw, *common]) == 0
    rows = read_jsonl(out / "history.jsonl")
    assert "iw_bound" not in rows[0] and rows[1]["iw_bound"] <= rows[1]["loss"]   # Jensen: the IW bound is tighter
    assert json.loads((out / "config.json").read_text())["iw_samples"] == 3
    assert Trainer.read_state(out)["settings"]["model_kwargs"] == {**TINY_VAE, "iw_samples": 3}   # kept by --resume
    assert "| schedule | epochs 1-1: lr 0.001; epochs 2-2: lr 0.001, iw_samples 3 |" in (out / "README.md").read_text()


def test_classifier_augmentation_shifts_blurs_half_and_stays_in_range():
    B = 400
    x = torch.zeros(B, 1, 28, 28)
    x[:, 0, 14, 14] = 1.0                                   # one bright pixel: a blur lowers its peak to <= 0.25
    g = torch.Generator().manual_seed(0)
    a = ClassifierRecipe.augment(x, g)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, ClassifierRecipe.augment(x, torch.Generator().manual_seed(0)))   # seeded
    blurred = (a.flatten(1).max(1).values < 0.5).float().mean().item()
    assert 0.4 < blurred < 0.6                              # half the batch is blurred
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    w = a[:, 0] / a[:, 0].sum((1, 2), keepdim=True)
    cy, cx = (w * ys).sum((1, 2)), (w * xs).sum((1, 2))   # centre of mass per image
    assert ((cy - 14).abs() <= 2.5).all() and ((cx - 14).abs() <= 2.5).all()   # shifted by at most 2 px
    assert len({(round(a_, 1), round(b_, 1)) for a_, b_ in zip(cy.tolist(), cx.tolist())}) > 10  # and varied
