"""The flow-matching family: training loss, seeded sampling, the ODE both
ways, guidance, SDEdit."""
import pytest
import torch

import aigc
from aigc import latent
from aigc.data import class_names
from aigc.flow import SOLVERS, FlowModel, FlowRecipe, to_unit

from .conftest import CLASSES, TINY_FLOW, synthetic_set


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


# ---- the critic: redraw the pictures whose class it doubts -------------------------------------
def critic_model(candidates: int = 4, threshold: float = 0.5, seed: int = 0) -> FlowModel:
    torch.manual_seed(seed)
    m = FlowModel(classes=class_names("mnist"), dataset="mnist", **TINY_FLOW, critic_ch=4,
                  critic_candidates=candidates, critic_threshold=threshold).eval()
    with torch.no_grad():   # as training would: the zero-initialised output layers come alive
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    s = synthetic_set(seed=0)
    m.fit_critic(s.floats(), s.labels, epochs=3)
    return m


def test_the_critic_redraws_doubted_pictures_and_keeps_their_best_draw():
    m = critic_model()
    assert bool(m.critic_fitted)
    y = torch.arange(10).repeat(4)                                    # (40,)
    m.set_objective(**{**{k: getattr(m, k) for k in FlowModel.OBJECTIVE_ARGS}, "critic_candidates": 1})
    first = m.sample(40, y, seed=3, steps=2)
    with torch.no_grad():
        before = m.critic_scores(first * 2 - 1, y)
    threshold = float(before.median())    # a tiny model's pictures: half of them doubted
    m.set_objective(**{**{k: getattr(m, k) for k in FlowModel.OBJECTIVE_ARGS}, "critic_candidates": 4,
                       "critic_threshold": threshold})
    picked = m.sample(40, y, seed=3, steps=2)
    with torch.no_grad():
        after = m.critic_scores(picked * 2 - 1, y)
    kept = before >= threshold
    assert kept.any() and (~kept).any(), "the test needs both doubted and trusted pictures"
    assert torch.equal(picked[kept], first[kept])                     # trusted: left as they were
    assert not torch.equal(picked[~kept], first[~kept])               # doubted: some drawn again
    assert (after >= before - 1e-6).all() and after[~kept].mean() > before[~kept].mean()
    assert torch.equal(picked, m.sample(40, y, seed=3, steps=2))      # still one picture per seed


def test_the_critic_leaves_guidance_0_blends_and_paths_consistent():
    m = critic_model()
    y = torch.arange(10).repeat(2)
    off = FlowModel(**{**m._hub_mixin_config, "critic_candidates": 1}).eval()
    off.load_state_dict(m.state_dict())
    # guidance 0 ignores the class: nothing to judge
    assert torch.equal(m.sample(20, y, seed=1, steps=2, guidance=0.0), off.sample(20, y, seed=1, steps=2, guidance=0.0))
    # the path's last state is the picture drawn, redrawn rows included
    z = latent.seed_noise(1, 20, 784)
    x, path = m.generate(z, y, steps=2, return_path=True)
    assert path.shape == (3, 20, 1, 28, 28) and torch.equal(path[-1], x) and torch.equal(x, m.generate(z, y, steps=2))
    redrawn = (x != off.generate(z, y, steps=2)).flatten(1).any(1)    # (20,)
    start = to_unit(z.view(-1, 1, 28, 28))
    assert redrawn.any() and torch.equal(path[0][~redrawn], start[~redrawn])
    assert (path[0][redrawn] != start[redrawn]).flatten(1).any(1).all()   # a redrawn row starts from other noise


def test_a_critic_is_saved_and_loaded_with_the_model(tmp_path):
    m = critic_model()
    m.save_pretrained(tmp_path / "c")
    back = aigc.load_folder(tmp_path / "c", device="cpu")
    assert back.critic_ch == 4 and back.critic_candidates == 4 and bool(back.critic_fitted)
    y = torch.arange(10).repeat(2)
    assert torch.equal(back.sample(20, y, seed=5, steps=2), m.sample(20, y, seed=5, steps=2))


@pytest.mark.parametrize("kwargs, match", [({"critic_candidates": 2}, "needs a critic"),
                                           ({"critic_ch": 4, "critic_candidates": 0}, "critic_candidates"),
                                           ({"critic_ch": 4, "critic_threshold": 1.0}, "critic_threshold"),
                                           ({"critic_ch": -1}, "critic_ch")])
def test_bad_critic_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FlowModel(classes=class_names("mnist"), **TINY_FLOW, **kwargs)


def test_training_fits_the_critic_once_and_the_average_keeps_it():
    from aigc.flow import FlowRecipe

    s = synthetic_set(seed=0)
    r = FlowRecipe(class_names("mnist"), "mnist", 1e-3, torch.device("cpu"),
                   {**TINY_FLOW, "critic_ch": 4, "critic_candidates": 2})
    model = r.serving_model(s)
    fitted = {k: v.clone() for k, v in model.critic.state_dict().items()}
    assert bool(model.critic_fitted)
    r.train_mode()
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        r.step(s.floats()[:16], s.labels[:16], g)
    again = r.serving_model(s)
    assert all(torch.equal(again.critic.state_dict()[k], v) for k, v in fitted.items())
    assert all(p.grad is None for p in r.modules["flow"].critic.parameters())


def test_a_trained_model_gets_a_critic_without_changing_its_network(tiny_flow):
    from aigc.flow import with_critic

    plain = tiny_flow
    m = with_critic(plain, critic_ch=4, candidates=3, threshold=0.4)
    assert m.critic_ch == 4 and m.critic_candidates == 3 and not bool(m.critic_fitted)
    z, y = latent.seed_noise(2, 6, 784), torch.arange(6)
    assert torch.equal(m.generate(z, y, guidance=0.0, steps=2), plain.generate(z, y, guidance=0.0, steps=2))
    assert {k: v for k, v in m.state_dict().items() if not k.startswith("critic")}.keys() == plain.state_dict().keys()


def test_fitting_the_critic_depends_on_the_seed_alone():
    s = synthetic_set(seed=0)
    a, b = critic_model(), critic_model(seed=1)     # other global random state before fitting
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("critic")}, strict=False)
    torch.manual_seed(123)
    a.fit_critic(s.floats(), s.labels, epochs=1)
    b.fit_critic(s.floats(), s.labels, epochs=1)
    assert all(torch.equal(p, q) for p, q in zip(a.critic.parameters(), b.critic.parameters()))
