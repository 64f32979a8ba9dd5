"""Training loops and the `python -m aigc.train` CLI.

    python -m aigc.train gan --dataset mnist --epochs 10 --out checkpoints/gan-mnist

A Trainer owns every side effect: device, folders, EMA, checkpoints. After
each epoch it writes, each atomically: the serving model (config.json +
model.safetensors), the full training state (train_state.pt: models, EMA,
optimizers, RNG states, so --resume continues exactly), a row of
history.jsonl, a fixed-noise grid samples/epoch_NNN.png and the model card.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import inspect
import json
import platform
import signal
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm import tqdm

from . import latent, metrics
from .card import make_card
from .classifier import Classifier
from .data import DATASETS, ImageSet, load_dataset
from .gan import Discriminator, Generator, d_loss_fn, g_loss_fn
from .model import pick_device
from .io import atomic_write, atomic_write_text, read_jsonl, save_model_files, write_jsonl
from .vae import VAE

STATE_NAME = "train_state.pt"
KINDS = ("gan", "vae", "classifier")
DEFAULTS = {  # per kind: batch size, learning rate
    "gan": {"batch_size": 64, "lr": 2e-4},
    "vae": {"batch_size": 128, "lr": 1e-3},
    "classifier": {"batch_size": 128, "lr": 1e-3},
}


def hardware_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


# ---- recipes: what one step of each kind does ------------------------------
class Recipe:
    """Builds the modules and optimizers of one kind and takes one step.
    modules/optimizers are dicts so the Trainer can save and restore them."""

    def __init__(self, classes, dataset, lr, device, model_kwargs):
        self.device = device
        self.modules: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def step(self, x, y, gen) -> dict[str, float]:
        raise NotImplementedError

    def serving_model(self, train_set: ImageSet):
        """The model to export after an epoch (may do a little work first)."""
        raise NotImplementedError


class GANRecipe(Recipe):
    """Non-saturating loss, a conditional DCGAN discriminator with a
    projection term, one D step per G step, and an exponential moving
    average of G used for sampling."""

    ema_decay = 0.999

    def __init__(self, classes, dataset, lr, device, model_kwargs):
        super().__init__(classes, dataset, lr, device, model_kwargs)
        G = Generator(classes=classes, dataset=dataset, **model_kwargs).to(device)
        D = Discriminator(n_classes=len(classes), ch=G.ch).to(device)
        G_ema = copy.deepcopy(G).eval()
        for p in G_ema.parameters():
            p.requires_grad_(False)
        self.modules = {"G": G, "D": D, "G_ema": G_ema}
        self.optimizers = {
            "G": torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999)),
            "D": torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999)),
        }

    def step(self, x, y, gen):
        G, D, G_ema = self.modules["G"], self.modules["D"], self.modules["G_ema"]
        B = len(x)
        z = torch.randn(B, G.z_dim, generator=gen, device=self.device)
        with torch.no_grad():
            fake = G(z, y)
        d_loss = d_loss_fn(D(x, y), D(fake, y))
        self.optimizers["D"].zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizers["D"].step()

        z = torch.randn(B, G.z_dim, generator=gen, device=self.device)
        g_loss = g_loss_fn(D(G(z, y), y))
        self.optimizers["G"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["G"].step()

        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.lerp_(p, 1 - self.ema_decay)
            for be, b in zip(G_ema.buffers(), G.buffers()):
                be.copy_(b)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}

    @torch.no_grad()
    def serving_model(self, train_set):
        # The EMA weights meet BatchNorm statistics gathered by the live G;
        # recompute them for the EMA weights ("standing statistics") from a
        # fixed-seed stream, so the training RNG is left untouched.
        G_ema = self.modules["G_ema"]
        gen = torch.Generator(device=self.device).manual_seed(1234)
        for m in G_ema.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the batches below
        G_ema.train()
        for _ in range(20):
            z = torch.randn(256, G_ema.z_dim, generator=gen, device=self.device)
            y = torch.randint(0, len(G_ema.classes), (256,), generator=gen, device=self.device)
            G_ema(z, y)
        for m in G_ema.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.1
        return G_ema.eval()


class VAERecipe(Recipe):
    """Negative ELBO with a Bernoulli likelihood. On MNIST each pixel is
    binarized afresh every time it is used (dynamic binarization, Burda et al.
    2016); Fashion-MNIST keeps its gray levels as Bernoulli targets."""

    def __init__(self, classes, dataset, lr, device, model_kwargs):
        super().__init__(classes, dataset, lr, device, model_kwargs)
        self.binarize = dataset == "mnist"
        vae = VAE(classes=classes, dataset=dataset, **model_kwargs).to(device)
        self.modules = {"vae": vae}
        self.optimizers = {"vae": torch.optim.Adam(vae.parameters(), lr=lr)}

    def step(self, x, y, gen):
        vae = self.modules["vae"]
        if self.binarize:
            x = torch.bernoulli(x, generator=gen)
        objective, logs = vae.training_loss(x, generator=gen)
        self.optimizers["vae"].zero_grad(set_to_none=True)
        objective.backward()
        self.optimizers["vae"].step()
        return logs

    def serving_model(self, train_set):
        vae = self.modules["vae"].eval()
        vae.fit_class_prior(train_set.floats(), train_set.labels)
        vae.train()
        return vae


class ClassifierRecipe(Recipe):
    """Cross-entropy with light augmentation, so the judge answers "which
    class is this?" and not "is this exactly a dataset image?": each image is
    shifted by up to 2 pixels (generated images are not perfectly centred),
    half of them are softened by a small blur (a classifier trained on crisp
    images alone called a Fashion-MNIST test image blurred by one 3x3 binomial
    pass the wrong class 25% of the time, so it scored reconstructions on
    sharpness, not class), and half get faint pixel noise."""

    BLURS = (torch.tensor([1.0, 2.0, 1.0]) / 4, torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16)  # sigma ~0.7, ~1

    def __init__(self, classes, dataset, lr, device, model_kwargs):
        super().__init__(classes, dataset, lr, device, model_kwargs)
        clf = Classifier(classes=classes, dataset=dataset, **model_kwargs).to(device)
        self.modules = {"classifier": clf}
        self.optimizers = {"classifier": torch.optim.Adam(clf.parameters(), lr=lr)}

    @classmethod
    def augment(cls, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """x (B, 1, 28, 28) in [0, 1] -> shifted, some blurred, some noisy; same shape and range."""
        F = torch.nn.functional
        B, dev = len(x), x.device
        # a random shift per image, by padding and cropping
        pad = F.pad(x, (2, 2, 2, 2))                                          # (B, 1, 32, 32)
        dx = torch.randint(0, 5, (B,), generator=gen, device=dev)
        dy = torch.randint(0, 5, (B,), generator=gen, device=dev)
        ar = torch.arange(28, device=dev)
        rows = (dy[:, None] + ar[None, :])[:, :, None].expand(B, 28, 28)
        cols = (dx[:, None] + ar[None, :])[:, None, :].expand(B, 28, 28)
        x = pad[torch.arange(B, device=dev)[:, None, None], 0, rows, cols].unsqueeze(1)
        # blur: none (half), or one of two binomial kernels (a quarter each)
        which = torch.randint(0, 4, (B,), generator=gen, device=dev)
        for i, k1 in enumerate(cls.BLURS, start=1):
            k = (k1[:, None] * k1[None, :]).to(dev)[None, None]              # (1, 1, s, s)
            blurred = F.conv2d(x, k, padding=k.shape[-1] // 2)
            x = torch.where((which == i)[:, None, None, None], blurred, x)
        # noise: half the images, std up to 0.05 (about 13 gray levels)
        std = 0.05 * torch.rand(B, generator=gen, device=dev) * (torch.rand(B, generator=gen, device=dev) < 0.5)
        noise = torch.randn(x.shape, generator=gen, device=dev) * std[:, None, None, None]
        return (x + noise).clamp(0, 1)

    def step(self, x, y, gen):
        clf = self.modules["classifier"]
        loss = torch.nn.functional.cross_entropy(clf(self.augment(x, gen)), y)
        self.optimizers["classifier"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["classifier"].step()
        return {"loss": loss.item()}

    def serving_model(self, train_set):
        return self.modules["classifier"].eval()


RECIPES = {"gan": GANRecipe, "vae": VAERecipe, "classifier": ClassifierRecipe}
MODEL_CLASSES = {"gan": Generator, "vae": VAE, "classifier": Classifier}
MAIN_MODULE = {"gan": "G", "vae": "vae", "classifier": "classifier"}   # the module each recipe trains and serves
MAX_MODEL_ARG = 4096


def model_args(kind: str) -> list[str]:
    """The size arguments of a kind's model (its keyword constructor
    arguments, less the classes and dataset the trainer sets)."""
    params = inspect.signature(MODEL_CLASSES[kind].__init__).parameters.values()
    return [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name not in ("classes", "dataset")]


def parse_model_kwargs(kind: str, text: str) -> dict:
    """'{"ch": 4}' -> {"ch": 4}, checked against the kind's constructor: known
    names, whole numbers from 1 to MAX_MODEL_ARG (positive numbers for float
    arguments such as kl_weight)."""
    if kind not in MODEL_CLASSES:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {list(MODEL_CLASSES)}")
    allowed = model_args(kind)
    defaults = {p.name: p.default for p in inspect.signature(MODEL_CLASSES[kind].__init__).parameters.values()}
    example = '{"ch": 4}'
    try:
        kwargs = json.loads(text)
    except ValueError as e:
        raise ValueError(f"--model-kwargs {text!r} is not valid JSON ({e}); "
                         f"give an object such as '{example}'") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--model-kwargs must be a JSON object such as '{example}', got {text!r}")
    for k, v in kwargs.items():
        if k not in allowed:
            raise ValueError(f"--model-kwargs: {kind} has no argument {k!r}; it takes {', '.join(allowed)}")
        if isinstance(defaults[k], float):  # a weight such as the VAE's kl_weight
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_MODEL_ARG:
                raise ValueError(f"--model-kwargs: {k} must be a positive number, got {v!r}")
            kwargs[k] = float(v)
        elif isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_MODEL_ARG:
            raise ValueError(f"--model-kwargs: {k} must be a whole number from 1 to {MAX_MODEL_ARG}, got {v!r}")
    return kwargs


class StopOnSigterm:
    """SIGTERM sets a flag that the training loop polls between steps (as
    should_stop), so a stop leaves the last finished epoch's files whole and
    --resume continues from there. Installed only while the CLI runs."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def install(self) -> "StopOnSigterm":
        if threading.current_thread() is threading.main_thread():   # signal handlers live in the main thread
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()


