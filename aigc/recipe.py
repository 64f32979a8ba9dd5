"""What a training recipe is: the modules and optimizers of one model family,
and one training step. aigc.train's Trainer owns everything else (data,
devices, processes, checkpoints), so a family's module holds its recipe
beside its network (gan.GANRecipe, vae.VAERecipe, flow.FlowRecipe, ...)."""
from __future__ import annotations

import torch


class Recipe:
    """Builds the modules and optimizers of one kind and takes one step.
    modules/optimizers are dicts so the Trainer can save and restore them
    (and, under torchrun, wrap the trained ones in DistributedDataParallel).
    averaged: the modules that are moving averages of others (EMA copies),
    never trained directly and always in eval mode."""

    averaged: tuple[str, ...] = ()

    def __init__(self, classes, dataset, lr, device, model_kwargs):
        self.device = device
        self.modules: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def train_mode(self) -> None:
        """Every module in training mode, but the averages."""
        for name, module in self.modules.items():
            module.train(name not in self.averaged)

    def step(self, x, y, gen) -> dict[str, float]:
        """One step on a batch x (B, 1, 28, 28) in [0, 1], labels y (B,),
        random numbers from gen -> {loss name: value}."""
        raise NotImplementedError

    def serving_model(self, train_set):
        """The model to export after an epoch (may do a little work first)."""
        raise NotImplementedError


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1 - decay)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """An eval-mode copy that takes no gradients: the start of an EMA."""
    import copy

    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema
