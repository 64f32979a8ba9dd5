"""The family registry: every registered family passes the same contract,
so a new family gets these tests by registering (and adding its tiny size
to conftest.TINY)."""
import inspect
import json

import pytest
import torch

import aigc
from aigc import families
from aigc.io import read_jsonl
from aigc.train import Trainer

from .conftest import TINY, synthetic_set, tiny_model

ALL = list(families.FAMILIES)
GENERATIVE = [f.name for f in families.generative()]


def test_the_registry_holds_the_three_generative_families_and_the_judge():
    assert GENERATIVE == ["gan", "vae", "flow"] and "classifier" in ALL
    assert aigc.FAMILIES is families.FAMILIES


@pytest.mark.parametrize("name", ALL)
def test_each_family_is_described_completely(name):
    f = families.get(name)
    assert f.model_class.family == name and name in TINY, "add the family's tiny size to tests/conftest.TINY"
    assert f.batch_size >= 1 and f.lr > 0 and f.losses and f.label and f.description
    recipe = f.recipe(["a", "b"], "mnist", f.lr, torch.device("cpu"), TINY[name])
    assert f.main_module in recipe.modules and isinstance(recipe.modules[f.main_module], f.model_class)
    # what it says it can do, it can
    if f.can_encode:
        for method in ("encode_images", "decode_codes", "reconstruct"):
            assert callable(getattr(f.model_class, method, None)), method
    if f.takes_guidance:
        assert {"steps", "guidance", "solver"} <= set(inspect.signature(f.model_class.sample).parameters)


def test_unknown_and_twice_registered_families_are_refused():
    with pytest.raises(ValueError, match="unknown model family 'diffusion'"):
        families.get("diffusion")
    with pytest.raises(ValueError, match="registered twice"):
        families.register(families.get("gan"))


@pytest.mark.parametrize("name", GENERATIVE)
def test_save_load_strict_and_sample(name, tmp_path):
    m = tiny_model(name)
    m.save_pretrained(tmp_path / "m")
    loaded = aigc.load(str(tmp_path / "m"), device="cpu")
    assert type(loaded) is type(m)
    x = loaded.sample(6, labels=4, seed=1)
    assert x.shape == (6, 1, 28, 28) and torch.equal(x, m.sample(6, labels=4, seed=1))
    # weights that do not fit the config are an error, never a partial load
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "ch": config["ch"] * 2}))
    with pytest.raises((ValueError, RuntimeError), match="does not fit|size mismatch"):
        aigc.load(str(tmp_path / "m"), device="cpu")


@pytest.mark.parametrize("name", GENERATIVE)
def test_blends_and_codes_where_declared(name):
    f, m = families.get(name), tiny_model(name)
    z = aigc.latent.seed_noise(0, 3, m.z_dim)
    if f.can_blend:   # one-hot class weights are exactly the labels
        torch.testing.assert_close(m.generate(z, torch.eye(10)[[1, 2, 3]]), m.generate(z, [1, 2, 3]),
                                   atol=1e-5, rtol=0)
    if f.can_encode:
        x = m.sample(2, labels=1, seed=0)
        code = m.encode_images(x)
        assert code.shape == (2, m.z_dim) and m.reconstruct(x).shape == x.shape
        torch.testing.assert_close(m.decode_codes(code), m.reconstruct(x))


@pytest.mark.parametrize("name", ALL)
def test_train_one_tiny_epoch_then_resume(name, tmp_path):
    kw = dict(batch_size=32, seed=0, device="cpu", model_kwargs=TINY[name], train_set=synthetic_set(64),
              test_set=synthetic_set(32, seed=1), progress=False)
    Trainer(name, "mnist", tmp_path / "run", **kw).train(1)
    t = Trainer.resume(tmp_path / "run", device="cpu", train_set=synthetic_set(64),
                       test_set=synthetic_set(32, seed=1), progress=False)
    assert t.epoch == 1
    t.train(2)
    assert [r["epoch"] for r in read_jsonl(tmp_path / "run" / "history.jsonl")] == [1, 2]
    assert set(families.get(name).losses) & set(read_jsonl(tmp_path / "run" / "history.jsonl")[-1])
    m = aigc.load(str(tmp_path / "run"), device="cpu")
    assert m.family == name
