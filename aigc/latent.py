"""Pure latent and image math: seeds to noise, paths between latents, grids,
tensor <-> image conversion. No model, no device, no I/O."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

MAX_SEED = 2**63 - 1


def seed_generator(seed: int) -> torch.Generator:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return torch.Generator(device="cpu").manual_seed(int(seed))


def seed_noise(seed: int, n: int, dim: int) -> torch.Tensor:
    """(n, dim) standard normal noise drawn on the CPU, so that a seed means
    the same latents on every device."""
    return torch.randn(n, dim, generator=seed_generator(seed))


def seed_labels(seed: int, n: int, n_classes: int) -> torch.Tensor:
    """(n,) class labels for 'any class'; a stream apart from seed_noise, so
    asking for a class or not leaves the noise of a seed unchanged."""
    g = seed_generator((int(seed) + 0x9E3779B97F4A7C15) % (MAX_SEED + 1))
    return torch.randint(0, n_classes, (n,), generator=g)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a, b: (D,) or (1, D); t: (T,) in [0, 1] -> (T, D)."""
    t = t.reshape(-1, 1).to(a.dtype)
    return a.reshape(1, -1) * (1 - t) + b.reshape(1, -1) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation: (T, D). Walks the great circle between the
    directions of a and b while interpolating their norms linearly, so the
    path stays where Gaussian latents live (a lerp path dips toward 0)."""
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    t = t.reshape(-1, 1).double()
    na, nb = a.norm(), b.norm()
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))
    if omega.abs() < 1e-4:  # nearly parallel: the two paths coincide
        return lerp(a, b, t).float()
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) / so) * ua + (torch.sin(t * omega) / so) * ub
    return (direction * ((1 - t) * na + t * nb)).float()


PATHS = {"linear": lerp, "spherical": slerp}


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, mode: str = "spherical") -> torch.Tensor:
    """steps points from a to b inclusive: (steps, D)."""
    if mode not in PATHS:
        raise ValueError(f"unknown interpolation path {mode!r}; choose one of {sorted(PATHS)}")
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer of at least 2, got {steps!r}")
    return PATHS[mode](a, b, torch.linspace(0.0, 1.0, steps))


def grid(images: torch.Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """(N, 1, H, W) in [0, 1] -> (H', W') grid in [0, 1], nrow images per row."""
    from torchvision.utils import make_grid

    return make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)[0]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float in [0, 1], (H, W) or (1, H, W) -> uint8 (H, W) array."""
    return x.detach().squeeze().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()


def to_pil(x: torch.Tensor, scale: int = 1) -> Image.Image:
    """(H, W) or (1, H, W) in [0, 1] -> grayscale PIL image, upscaled by
    nearest neighbour so pixels stay crisp."""
    img = Image.fromarray(to_uint8(x), mode="L")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def from_uint8(a: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) -> float (1, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(a)).float().div(255.0).unsqueeze(0)


# ---- for the demo: paths between classes, animations, heat maps --------------
def class_mix(a: int, b: int, n_classes: int, steps: int, mode: str = "linear") -> torch.Tensor:
    """Weights (steps, n_classes) that morph class a into class b: the one-hot
    codes of a and b joined by `mode`'s path, each row scaled to sum to 1 so
    the conditioning stays a blend of the two classes (on the spherical path
    that eases in and out)."""
    for c in (a, b):
        if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < n_classes:
            raise ValueError(f"class indices must be integers from 0 to {n_classes - 1}, got {a!r} and {b!r}")
    eye = torch.eye(n_classes)
    w = interpolate(eye[a], eye[b], steps, mode).clamp_min(0)   # (steps, K)
    return w / w.sum(1, keepdim=True)


def bounce(frames: torch.Tensor) -> torch.Tensor:
    """(T, ...) -> (2T - 2, ...): forward, then back without repeating either
    end, so a looping animation plays back and forth without a stutter."""
    return torch.cat([frames, frames.flip(0)[1:-1]])


def heatmap(x: torch.Tensor) -> np.ndarray:
    """(H, W) or (1, H, W) in [0, 1] -> uint8 (H, W, 3) in 'hot' colours:
    black at 0, through red and yellow, to white at 1."""
    x = x.detach().cpu().clamp(0, 1)
    x = x[0] if x.dim() == 3 else x                                     # (H, W)
    rgb = torch.stack([(3 * x).clamp(0, 1), (3 * x - 1).clamp(0, 1), (3 * x - 2).clamp(0, 1)], dim=-1)
    return rgb.mul(255).round().to(torch.uint8).numpy()


def tile_scale(width: int, target: int = 960, max_scale: int = 8) -> int:
    """The integer nearest-neighbour upscale that brings `width` pixels closest
    to `target` without passing it (at least 1, at most max_scale)."""
    return max(1, min(max_scale, target // max(width, 1)))
