"""Class-conditional flow matching (rectified flow; Lipman et al. 2023, Liu
et al. 2023) for 28x28 grayscale images: a small UNet that predicts the
velocity v(x_t, t, y) along straight paths from noise to data, and ODE
samplers (Euler, midpoint, Heun) with classifier-free guidance.

Conventions: t runs from 0 (pure noise x_0 ~ N(0, I)) to 1 (data x_1 in
[-1, 1]); x_t = (1 - t) x_0 + t x_1, so the target velocity is x_1 - x_0.
The class input is an index (B,), the "no class" index K for the
unconditional model trained by label dropout, or weights (B, K) over the
classes for blends. Guidance w: v = v_uncond + w (v_cond - v_uncond);
w = 1 is the plain conditional model, w = 0 ignores the class.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import latent
from .model import GenerativeModel, Labels, check_images, check_redraws, rebuilt
from .recipe import Recipe, ema_update, frozen_copy

SOLVERS = ("euler", "midpoint", "heun")
MAX_STEPS = 100     # per call: more buys nothing visible at 28x28
MAX_GUIDANCE = 10.0
ROUND_TRIP_STEPS = 16   # image -> noise -> image: more steps than sampling, the error is the solver's
MAX_CANDIDATES = 8      # draws per picture with a critic (critic_candidates)
REDRAW_SEED = 1000      # redraw j's noise: the first noise permuted and sign-flipped by a fixed draw of seed 1000 + j


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t (B,) in [0, 1] -> sinusoidal features (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None, :]              # (B, half)
    return torch.cat([args.sin(), args.cos()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice; the embedding (time + class) sets a
    per-channel scale and shift after the first conv."""

    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(min(8, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)   # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)  # (B, cout, 1, 1) each
        h = F.silu(self.norm2(h) * (1 + scale) + shift)
        return self.skip(x) + self.conv2(h)


class Attention(nn.Module):
    """Self-attention over the 7x7 positions of the bottleneck: cheap (49
    tokens) and lets the whole glyph agree on one shape."""

    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(min(8, ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.out = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W).unbind(1)
        h = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(h.transpose(-1, -2).reshape(B, C, H, W))


class Critic(nn.Module):
    """A small classifier of finished pictures, (B, 1, 28, 28) in [0, 1] ->
    class logits (B, K), fitted on the real training images (fit_critic).
    It is the flow model's own, never the evaluation classifier, and it only
    decides which of a picture's draws to keep."""

    def __init__(self, classes: int, ch: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, ch, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),           # (B, ch, 14, 14)
                                 nn.Conv2d(ch, 2 * ch, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2),      # (B, 2ch, 7, 7)
                                 nn.Flatten(), nn.Linear(2 * ch * 49, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def redraw_noise(z: torch.Tensor, j: int) -> torch.Tensor:
    """Noise (n, 784) -> the noise of redraw j (n, 784): its entries permuted
    and sign-flipped by a fixed draw. An orthogonal map, so N(0, I) again,
    and made from z alone: a seed still gives one picture."""
    g = torch.Generator().manual_seed(REDRAW_SEED + j)
    perm = torch.randperm(z.shape[1], generator=g)
    sign = torch.randint(0, 2, (z.shape[1],), generator=g).to(z.dtype) * 2 - 1
    return z[:, perm.to(z.device)] * sign.to(z.device)


class FlowModel(GenerativeModel, library_name="aigc", tags=["flow-matching", "aigc"]):
    """x_t (B, 1, 28, 28), t (B,), class y -> velocity (B, 1, 28, 28).

    The image enters as 2x2 pixel patches (pixel-unshuffle, 14x14 with 4
    channels) and leaves the same way: the UNet works at 14x14 and 7x7 only,
    which on a CPU is about 4x cheaper per pass than a 28x28 first level,
    at the same width. Levels: 14x14 (ch), 7x7 (2ch) with attention."""

    family = "flow"

    def __init__(self, *, classes: list[str], dataset: str = "", ch: int = 48, emb_dim: int = 128,
                 blocks: int = 2, default_steps: int = 4, default_guidance: float = 2.0,
                 default_solver: str = "midpoint", guidance_interval: tuple[float, float] = (0.0, 1.0),
                 critic_ch: int = 0, critic_candidates: int = 1, critic_threshold: float = 0.5):
        super().__init__(classes=classes, dataset=dataset, z_dim=28 * 28)
        self.ch, self.emb_dim, self.blocks = ch, emb_dim, blocks
        k = len(classes)
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(k + 1, emb_dim)          # row k: "no class" (label dropout)
        self.inp = nn.Conv2d(4, ch, 3, padding=1)               # (B, ch, 14, 14)
        self.down1 = nn.ModuleList([ResBlock(ch, ch, emb_dim) for _ in range(blocks)])
        self.pool = nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1)   # (B, 2ch, 7, 7)
        self.mid = nn.ModuleList([ResBlock(2 * ch, 2 * ch, emb_dim) for _ in range(blocks)])
        self.attn = Attention(2 * ch)
        self.mid2 = ResBlock(2 * ch, 2 * ch, emb_dim)
        self.unpool = nn.ConvTranspose2d(2 * ch, ch, 4, stride=2, padding=1)  # (B, ch, 14, 14)
        self.up1 = nn.ModuleList([ResBlock(2 * ch if i == 0 else ch, ch, emb_dim) for i in range(blocks)])
        self.out_norm = nn.GroupNorm(min(8, ch), ch)
        self.out = nn.Conv2d(ch, 4, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # critic_ch > 0: a small classifier of finished pictures (Critic; registered last, so the
        # network's parameters keep their order). With critic_candidates above 1, a class-guided
        # picture it gives less than critic_threshold for its class is
        # drawn again from other noise (redraw_noise), up to critic_candidates draws, keeping the
        # draw it rates highest: rejection sampling, so the class can hold with less guidance,
        # and less guidance keeps more variety. Never used in training; fitted once (fit_critic).
        if isinstance(critic_ch, bool) or not isinstance(critic_ch, int) or not 0 <= critic_ch <= 256:
            raise ValueError(f"critic_ch must be a whole number from 0 (no critic) to 256, got {critic_ch!r}")
        self.critic_ch = critic_ch
        if critic_ch:
            self.critic = Critic(k, critic_ch).requires_grad_(False)   # no gradient from the flow loss
            self.register_buffer("critic_fitted", torch.zeros((), dtype=torch.bool))
        else:
            self.critic = None
        self.set_objective(default_steps=default_steps, default_guidance=default_guidance,
                           default_solver=default_solver, guidance_interval=guidance_interval,
                           critic_candidates=critic_candidates, critic_threshold=critic_threshold)

    # The sampler's defaults are not part of the network: a resumed run (or a
    # tuning pass after training) may change them.
    # guidance_interval (lo, hi): guidance is applied only at times lo <= t <= hi
    # of the path (t = 0 noise, 1 picture); elsewhere the class-conditional
    # velocity alone, one batch instead of two. Kynkaanniemi et al. 2024
    # ("Applying guidance in a limited interval") found guidance at the
    # noisiest times costs diversity and near the end does little.
    OBJECTIVE_ARGS = ("default_steps", "default_guidance", "default_solver", "guidance_interval",
                      "critic_candidates", "critic_threshold")

    def set_objective(self, *, default_steps: int, default_guidance: float, default_solver: str,
                      guidance_interval=(0.0, 1.0), critic_candidates: int = 1, critic_threshold: float = 0.5) -> None:
        self.check_sampler(default_steps, default_guidance, default_solver)
        critic_candidates, critic_threshold = check_redraws(critic_candidates, critic_threshold, MAX_CANDIDATES, "critic")
        if critic_candidates > 1 and not self.critic_ch:
            raise ValueError("critic_candidates above 1 needs a critic (critic_ch above 0)")
        self.critic_candidates, self.critic_threshold = critic_candidates, critic_threshold
        if not isinstance(guidance_interval, (list, tuple)) or len(guidance_interval) != 2 \
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in guidance_interval) \
                or not 0.0 <= guidance_interval[0] <= guidance_interval[1] <= 1.0:
            raise ValueError(f"guidance_interval must be two numbers lo <= hi in [0, 1], got {guidance_interval!r}")
        self.default_steps, self.default_guidance, self.default_solver = \
            default_steps, float(default_guidance), default_solver
        self.guidance_interval = (float(guidance_interval[0]), float(guidance_interval[1]))
        if self._hub_mixin_config is not None:   # so config.json carries them
            self._hub_mixin_config.update(default_steps=default_steps, default_guidance=float(default_guidance),
                                          default_solver=default_solver,
                                          guidance_interval=list(self.guidance_interval),
                                          critic_candidates=critic_candidates,
                                          critic_threshold=float(critic_threshold))

    @property
    def null_class(self) -> int:
        return len(self.classes)

    def embed(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """t (B,); y (B,) indices (K = no class) or (B, K) / (B, K + 1) weights
        over the classes (and "no class") -> (B, emb_dim)."""
        if y.dim() == 2:
            table = self.class_emb.weight                                  # (K + 1, emb_dim)
            c = y.to(table.dtype) @ table[:y.shape[1]]
        else:
            c = self.class_emb(y)
        return self.time_mlp(timestep_embedding(t, self.emb_dim)) + c

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        emb = self.embed(t, y)                                   # (B, emb_dim)
        h = self.inp(F.pixel_unshuffle(x, 2))                    # (B, ch, 14, 14)
        for block in self.down1:
            h = block(h, emb)
        skip = h
        h = self.pool(h)                                         # (B, 2ch, 7, 7)
        for block in self.mid:
            h = block(h, emb)
        h = self.mid2(self.attn(h), emb)
        h = torch.cat([self.unpool(h), skip], dim=1)             # (B, 2ch, 14, 14)
        for block in self.up1:
            h = block(h, emb)
        return F.pixel_shuffle(self.out(F.silu(self.out_norm(h))), 2)   # (B, 1, 28, 28)

    # ---- training ----------------------------------------------------------
    def training_loss(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
                      label_dropout: float = 0.1) -> torch.Tensor:
        """Flow-matching loss for a batch x (B, 1, 28, 28) in [0, 1], y (B,):
        mean squared error of the predicted velocity. t is logit-normal
        (Esser et al. 2024), so most steps train mid-path where the velocity
        is hardest to predict; a tenth of the labels become "no class", which
        trains the unconditional model that guidance needs."""
        B, dev = len(x), x.device
        x1 = x * 2 - 1
        x0 = torch.randn(x1.shape, generator=generator, device=dev)
        t = torch.sigmoid(torch.randn(B, generator=generator, device=dev))
        drop = torch.rand(B, generator=generator, device=dev) < label_dropout
        y = torch.where(drop, torch.full_like(y, self.null_class), y)
        tb = t[:, None, None, None]
        xt = (1 - tb) * x0 + tb * x1
        return F.mse_loss(self(xt, t, y).float(), x1 - x0)

    # ---- sampling ----------------------------------------------------------
    @staticmethod
    def check_sampler(steps, guidance, solver) -> None:
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps must be a whole number from 1 to {MAX_STEPS}, got {steps!r}")
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) \
                or not 0.0 <= guidance <= MAX_GUIDANCE:   # also refuses NaN
            raise ValueError(f"guidance must be a number from 0 to {MAX_GUIDANCE}, got {guidance!r}")
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")

    def sampler_args(self, steps=None, guidance=None, solver=None) -> tuple[int, float, str]:
        """The sampler settings, defaults filled in from the config, checked."""
        steps = self.default_steps if steps is None else steps
        guidance = self.default_guidance if guidance is None else guidance
        solver = self.default_solver if solver is None else solver
        self.check_sampler(steps, guidance, solver)
        return steps, float(guidance), solver

    def velocity(self, x: torch.Tensor, t: float, y: torch.Tensor | None, guidance: float) -> torch.Tensor:
        """Guided velocity at time t: x (B, 1, 28, 28); y (B,) indices, (B, K)
        weights or None (no class). With guidance other than 0 and 1, the
        conditional and unconditional passes go through the network as one
        batch of 2B (one pass of twice the rows costs less than two)."""
        B = len(x)
        tt = torch.full((B,), float(t), device=x.device)
        null = torch.full((B,), self.null_class, device=x.device, dtype=torch.long)
        if y is None or guidance == 0.0:
            return self(x, tt, null)
        lo, hi = self.guidance_interval
        if guidance == 1.0 or not lo <= t <= hi:
            return self(x, tt, y)
        if y.dim() == 2:   # weights: "no class" is a one-hot over K + 1
            y = torch.cat([F.pad(y, (0, 1)), F.one_hot(null, self.null_class + 1).to(y.dtype)])
        else:
            y = torch.cat([y, null])
        v_c, v_u = self(torch.cat([x, x]), torch.cat([tt, tt]), y).chunk(2)
        return v_u + guidance * (v_c - v_u)

    def integrate(self, x: torch.Tensor, y: torch.Tensor | None, *, t0: float = 0.0, t1: float = 1.0,
                  steps: int, guidance: float, solver: str, path: list | None = None) -> torch.Tensor:
        """Solve dx/dt = v(x, t, y) from t0 to t1 (t1 < t0 runs backwards,
        image -> noise) in `steps` equal steps. x (B, 1, 28, 28) on the
        model's device; appends each step's x to `path` when given."""
        h = (t1 - t0) / steps
        for i in range(steps):
            t = t0 + i * h
            v = self.velocity(x, t, y, guidance)
            if solver == "euler":
                x = x + h * v
            elif solver == "midpoint":
                x = x + h * self.velocity(x + 0.5 * h * v, t + 0.5 * h, y, guidance)
            else:   # heun: the trapezoid rule, corrected by the velocity at the step's end
                v2 = self.velocity(x + h * v, t + h, y, guidance)
                x = x + 0.5 * h * (v + v2)
            if path is not None:
                path.append(x)
        return x

    def critic_scores(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The critic's probability of class y (B,) for pictures x (B, 1, 28, 28)
        in model space [-1, 1] -> (B,)."""
        logits = self.critic(to_unit(x).to(self.device))                          # (B, K)
        return logits.float().softmax(1).gather(1, y[:, None]).squeeze(1)

    def _redraw_doubtful(self, z, x, y, path, **sampler):
        """Draws again the pictures of x (n, 1, 28, 28) whose class y (n,) the
        critic doubts, from redraw_noise(z, j), j = 1 .. candidates - 1, and
        keeps each row's best-rated draw; `path` (steps + 1 states) follows."""
        z = z.to(self.device, torch.float32)
        best = self.critic_scores(x, y)                                             # (n,)
        for j in range(1, self.critic_candidates):
            rows = (best < self.critic_threshold).nonzero().flatten()
            if not len(rows):
                break
            x0 = redraw_noise(z[rows], j).view(-1, 1, 28, 28)
            steps_j = [x0] if path is not None else None
            xj = self.integrate(x0, y[rows], path=steps_j, **sampler)
            score = self.critic_scores(xj, y[rows])
            better = score > best[rows]
            rows, xj = rows[better], xj[better]
            x[rows], best[rows] = xj, score[better]             # x and best are this call's own tensors
            if path is not None:
                path = [p.clone().index_put_((rows,), q[better]) for p, q in zip(path, steps_j)]
        return x, path

    @torch.no_grad()
    def fit_critic(self, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 2, batch: int = 128,
                   lr: float = 2e-3, seed: int = 0) -> float:
        """Fits the critic on real pictures x (N, 1, 28, 28) in [0, 1] with
        classes y (N,) -> its accuracy on them at the end. Seeded; on the
        model's device; the rest of the model is untouched."""
        if self.critic is None:
            raise ValueError("this model has no critic (critic_ch is 0)")
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):   # a fresh start from the seed alone: the same critic every time
            torch.manual_seed(seed)
            for layer in self.critic.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
        y = torch.as_tensor(y, dtype=torch.long)
        opt = torch.optim.Adam(self.critic.parameters(), lr=lr)
        was_training = self.critic.training
        self.critic.train().requires_grad_(True)
        try:
            with torch.enable_grad():
                for _ in range(epochs):
                    for idx in torch.randperm(len(x), generator=g).split(batch):
                        loss = F.cross_entropy(self.critic(x[idx].to(self.device)), y[idx].to(self.device))
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
        finally:
            self.critic.train(was_training).requires_grad_(False)
        self.critic.eval()
        correct = sum(int((self.critic(x[i:i + 1000].to(self.device)).argmax(1).cpu() == y[i:i + 1000]).sum())
                      for i in range(0, len(x), 1000))
        self.critic_fitted.fill_(True)
        return correct / len(x)

    def _labels(self, labels, n: int) -> torch.Tensor | None:
        y = self.check_labels_or_weights(labels, n)
        return None if y is None else y.to(self.device)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: Labels = None, *, steps: int | None = None,
                 guidance: float | None = None, solver: str | None = None,
                 return_path: bool = False):
        """Noise z (n, 784) and labels (n,), (n, K) class weights or None ->
        images (n, 1, 28, 28) in [0, 1] on the CPU. return_path: also the
        states along the way, (steps + 1, n, 1, 28, 28) in [0, 1]."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (n, {self.z_dim}), got {tuple(z.shape)}")
        steps, guidance, solver = self.sampler_args(steps, guidance, solver)
        y = self._labels(labels, len(z))
        was_training = self.training
        self.eval()
        try:
            x = z.to(self.device, torch.float32).view(-1, 1, 28, 28)
            path = [x] if return_path else None
            x = self.integrate(x, y, steps=steps, guidance=guidance, solver=solver, path=path)
            if self.critic is not None and self.critic_candidates > 1 and y is not None and y.dim() == 1 \
                    and guidance != 0.0:
                x, path = self._redraw_doubtful(z, x, y, path, steps=steps, guidance=guidance, solver=solver)
        finally:
            self.train(was_training)
        out = to_unit(x)
        if return_path:
            return out, torch.stack([to_unit(p) for p in path])
        return out

    @torch.no_grad()
    def sample(self, n: int = 64, labels: Labels = None, seed: int = 0, temperature: float = 1.0, *,
               steps: int | None = None, guidance: float | None = None, solver: str | None = None) -> torch.Tensor:
        """As GenerativeModel.sample, with the sampler's settings (None: the
        checkpoint's defaults)."""
        n = self.check_n(n)
        y = self.check_labels(labels, n)
        temperature = self.check_temperature(temperature)
        z = _seed_noise(seed, n) * temperature
        if y is None:
            y = self._any_class(seed, n)
        return self.generate(z, y, steps=steps, guidance=guidance, solver=solver)

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generate(z, labels)

    # ---- images -> noise -> images -----------------------------------------
    @torch.no_grad()
    def invert(self, x: torch.Tensor, labels: Labels = None, *, steps: int | None = None,
               solver: str | None = None, guidance: float = 1.0) -> torch.Tensor:
        """Images (n, 1, 28, 28) in [0, 1] -> their noise (n, 784): the ODE
        run backwards from t=1 to 0. generate(invert(x, y), y) gives x back up
        to the solver's error (guidance 1 both ways keeps the ODE the same)."""
        x = check_images(x)
        steps, guidance, solver = self.sampler_args(steps, guidance, solver)
        y = self._labels(labels, len(x))
        self.eval()
        z = self.integrate(x.to(self.device) * 2 - 1, y, t0=1.0, t1=0.0, steps=steps,
                           guidance=guidance, solver=solver)
        return z.flatten(1).float().cpu()

    @torch.no_grad()
    def encode_images(self, x: torch.Tensor, steps: int = ROUND_TRIP_STEPS) -> torch.Tensor:
        """Images (n, 1, 28, 28) -> their noise (n, 784) under the
        unconditional flow: generate(code) (no labels) draws them back."""
        return self.invert(x, None, steps=steps)

    @torch.no_grad()
    def decode_codes(self, z: torch.Tensor, steps: int = ROUND_TRIP_STEPS) -> torch.Tensor:
        """Noise (n, 784), e.g. from encode_images -> pictures (n, 1, 28, 28)
        in [0, 1], along the unconditional flow."""
        return self.generate(z, None, steps=steps)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, steps: int = ROUND_TRIP_STEPS) -> torch.Tensor:
        """The round trip image -> noise -> image through the ODE, (n, 1, 28, 28)
        in [0, 1]. Unlike a VAE's, its error is the solver's alone, and
        shrinks as the steps grow."""
        return self.decode_codes(self.encode_images(x, steps), steps)

    @torch.no_grad()
    def edit(self, x: torch.Tensor, labels: Labels, strength: float, seed: int = 0, *,
             steps: int | None = None, guidance: float | None = None, solver: str | None = None) -> torch.Tensor:
        """SDEdit (Meng et al. 2022): mix images (n, 1, 28, 28) with seeded
        noise up to `strength` (0: keep the image, 1: pure noise), then follow
        the ODE back to t=1 under `labels`. A rough drawing comes back clean,
        in the class asked for, keeping its pose when strength is moderate."""
        x = check_images(x)
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be a number in (0, 1], got {strength!r}")
        steps, guidance, solver = self.sampler_args(steps, guidance, solver)
        y = self._labels(labels, len(x))
        t0 = 1.0 - float(strength)
        noise = _seed_noise(seed, len(x)).view(-1, 1, 28, 28)
        xt = ((1 - t0) * noise + t0 * (x * 2 - 1)).to(self.device)
        n_steps = max(1, round(steps * strength))   # the same step size as a full run
        self.eval()
        return to_unit(self.integrate(xt, y, t0=t0, t1=1.0, steps=n_steps, guidance=guidance, solver=solver))


