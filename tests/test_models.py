import pytest
import torch

import aigc
from aigc.gan import Discriminator
from aigc.model import MAX_SAMPLES
from aigc.vae import VAE

from .conftest import CLASSES, TINY_VAE


@pytest.fixture(params=["gan", "vae", "flow"])
def model(request, tiny_gan, tiny_vae, tiny_flow):
    return {"gan": tiny_gan, "vae": tiny_vae, "flow": tiny_flow}[request.param]


def test_sample_shape_range_and_dtype(model):
    x = model.sample(n=12, labels=3, seed=0)
    assert x.shape == (12, 1, 28, 28) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert x.min() >= 0 and x.max() <= 1


def test_same_seed_same_images_other_seed_other_images(model):
    a = model.sample(n=8, labels=None, seed=5)
    assert torch.equal(a, model.sample(n=8, labels=None, seed=5))
    assert not torch.equal(a, model.sample(n=8, labels=None, seed=6))


def test_labels_steer_the_output(model):
    assert not torch.equal(model.sample(4, labels=1, seed=0), model.sample(4, labels=2, seed=0))
    per_image = model.sample(3, labels=[1, 2, 3], seed=0)
    assert per_image.shape == (3, 1, 28, 28)


def test_sampling_does_not_depend_on_the_batch(model):
    # BatchNorm in eval mode: an image does not change with the others drawn beside it.
    z = torch.randn(6, model.z_dim, generator=torch.Generator().manual_seed(0))
    y = torch.arange(6)
    torch.testing.assert_close(model.generate(z, y)[:2], model.generate(z[:2], y[:2]))


@pytest.mark.parametrize("n", [0, -1, MAX_SAMPLES + 1, 2.0, True])
def test_bad_n(model, n):
    with pytest.raises(ValueError, match=f"n must be an integer from 1 to {MAX_SAMPLES}"):
        model.sample(n=n)


@pytest.mark.parametrize("labels, message", [
    (10, "labels must be class indices from 0 to 9"),
    (-1, "labels must be class indices from 0 to 9"),
    ([1, 2], "got 2 labels for n=4"),
    ("3", "labels must be an int"),
    ([0.5] * 4, "labels must be an int"),
])
def test_bad_labels(model, labels, message):
    with pytest.raises((ValueError, TypeError), match=message):
        model.sample(n=4, labels=labels)


def test_bad_temperature(model):
    with pytest.raises(ValueError, match="temperature must be"):
        model.sample(n=2, temperature=0)


def test_class_index_by_name(tiny_gan):
    assert tiny_gan.class_index("7") == 7 and tiny_gan.class_index(2) == 2
    with pytest.raises(ValueError, match="unknown class"):
        tiny_gan.class_index("cat")


def test_save_then_load_gives_identical_samples(model, tmp_path):
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = aigc.load(str(tmp_path / "m"), device="cpu")
    assert type(loaded) is type(model) and loaded.classes == CLASSES
    assert loaded.source == f"local:{tmp_path / 'm'}"
    assert torch.equal(loaded.sample(8, labels=None, seed=3), model.sample(8, labels=None, seed=3))


def test_loading_is_strict(tiny_vae, tmp_path):
    tiny_vae.save_pretrained(tmp_path / "m")
    # a config that does not match the weights must not load silently
    cfg = (tmp_path / "m" / "config.json").read_text().replace('"hidden": 16', '"hidden": 17')
    (tmp_path / "m" / "config.json").write_text(cfg)
    with pytest.raises(ValueError, match=r"model.safetensors does not fit .*config.json: wrong shapes: decoder"):
        aigc.load(str(tmp_path / "m"), device="cpu")


def test_no_pickle_is_ever_read(tiny_gan, tmp_path):
    tiny_gan.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    torch.save(tiny_gan.state_dict(), tmp_path / "m" / "pytorch_model.bin")
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        aigc.load(str(tmp_path / "m"), device="cpu")


def test_unknown_name_says_what_is_allowed():
    with pytest.raises(ValueError, match="gan-mnist, gan-fashion, vae-mnist, vae-fashion"):
        aigc.load("gan-cifar")


