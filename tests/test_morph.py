import pytest
import torch

from aigc import latent
from aigc.morph import generate_mixed


@pytest.fixture(params=["gan", "vae", "flow"])
def model(request, tiny_gan, tiny_vae, tiny_flow):
    return {"gan": tiny_gan, "vae": tiny_vae, "flow": tiny_flow}[request.param]


def test_one_hot_weights_reproduce_the_model(model):
    # Guards the GAN blend against drifting from Generator.forward.
    z = latent.seed_noise(0, 10, model.z_dim)
    y = torch.arange(10)
    out = generate_mixed(model, z, torch.eye(10)[y])
    torch.testing.assert_close(out, model.generate(z, y), atol=1e-5, rtol=0)


def test_a_blend_lies_between_the_two_classes(model):
    z = latent.seed_noise(1, 1, model.z_dim).expand(5, -1)
    w = latent.class_mix(2, 7, 10, steps=5)
    frames = generate_mixed(model, z, w)                     # (5, 1, 28, 28)
    assert frames.shape == (5, 1, 28, 28)
    torch.testing.assert_close(frames[0], model.generate(z[:1], 2)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(frames[-1], model.generate(z[:1], 7)[0], atol=1e-5, rtol=0)
    mid = frames[2]
    assert not torch.equal(mid, frames[0]) and not torch.equal(mid, frames[-1])
    # each step moves away from a and toward b
    d_a = [(f - frames[0]).abs().mean().item() for f in frames]
    assert d_a == sorted(d_a)


def test_shapes_are_checked(tiny_gan):
    z = torch.zeros(3, tiny_gan.z_dim)
    with pytest.raises(ValueError, match="weights must be float of shape"):
        generate_mixed(tiny_gan, z, torch.zeros(3, 9))
    with pytest.raises(ValueError, match="z must have shape"):
        generate_mixed(tiny_gan, torch.zeros(3, 2), torch.zeros(3, 10))
