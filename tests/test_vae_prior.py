"""The VAE's class prior: a diagonal Gaussian per class (checkpoints from
before prior_components) or a full-covariance Gaussian mixture per class."""
import pytest
import torch

import aigc
from aigc.vae import VAE, fit_gmm, with_prior_components

from .conftest import CLASSES, TINY_VAE, synthetic_set


def test_fit_gmm_recovers_two_separated_clusters():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(300, 3, generator=g) * 0.5 + 4, torch.randn(900, 3, generator=g) - 4])
    w, mean, chol = fit_gmm(x, 2)
    torch.testing.assert_close(w, torch.tensor([0.75, 0.25]), atol=1e-3, rtol=0)
    torch.testing.assert_close(mean, torch.tensor([[-4.0] * 3, [4.0] * 3]), atol=0.2, rtol=0)
    torch.testing.assert_close(chol.diagonal(dim1=1, dim2=2), torch.tensor([[1.0] * 3, [0.5] * 3]), atol=0.1, rtol=0)


def test_mixture_codes_are_exact_draws_from_the_mixture():
    v = VAE(classes=CLASSES, prior_components=2, **TINY_VAE)
    with torch.no_grad():
        v.prior_weight[3] = torch.tensor([0.25, 0.75])
        v.prior_mean[3] = torch.tensor([[10.0] * 4, [-10.0] * 4])
        v.prior_scale[3] = torch.stack([torch.eye(4), 2 * torch.eye(4)])
    z = torch.randn(20_000, 4, generator=torch.Generator().manual_seed(0))
    codes = v.mixture_codes(z, torch.full((20_000,), 3))
    upper = codes[:, 0] > 0
    assert upper.float().mean().item() == pytest.approx(0.25, abs=0.01)
    for part, std, mean in ((codes[upper], 1.0, 10.0), (codes[~upper], 2.0, -10.0)):
        torch.testing.assert_close(part.std(0), torch.full((4,), std), atol=0.06 * std, rtol=0)
        torch.testing.assert_close(part.mean(0), torch.full((4,), mean), atol=0.1, rtol=0)


def test_mixture_prior_saves_loads_strictly_and_steers_samples(tmp_path):
    torch.manual_seed(0)
    data = synthetic_set()
    v = VAE(classes=CLASSES, dataset="mnist", prior_components=2, **TINY_VAE).eval()
    v.fit_class_prior(data.floats(), data.labels)
    v.save_pretrained(tmp_path / "m")
    back = aigc.load_folder(tmp_path / "m", device="cpu")
    assert back.prior_components == 2 and torch.equal(back.prior_mean, v.prior_mean)
    a = back.sample(n=6, labels=2, seed=1)
    assert torch.equal(a, v.sample(n=6, labels=2, seed=1)) and not torch.equal(a, v.sample(n=6, labels=7, seed=1))
    assert back.sample(n=6, labels=None, seed=1).shape == (6, 1, 28, 28)     # unconditional: N(0, I), as before


def test_a_checkpoint_without_prior_components_loads_unchanged(tmp_path, tiny_vae):
    tiny_vae.save_pretrained(tmp_path / "old")
    assert "prior_components" not in (tmp_path / "old" / "config.json").read_text() or \
        '"prior_components": 0' in (tmp_path / "old" / "config.json").read_text()
    back = aigc.load_folder(tmp_path / "old", device="cpu")
    assert back.prior_components == 0 and not any(k.startswith("prior_") for k in back.state_dict())
    torch.testing.assert_close(back.sample(n=4, labels=5, seed=0), tiny_vae.sample(n=4, labels=5, seed=0))
    refit = with_prior_components(back, 3)
    assert torch.equal(refit.decoder[0].weight, back.decoder[0].weight) and refit.prior_mean.shape == (10, 3, 4)
    with pytest.raises(ValueError, match="prior_components must be a whole number"):
        VAE(classes=CLASSES, prior_components=-1, **TINY_VAE)


def test_doubtful_draws_are_drawn_again(tmp_path):
    """prior_candidates: a class-guided code whose class the classifier of codes
    gives less than prior_threshold is drawn again (the first that passes is
    kept; none: the likeliest); a seed still names one picture, and the
    setting travels with the weights."""
    v = VAE(classes=CLASSES, prior_components=0, prior_candidates=8, prior_threshold=0.5, **TINY_VAE)
    with torch.no_grad():   # ten overlapping unit Gaussians in code space
        v.class_mean.copy_(torch.eye(10, 4) * 3.0)
        v.class_std.fill_(1.0)
    g = torch.Generator().manual_seed(1)
    y = torch.arange(10).repeat_interleave(300)
    v.fit_code_classifier(v.class_mean[y] + torch.randn(3000, 4, generator=g), y)
    z = torch.randn(2000, 4, generator=torch.Generator().manual_seed(2))
    labels = torch.full((2000,), 1)
    plain = v.class_mean[labels] + z
    kept = v.class_codes(z, labels)
    p_plain, p_kept = v.code_log_probs(plain)[:, 1].exp(), v.code_log_probs(kept)[:, 1].exp()
    doubtful, still = (p_plain < 0.5).float().mean(), (p_kept < 0.5).float().mean()
    assert doubtful > 0.1 and still < doubtful / 5, (doubtful, still)   # the doubtful are redrawn
    first_pass = p_plain >= 0.5
    torch.testing.assert_close(kept[first_pass], plain[first_pass])   # a draw that passes is kept as it is
    torch.testing.assert_close(v.class_codes(z, labels), kept)         # deterministic
    v.save_pretrained(tmp_path / "v")
    w = aigc.load(str(tmp_path / "v"), device="cpu")
    assert (w.prior_candidates, w.prior_threshold) == (8, 0.5)
    torch.testing.assert_close(w.sample(6, labels=1, seed=3), v.sample(6, labels=1, seed=3))
    one = VAE(classes=CLASSES, prior_components=0, **TINY_VAE)
    one.load_state_dict({k: t for k, t in v.state_dict().items() if not k.startswith(("prior_clf", "prior_rot"))})
    torch.testing.assert_close(one.class_codes(z, labels), plain)      # prior_candidates 1: plain draws
    with pytest.raises(ValueError, match="prior_candidates"):
        VAE(classes=CLASSES, prior_candidates=0, **TINY_VAE)
    with pytest.raises(ValueError, match="prior_threshold"):
        VAE(classes=CLASSES, prior_candidates=2, prior_threshold=1.0, **TINY_VAE)