def test_vae_reconstruct_and_its_checks(tiny_vae):
    x = torch.rand(5, 1, 28, 28)
    r = tiny_vae.reconstruct(x)
    assert r.shape == x.shape and r.min() >= 0 and r.max() <= 1
    assert torch.equal(r, tiny_vae.reconstruct(x))  # decodes the posterior mean: no noise
    with pytest.raises(ValueError, match=r"shape \(n, 1, 28, 28\)"):
        tiny_vae.reconstruct(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="within \\[0, 1\\]"):
        tiny_vae.reconstruct(torch.full((1, 1, 28, 28), 2.0))
    with pytest.raises(TypeError, match="torch.Tensor"):
        tiny_vae.reconstruct([[0.0]])


def test_iw_bound_is_below_the_elbo_and_tightens():
    torch.manual_seed(0)
    vae = VAE(classes=CLASSES, **TINY_VAE).eval()
    x = torch.bernoulli(torch.rand(16, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        nelbo = torch.stack([vae(x, generator=g)[0] for _ in range(200)]).mean(0)  # MC estimate of -ELBO
    nll_1 = vae.iw_nll(x, 1, generator=g).mean()
    nll_50 = vae.iw_nll(x, 50, generator=g).mean()
    nll_500 = vae.iw_nll(x, 500, generator=g).mean()
    assert nll_1 == pytest.approx(nelbo.mean().item(), rel=0.02)
    assert nll_500 <= nll_50 <= nelbo.mean()


def test_iw_bound_does_not_depend_on_how_the_draws_are_batched():
    # log_weights decodes ~`rows` draws per pass (for speed); any pass size,
    # down to one draw per pass, must give all k draws and the same bound.
    torch.manual_seed(0)
    vae = VAE(classes=CLASSES, **TINY_VAE).eval()
    x = torch.bernoulli(torch.rand(6, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    bounds = []
    for rows in (1, 7, 10**6):
        with torch.no_grad():
            log_px, log_ratio = vae.log_weights(x, 300, rows=rows, generator=torch.Generator().manual_seed(rows))
        assert log_px.shape == log_ratio.shape == (300, 6)
        bounds.append(vae.iw_bound(log_px, log_ratio))
    for b in bounds[1:]:
        assert torch.allclose(b, bounds[0], rtol=0.01)


def test_class_prior_fit_moves_class_means(tiny_vae, synthetic):
    tiny_vae.fit_class_prior(synthetic.floats(), synthetic.labels)
    assert not torch.allclose(tiny_vae.class_mean[0], tiny_vae.class_mean[5])
    assert (tiny_vae.class_std > 0).all()


def test_discriminator_uses_the_class():
    torch.manual_seed(0)
    D = Discriminator(n_classes=10, ch=4)
    x = torch.rand(2, 1, 28, 28)
    assert D(x, torch.tensor([0, 0])).shape == (2,)
    assert not torch.allclose(D(x, torch.tensor([0, 0])), D(x, torch.tensor([1, 1])))


def test_iw_training_objective_is_tighter_than_the_elbo_and_trains():
    torch.manual_seed(0)
    vae = VAE(classes=CLASSES, iw_samples=4, **TINY_VAE)
    x = torch.bernoulli(torch.rand(8, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    loss, logs = vae.training_loss(x, generator=torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(logs["iw_bound"]) and logs["iw_bound"] <= logs["loss"]
    assert logs["loss"] == pytest.approx(logs["rec"] + logs["kl"], rel=1e-5)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in vae.parameters() if p.grad is not None)
    assert vae.decoder[0].weight.grad.abs().sum() > 0 and vae.encoder[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="iw_samples must be a whole number >= 1"):
        VAE(classes=CLASSES, iw_samples=0, **TINY_VAE)
    with pytest.raises(ValueError, match="applies to the ELBO"):
        VAE(classes=CLASSES, iw_samples=4, kl_weight=0.5, **TINY_VAE)