# ---- the trainer -----------------------------------------------------------
class Trainer:
    def __init__(self, kind: str, dataset: str, out: str | Path, *, batch_size: int | None = None,
                 lr: float | None = None, seed: int = 0, device: str | torch.device = "auto",
                 data_dir: str | None = None, model_kwargs: dict | None = None,
                 train_set: ImageSet | None = None, test_set: ImageSet | None = None,
                 progress: bool = True, quality=None, max_images: int | None = None):
        if kind not in RECIPES:
            raise ValueError(f"unknown model kind {kind!r}; choose one of {list(RECIPES)}")
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")
        self.kind, self.dataset, self.out = kind, dataset, Path(out)
        self.batch_size = batch_size or DEFAULTS[kind]["batch_size"]
        self.lr = lr or DEFAULTS[kind]["lr"]
        if self.batch_size < 1 or self.lr <= 0:
            raise ValueError("batch size must be at least 1 and the learning rate positive")
        self.seed = seed
        self.model_kwargs = dict(model_kwargs or {})
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.progress = progress
        self.quality = quality  # model -> {metric: value}, merged into each history row
        self.train_set = train_set or load_dataset(dataset, train=True, data_dir=data_dir)
        self.max_images = max_images  # the first N training images only: tiny runs for tests and quick demos
        if max_images is not None:
            if max_images < 1:
                raise ValueError(f"max_images must be at least 1, got {max_images}")
            s = self.train_set
            self.train_set = ImageSet(s.images[:max_images], s.labels[:max_images], s.classes)
        self.test_set = test_set
        if self.test_set is None and kind == "classifier":
            self.test_set = load_dataset(dataset, train=False, data_dir=data_dir)
        torch.manual_seed(seed)  # module initialisation
        self.recipe = RECIPES[kind](self.train_set.classes, dataset, self.lr, self.device, self.model_kwargs)
        self.perm_gen = torch.Generator().manual_seed(seed)                      # data order
        self.noise_gen = torch.Generator(device=self.device).manual_seed(seed + 1)  # noise in steps
        self.epoch = 0
        self.step_count = 0
        # The settings each stretch of epochs trained with (a resume may lower
        # the rate or change the objective), for the model card.
        self.phases = [{"from_epoch": 1, "lr": self.lr, "model_kwargs": dict(self.model_kwargs)}]
        # The whole dataset lives on the device: batches are index slices.
        self.images = self.train_set.images.to(self.device)
        self.labels = self.train_set.labels.to(self.device)

    # -- state ------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {
            "kind": self.kind, "dataset": self.dataset, "epoch": self.epoch, "step": self.step_count,
            "settings": {"batch_size": self.batch_size, "lr": self.lr, "seed": self.seed,
                         "model_kwargs": self.model_kwargs, "max_images": self.max_images,
                         "phases": self.phases},
            "modules": {k: m.state_dict() for k, m in self.recipe.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.recipe.optimizers.items()},
            "rng": {"perm": self.perm_gen.get_state(), "noise": self.noise_gen.get_state(),
                    "torch": torch.get_rng_state()},
        }
        if self.device.type == "cuda":
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.recipe.modules.items():
            m.load_state_dict(state["modules"][k], strict=True)
        for k, o in self.recipe.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.perm_gen.set_state(state["rng"]["perm"])
        self.noise_gen.set_state(state["rng"]["noise"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        self.epoch, self.step_count = state["epoch"], state["step"]

    def set_lr(self, lr: float) -> None:
        """Change the learning rate of every optimizer from the next step on."""
        if lr <= 0:
            raise ValueError(f"the learning rate must be positive, got {lr}")
        self.lr = lr
        for opt in self.recipe.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr
        self._new_phase()

    def _new_phase(self) -> None:
        phase = {"from_epoch": self.epoch + 1, "lr": self.lr, "model_kwargs": dict(self.model_kwargs)}
        if self.phases[-1]["from_epoch"] == phase["from_epoch"]:
            self.phases[-1] = phase
        else:
            self.phases.append(phase)

    def set_model_kwargs(self, model_kwargs: dict) -> None:
        """Change the training objective's arguments (the VAE's kl_weight,
        iw_samples) from the next step on; the network's shape cannot change."""
        main = self.recipe.modules[MAIN_MODULE[self.kind]]
        objective_args = getattr(main, "OBJECTIVE_ARGS", ())
        changed = {k for k in set(model_kwargs) | set(self.model_kwargs)
                   if model_kwargs.get(k) != self.model_kwargs.get(k)}
        fixed = sorted(changed - set(objective_args))
        if fixed:
            raise ValueError(f"this run was trained with --model-kwargs {json.dumps(self.model_kwargs)}; "
                             f"--resume cannot change {', '.join(fixed)} (the network's shape)"
                             + (f"; it may change {', '.join(objective_args)}" if objective_args else ""))
        defaults = {k: inspect.signature(type(main).__init__).parameters[k].default for k in objective_args}
        main.set_objective(**{k: model_kwargs.get(k, defaults[k]) for k in objective_args})
        self.model_kwargs = dict(model_kwargs)
        self._new_phase()

    @staticmethod
    def read_state(out: str | Path) -> dict:
        path = Path(out) / STATE_NAME
        if not path.exists():
            raise FileNotFoundError(f"nothing to resume: {path} does not exist")
        # Our own file, written by this trainer; weights_only refuses anything
        # but tensors and plain containers all the same.
        return torch.load(path, map_location="cpu", weights_only=True)

    @classmethod
    def resume(cls, out: str | Path, **kwargs) -> "Trainer":
        state = cls.read_state(out)
        s = state["settings"]
        trainer = cls(state["kind"], state["dataset"], out, batch_size=s["batch_size"], lr=s["lr"],
                      seed=s["seed"], model_kwargs=s["model_kwargs"], max_images=s.get("max_images"), **kwargs)
        trainer.load_state_dict(state)
        # runs from before phases were kept: one phase, with the settings saved
        trainer.phases = s.get("phases") or [{"from_epoch": 1, "lr": s["lr"], "model_kwargs": s["model_kwargs"]}]
        return trainer

    # -- the loop -----------------------------------------------------------
    def train(self, epochs: int, on_epoch=None, should_stop=None, on_step=None) -> list[dict]:
        """Train until `epochs` epochs are done in total. on_epoch(row) is
        called after each epoch's files are written; should_stop() is polled
        between steps and ends the run after the current epoch's files
        are left as they were (nothing half-done is written); on_step(info)
        is called after every step with {"epoch" (the one running, from 1),
        "epochs", "step" (within the epoch, from 1), "steps" (per epoch),
        and the step's losses}, so it must be cheap."""
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        history = [r for r in read_jsonl(self.out / "history.jsonl") if r["epoch"] <= self.epoch]
        if self.epoch >= epochs:
            return history
        self.out.mkdir(parents=True, exist_ok=True)
        self._write_training_meta()
        n, B = len(self.images), self.batch_size
        steps = n // B
        if steps == 0:
            raise ValueError(f"batch size {B} is larger than the {n} training images")
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        for module in self.recipe.modules.values():
            module.train()
        self.recipe.modules.get("G_ema", torch.nn.Identity()).eval()
        while self.epoch < epochs:
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=self.perm_gen).to(self.device)
            sums: dict[str, float] = {}
            bar = tqdm(range(steps), desc=f"epoch {self.epoch + 1}/{epochs}", disable=not self.progress,
                       leave=False, dynamic_ncols=True, file=sys.stderr)
            for i in bar:
                if should_stop is not None and should_stop():
                    bar.close()
                    return history
                idx = perm[i * B:(i + 1) * B]
                x = self.images[idx].unsqueeze(1).float().div_(255.0)   # (B, 1, 28, 28)
                with amp:
                    losses = self.recipe.step(x, self.labels[idx], self.noise_gen)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                self.step_count += 1
                if on_step is not None:
                    on_step({"epoch": self.epoch + 1, "epochs": epochs, "step": i + 1, "steps": steps, **losses})
                if i % 20 == 0:
                    bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
            bar.close()
            self.epoch += 1
            elapsed = time.perf_counter() - t0
            row = {"epoch": self.epoch, "step": self.step_count,
                   **{k: round(v / steps, 5) for k, v in sums.items()},
                   "epoch_time_s": round(elapsed, 2), "images_per_s": round(steps * B / elapsed, 1),
                   "device": str(self.device), "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            model = self.recipe.serving_model(self.train_set)
            if self.kind == "classifier":
                pred = model.predict(self.test_set.floats())
                row["test_accuracy"] = round((pred == self.test_set.labels).float().mean().item(), 5)
                model.train()
            if self.quality is not None:
                row.update(self.quality(model))
                model.train()
            history.append(row)
            self._write_epoch(model, history)
            print(self._summary(row, epochs), flush=True)
            if on_epoch is not None:
                on_epoch(row)
        return history

    def _summary(self, row: dict, epochs: int) -> str:
        skip = {"epoch", "step", "device", "time", "epoch_time_s", "images_per_s"}
        losses = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in skip)
        return (f"epoch {row['epoch']}/{epochs}  {losses}  "
                f"{row['epoch_time_s']:.0f}s  {row['images_per_s']:.0f} img/s  {row['device']}")

    def _write_training_meta(self) -> None:
        main = MAIN_MODULE[self.kind]
        meta = {"kind": self.kind, "dataset": self.dataset, "batch_size": self.batch_size, "lr": self.lr,
                "seed": self.seed, "parameters": self.recipe.modules[main].num_parameters(),
                "hardware": hardware_name(self.device), "torch": torch.__version__,
                "date": dt.date.today().isoformat(), "phases": self.phases}
        atomic_write_text(self.out / "training.json", json.dumps(meta, indent=2) + "\n")

    def _write_epoch(self, model, history: list[dict]) -> None:
        # Order matters for a kill at any moment: the state goes last, and a
        # resume drops history rows newer than the state.
        save_model_files(model, self.out)
        if self.kind in ("gan", "vae"):
            k = len(model.classes)
            z = latent.seed_noise(0, 10, model.z_dim).repeat(k, 1)       # (10k, D): same noise per column
            y = torch.arange(k).repeat_interleave(10)
            img = latent.to_pil(latent.grid(model.generate(z, y), nrow=10), scale=2)
            atomic_write(self.out / "samples" / f"epoch_{self.epoch:03d}.png",
                         lambda tmp: img.save(tmp, format="PNG"))
        model.train()
        self.recipe.modules.get("G_ema", torch.nn.Identity()).eval()
        write_jsonl(self.out / "history.jsonl", history)
        atomic_write_text(self.out / "README.md", str(make_card(self.out, self.out.name)))
        atomic_write(self.out / STATE_NAME, lambda tmp: torch.save(self.state_dict(), tmp))


def quality_check(kind: str, dataset: str, classifier_dir: str | None, data_dir: str | None):
    """The cheap per-epoch quality check for GANs and VAEs: class accuracy and
    Frechet distance of 2,000 samples against 2,000 test images (and for VAEs
    the class accuracy of those test images' reconstructions), judged by the
    evaluation classifier. None when there is no classifier to judge with."""
    from . import load_folder
    from .hub import BUNDLED_DIR, is_checkpoint_dir

    if kind == "classifier":
        return None
    folder = Path(classifier_dir) if classifier_dir else BUNDLED_DIR / f"classifier-{dataset}"
    if not is_checkpoint_dir(folder):
        if classifier_dir:
            raise FileNotFoundError(f"--eval-classifier {classifier_dir} is not a checkpoint folder")
        print(f"no evaluation classifier at {folder}: history will hold losses only", flush=True)
        return None
    classifier = load_folder(folder, device="cpu")
    test = load_dataset(dataset, train=False, data_dir=data_dir)
    real, real_labels = test.floats(slice(0, 2000)), test.labels[:2000]

    def check(model):
        device = model.device
        q = metrics.quick_quality(model.to("cpu"), classifier, real, real_labels)
        model.to(device)
        return q

    return check


EPILOG = """Stopping: SIGTERM ends the run between two steps, leaving the last
finished epoch's files intact (exit status 143); --resume continues from there.

Tiny runs, for tests and quick demos:
    python -m aigc.train gan --dataset mnist --epochs 2 --out /tmp/tiny --max-images 512 --model-kwargs '{"ch": 4}'
--model-kwargs takes: """ + "; ".join(f"{k}: {', '.join(model_args(k))}" for k in KINDS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aigc.train", description=__doc__.split("\n\n")[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=KINDS, help="what to train")
    p.add_argument("--dataset", choices=sorted(DATASETS), help="mnist (digits) or fashion (Fashion-MNIST)")
    p.add_argument("--epochs", type=int, required=True, help="total epochs (with --resume: the new total)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--resume", action="store_true", help="continue from the last finished epoch in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="default: 64 (gan), 128 (vae, classifier)")
    p.add_argument("--lr", type=float, default=None,
                   help="default: 2e-4 (gan), 1e-3 (vae, classifier); with --resume: the rate from now on")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--data-dir", default=None, help="datasets folder (default: $AIGC_DATA_DIR, else ./data with download)")
    p.add_argument("--eval-classifier", default=None,
                   help="classifier checkpoint for the per-epoch quality check "
                        "(default: the bundled classifier-<dataset>, when it exists)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, only per-epoch lines")
    p.add_argument("--max-images", type=int, default=None, metavar="N",
                   help="train on the first N training images only (tiny runs; kept by --resume)")
    p.add_argument("--model-kwargs", default=None, metavar="JSON",
                   help='model arguments as a JSON object, e.g. \'{"ch": 4}\' (default: the full-size '
                        "model); kept by --resume, which may update a VAE's training objective, "
                        "e.g. '{\"iw_samples\": 5}'")
    p.add_argument("--progress-file", default=None, metavar="PATH",
                   help="write progress here as JSON every 2 s, atomically: state, epoch, step, "
                        "steps per epoch, time left (eta_s)")
    args = p.parse_args(argv)
    progress = None
    stop = StopOnSigterm().install()
    try:
        if args.progress_file:
            from .runs import ProgressWriter
            progress = ProgressWriter(args.progress_file)
            progress.begin()
        model_kwargs = parse_model_kwargs(args.kind, args.model_kwargs) if args.model_kwargs else None
        common = dict(device=args.device, data_dir=args.data_dir, progress=not args.no_progress)
        if args.resume:
            trainer = Trainer.resume(args.out, **common)
            if trainer.kind != args.kind or (args.dataset and args.dataset != trainer.dataset):
                p.error(f"{args.out} holds a {trainer.kind} run on {trainer.dataset}, not {args.kind} "
                        f"on {args.dataset or trainer.dataset}")
            if args.max_images is not None and args.max_images != trainer.max_images:
                p.error(f"{args.out} was trained with --max-images {trainer.max_images}; "
                        "--resume keeps it, so leave --max-images out")
            if model_kwargs is not None:   # an update of the run's arguments, e.g. '{"iw_samples": 5}'
                merged = {**trainer.model_kwargs, **model_kwargs}
                if merged != trainer.model_kwargs:
                    trainer.set_model_kwargs(merged)  # e.g. fine-tune a VAE on the IW bound
            if args.lr is not None and args.lr != trainer.lr:
                trainer.set_lr(args.lr)  # e.g. a lower rate to fine-tune the last epochs
            print(f"resuming {args.out} after epoch {trainer.epoch}", flush=True)
        else:
            if not args.dataset:
                p.error("--dataset is required (mnist or fashion)")
            if (Path(args.out) / STATE_NAME).exists():
                p.error(f"{args.out} already holds a run: pass --resume to continue it, or pick another --out")
            trainer = Trainer(args.kind, args.dataset, args.out, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed, model_kwargs=model_kwargs, max_images=args.max_images, **common)
        trainer.quality = quality_check(trainer.kind, trainer.dataset, args.eval_classifier, args.data_dir)
        if progress is not None:
            progress.epochs_done = trainer.epoch
        trainer.train(args.epochs, should_stop=stop, on_step=progress.on_step if progress is not None else None,
                      on_epoch=progress.on_epoch if progress is not None else None)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        if progress is not None:
            progress.finish("failed", str(e))
        return 2
    except BaseException as e:   # Ctrl-C, a refusal by argparse, a crash: the run must not look alive
        if progress is not None:
            if isinstance(e, KeyboardInterrupt):
                progress.finish("stopped")
            else:   # argparse has printed its reason; a crash's is in the traceback
                progress.finish("failed", "" if isinstance(e, SystemExit) else f"{type(e).__name__}: {e}")
        raise
    finally:
        stop.restore()
    if trainer.epoch < args.epochs:   # stopped by SIGTERM between steps
        print(f"stopped after epoch {trainer.epoch} of {args.epochs}; --resume continues from there", flush=True)
        if progress is not None:
            progress.finish("stopped")
        return 128 + signal.SIGTERM
    if progress is not None:
        progress.finish("finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