def with_critic(flow: FlowModel, critic_ch: int = 16, candidates: int = 4, threshold: float = 0.5) -> FlowModel:
    """A copy of flow with a critic of `critic_ch` channels that redraws
    class-guided pictures it rates below `threshold`, up to `candidates`
    draws (same network, same device; the critic still to be fitted with
    fit_critic). For giving an already trained checkpoint a critic."""
    return rebuilt(flow, "critic", critic_ch=critic_ch, critic_candidates=candidates, critic_threshold=threshold)


def _seed_noise(seed: int, n: int) -> torch.Tensor:
    return latent.seed_noise(seed, n, 28 * 28)              # (n, 784) on the CPU


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Model space [-1, 1] -> float32 CPU images in [0, 1]."""
    return x.float().cpu().add(1).mul_(0.5).clamp_(0, 1)


class FlowRecipe(Recipe):
    """Training recipe: Adam on the
    flow-matching loss with 10% label dropout, and an exponential moving
    average of the weights, which is the model served and sampled."""

    ema_decay = 0.999
    averaged = ("flow_ema",)

    def __init__(self, classes, dataset, lr, device, model_kwargs):
        super().__init__(classes, dataset, lr, device, model_kwargs)
        flow = FlowModel(classes=classes, dataset=dataset, **model_kwargs).to(device)
        ema = frozen_copy(flow)
        self.modules = {"flow": flow, "flow_ema": ema}
        self.optimizers = {"flow": torch.optim.Adam(flow.parameters(), lr=lr)}

    def step(self, x, y, gen):
        flow, ema = self.modules["flow"], self.modules["flow_ema"]
        loss = flow.training_loss(x, y, generator=gen)
        self.optimizers["flow"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["flow"].step()
        # The average warms up (decay (1 + n) / (10 + n) until it reaches
        # ema_decay, n = steps taken, as Adam counts them): a plain 0.999 would
        # still hold 60% of the untrained weights after MNIST's first epoch.
        n = float(self.optimizers["flow"].state[next(flow.parameters())]["step"])
        decay = min(self.ema_decay, (1 + n) / (10 + n))
        ema_update(ema, flow, decay)
        return {"loss": loss.item()}

    def serving_model(self, train_set):
        flow, ema = self.modules["flow"], self.modules["flow_ema"]
        # a resume may have changed the sampler's defaults on the live model
        ema.set_objective(**{k: getattr(flow, k) for k in FlowModel.OBJECTIVE_ARGS})
        if ema.critic is not None and not bool(ema.critic_fitted):
            # once: the critic judges real pictures, which do not change as the flow trains; the
            # live copy gets the same weights, so the average of the two leaves them as they are
            ema.fit_critic(train_set.floats(), train_set.labels)
            flow.critic.load_state_dict(ema.critic.state_dict())
            flow.critic_fitted.fill_(True)
        return ema.eval()
