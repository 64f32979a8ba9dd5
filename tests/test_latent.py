import math

import numpy as np
import pytest
import torch

from aigc import latent


def test_seed_noise_is_deterministic_and_seed_dependent():
    a = latent.seed_noise(7, 5, 16)
    assert a.shape == (5, 16) and a.device.type == "cpu"
    assert torch.equal(a, latent.seed_noise(7, 5, 16))
    assert not torch.equal(a, latent.seed_noise(8, 5, 16))


def test_seed_labels_do_not_disturb_noise_and_cover_classes():
    labels = latent.seed_labels(3, 1000, 10)
    assert labels.min() == 0 and labels.max() == 9
    assert torch.equal(labels, latent.seed_labels(3, 1000, 10))


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, 2**63])
def test_bad_seed_is_refused(bad):
    with pytest.raises(ValueError, match="seed must be an integer"):
        latent.seed_noise(bad, 2, 2)


def test_lerp_and_slerp_hit_the_endpoints():
    a, b = latent.seed_noise(0, 1, 32)[0], latent.seed_noise(1, 1, 32)[0]
    for mode in ("linear", "spherical"):
        path = latent.interpolate(a, b, 5, mode)
        assert path.shape == (5, 32)
        torch.testing.assert_close(path[0], a, atol=1e-5, rtol=0)
        torch.testing.assert_close(path[-1], b, atol=1e-5, rtol=0)


def test_slerp_keeps_the_norm_where_lerp_shrinks_it():
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([0.0, 1.0])
    mid_s = latent.interpolate(a, b, 3, "spherical")[1]
    mid_l = latent.interpolate(a, b, 3, "linear")[1]
    assert mid_s.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert mid_l.norm().item() == pytest.approx(math.sqrt(0.5), abs=1e-6)


def test_slerp_of_parallel_vectors_is_finite():
    a = torch.ones(8)
    path = latent.interpolate(a, 2 * a, 4, "spherical")
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path[-1], 2 * a)


def test_interpolate_rejects_bad_arguments():
    a = torch.zeros(3)
    with pytest.raises(ValueError, match="steps must be an integer of at least 2"):
        latent.interpolate(a, a, 1)
    with pytest.raises(ValueError, match="unknown interpolation path"):
        latent.interpolate(a, a, 3, "cubic")


def test_grid_and_images():
    x = torch.rand(6, 1, 28, 28)
    g = latent.grid(x, nrow=3, padding=2)
    assert g.shape == (2 * 30 + 2, 3 * 30 + 2)
    img = latent.to_pil(x[0], scale=4)
    assert img.size == (112, 112) and img.mode == "L"
    # nearest-neighbour upscaling: each source pixel becomes a 4x4 block of one value
    arr = torch.from_numpy(np.array(img))
    assert torch.equal(arr[:4, :4], arr[0, 0].expand(4, 4))
    back = latent.from_uint8(latent.to_uint8(x[0]))
    torch.testing.assert_close(back, x[0], atol=1 / 255, rtol=0)


@pytest.mark.parametrize("mode", ["linear", "spherical"])
def test_class_mix_goes_from_one_class_to_the_other(mode):
    w = latent.class_mix(3, 8, 10, steps=5, mode=mode)
    assert w.shape == (5, 10)
    torch.testing.assert_close(w.sum(1), torch.ones(5))               # a blend, never more or less
    assert w[0, 3] == 1 and w[-1, 8] == 1                              # pure a, then pure b
    assert (w[:, 3].diff() < 0).all() and (w[:, 8].diff() > 0).all()   # monotone hand-over
    others = torch.ones(10, dtype=torch.bool)
    others[[3, 8]] = False
    assert w[:, others].abs().max() == 0
    assert w[2, 3].item() == pytest.approx(0.5, abs=1e-6)             # halfway by symmetry


def test_class_mix_rejects_bad_classes():
    with pytest.raises(ValueError, match="class indices"):
        latent.class_mix(3, 10, 10, 4)


def test_bounce_plays_forward_then_back_without_repeating_ends():
    x = torch.arange(5)
    assert latent.bounce(x).tolist() == [0, 1, 2, 3, 4, 3, 2, 1]
    assert latent.bounce(torch.arange(2)).tolist() == [0, 1]


def test_heatmap_colours():
    h = latent.heatmap(torch.tensor([[0.0, 1 / 3, 2 / 3, 1.0]]))
    assert h.shape == (1, 4, 3) and h.dtype == np.uint8
    assert h[0].tolist() == [[0, 0, 0], [255, 0, 0], [255, 255, 0], [255, 255, 255]]


def test_tile_scale():
    assert latent.tile_scale(30) == 8            # one picture: capped at 8x
    assert latent.tile_scale(242) == 3           # an 8x8 grid: 726 px
    assert latent.tile_scale(3002) == 1          # never below 1
