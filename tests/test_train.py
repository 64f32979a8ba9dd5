import json

import pytest
import torch

import aigc
from aigc import train
from aigc.io import atomic_write_text, read_jsonl
from aigc.train import Trainer

from .conftest import TINY_GAN, TINY_VAE, synthetic_set

KW = {"gan": TINY_GAN, "vae": TINY_VAE, "classifier": {"ch": 2, "feature_dim": 8}}


def make(kind, out, **kw):
    data = synthetic_set(128)
    return Trainer(kind, "mnist", out, batch_size=32, seed=0, device="cpu", model_kwargs=KW[kind],
                   train_set=data, test_set=synthetic_set(64, seed=1), progress=False, **kw)


@pytest.mark.parametrize("kind", ["gan", "vae", "classifier"])
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


@pytest.mark.parametrize("kind", ["gan", "vae"])
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


@pytest.mark.parametrize("kind", ["gan", "vae", "classifier"])
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
    with pytest.raises(ValueError, match="unknown model kind"):
        Trainer("gpt", "mnist", tmp_path, train_set=synthetic_set(64))
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        make("vae", tmp_path).train(0)


def test_cuda_request_without_cuda_is_explained():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device is available"):
        train.pick_device("cuda")
