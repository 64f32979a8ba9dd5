"""The flow-matching family: training loss, seeded sampling, the ODE both
ways, guidance, SDEdit."""
import pytest
import torch

from aigc.flow import FlowModel, FlowRecipe, SOLVERS

from .conftest import CLASSES, TINY_FLOW


def test_a_training_step_lowers_the_loss_on_a_fixed_batch(synthetic):
    torch.manual_seed(0)
    recipe = FlowRecipe(CLASSES, "mnist", 3e-3, torch.device("cpu"), TINY_FLOW)
    x, y = synthetic.floats(slice(0, 64)), synthetic.labels[:64]
    ema_before = [p.clone() for p in recipe.modules["flow_ema"].parameters()]

    def loss():
        return recipe.modules["flow"].training_loss(x, y, generator=torch.Generator().manual_seed(0),
                                                     label_dropout=0.0).item()
    before = loss()
    for _ in range(20):
        logs = recipe.step(x, y, torch.Generator().manual_seed(1))
    assert set(logs) == {"loss"} and loss() < 0.8 * before
    # the EMA follows the live weights, slowly
    moved = [not torch.equal(a, b) for a, b in zip(ema_before, recipe.modules["flow_ema"].parameters())]
    assert any(moved)
    assert recipe.serving_model(None) is recipe.modules["flow_ema"]


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_seed_gives_the_same_images(tiny_flow, solver):
    a = tiny_flow.sample(6, labels=2, seed=7, steps=3, solver=solver)
    assert a.shape == (6, 1, 28, 28) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, tiny_flow.sample(6, labels=2, seed=7, steps=3, solver=solver))
    assert not torch.equal(a, tiny_flow.sample(6, labels=2, seed=8, steps=3, solver=solver))


def test_image_to_noise_to_image_round_trips(tiny_flow):
    x = tiny_flow.sample(4, labels=[0, 1, 2, 3], seed=0, guidance=1.0)
    z = tiny_flow.invert(x, [0, 1, 2, 3], steps=40, solver="heun")
    assert z.shape == (4, 28 * 28)
    back = tiny_flow.generate(z, [0, 1, 2, 3], steps=40, solver="heun", guidance=1.0)
    err = (back - x).abs().mean().item()
    moved = (z.view(4, 1, 28, 28) - (x * 2 - 1)).abs().mean().item()
    assert err < 0.01 and moved > 0.1   # the noise is far from the image, and the way back finds it


def test_guidance_zero_ignores_the_class_and_other_guidance_does_not(tiny_flow):
    a = tiny_flow.sample(3, labels=1, seed=0, guidance=0.0, steps=2)
    torch.testing.assert_close(a, tiny_flow.sample(3, labels=5, seed=0, guidance=0.0, steps=2))
    assert not torch.equal(tiny_flow.sample(3, labels=1, seed=0, guidance=2.0, steps=2),
                           tiny_flow.sample(3, labels=5, seed=0, guidance=2.0, steps=2))


def test_guided_batches_equal_single_images(tiny_flow):
    # conditional and unconditional passes share one batch: no image may depend on another
    z = torch.randn(5, 784, generator=torch.Generator().manual_seed(0))
    full = tiny_flow.generate(z, [0, 1, 2, 3, 4], guidance=3.0)
    torch.testing.assert_close(full[1:2], tiny_flow.generate(z[1:2], [1], guidance=3.0), atol=1e-5, rtol=0)


def test_the_path_runs_from_noise_to_the_picture(tiny_flow):
    z = torch.randn(2, 784, generator=torch.Generator().manual_seed(0))
    x, path = tiny_flow.generate(z, [3, 4], steps=5, return_path=True)
    assert path.shape == (6, 2, 1, 28, 28)
    torch.testing.assert_close(path[-1], x)
    torch.testing.assert_close(path[0], (z.view(2, 1, 28, 28) + 1).div(2).clamp(0, 1))


def test_edit_keeps_a_light_edit_close_and_a_full_one_free(tiny_flow):
    x = tiny_flow.sample(2, labels=7, seed=1)
    light = tiny_flow.edit(x, 7, strength=0.1, seed=0)
    full = tiny_flow.edit(x, 7, strength=1.0, seed=0)
    assert (light - x).abs().mean() < (full - x).abs().mean()
    torch.testing.assert_close(full, tiny_flow.sample(2, labels=7, seed=0))   # strength 1: the seed's own sample


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps must be a whole number from 1"),
    ({"steps": 2.5}, "steps must be a whole number"),
    ({"guidance": float("nan")}, "guidance must be a number from 0"),
    ({"guidance": -1}, "guidance must be a number from 0"),
    ({"solver": "rk45"}, "unknown solver"),
])
def test_bad_sampler_settings(tiny_flow, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_flow.sample(2, labels=1, **kwargs)


def test_bad_edit_strength(tiny_flow):
    x = torch.zeros(1, 1, 28, 28)
    for s in (0, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="strength must be"):
            tiny_flow.edit(x, 1, strength=s)


def test_sampler_defaults_travel_with_the_weights(tmp_path):
    import aigc

    f = FlowModel(classes=CLASSES, dataset="mnist", **TINY_FLOW)
    f.set_objective(default_steps=3, default_guidance=1.5, default_solver="heun", guidance_interval=(0.2, 0.7))
    f.save_pretrained(tmp_path / "f")
    g = aigc.load(str(tmp_path / "f"), device="cpu")
    assert (g.default_steps, g.default_guidance, g.default_solver) == (3, 1.5, "heun")
    assert g.guidance_interval == (0.2, 0.7)


def test_guidance_acts_only_inside_its_interval(tiny_flow):
    f = tiny_flow
    plain = f.sample(4, labels=2, seed=0, steps=4, solver="euler", guidance=1.0)
    guided = f.sample(4, labels=2, seed=0, steps=4, solver="euler", guidance=3.0)
    assert not torch.allclose(plain, guided)
    f.set_objective(default_steps=4, default_guidance=3.0, default_solver="euler", guidance_interval=(0.9, 1.0))
    # Euler at 4 steps evaluates t = 0, .25, .5, .75: none inside (0.9, 1), so no guidance at all
    torch.testing.assert_close(f.sample(4, labels=2, seed=0), plain)
    f.set_objective(default_steps=4, default_guidance=3.0, default_solver="euler", guidance_interval=(0.4, 0.6))
    partly = f.sample(4, labels=2, seed=0)
    assert not torch.allclose(partly, plain) and not torch.allclose(partly, guided)
    with pytest.raises(ValueError, match="guidance_interval"):
        f.set_objective(default_steps=4, default_guidance=3.0, default_solver="euler", guidance_interval=(0.7, 0.2))
