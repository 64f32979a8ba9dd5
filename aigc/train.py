"""Training loops and the `python -m aigc.train` CLI.

    python -m aigc.train gan --dataset mnist --epochs 10 --out checkpoints/gan-mnist
    torchrun --nproc_per_node=4 -m aigc.train gan --dataset mnist --epochs 10 --out checkpoints/gan-mnist

A Trainer owns every side effect: device, folders, EMA, checkpoints. After
each epoch it writes, each atomically: the serving model (config.json +
model.safetensors), the full training state (train_state.pt: models, EMA,
optimizers, RNG states, so --resume continues exactly), a row of
history.jsonl, a fixed-noise grid samples/epoch_NNN.png and the model card.
Under torchrun the same Trainer runs in every process (aigc.distributed):
each trains on its own slice of every global batch through
DistributedDataParallel, and rank 0 alone judges and writes.
"""
from __future__ import annotations

import argparse
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

from . import distributed, latent, metrics
from .card import make_card
from .data import DATASETS, ImageSet, load_dataset
from .families import FAMILIES, get, model_args, parse_model_kwargs
from .model import pick_device
from .io import atomic_write, atomic_write_text, read_jsonl, save_model_files, write_jsonl

STATE_NAME = "train_state.pt"


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
        self.family = family = get(kind)   # refuses an unknown kind by name
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")
        self.kind, self.dataset, self.out = kind, dataset, Path(out)
        self.batch_size = batch_size or family.batch_size
        self.lr = lr or family.lr
        if self.batch_size < 1 or self.lr <= 0:
            raise ValueError("batch size must be at least 1 and the learning rate positive")
        # Under torchrun: this process's rank among world processes (else 0 of 1).
        self.rank, self.world = distributed.rank(), distributed.world_size()
        if self.batch_size % self.world:
            raise ValueError(f"batch size {self.batch_size} is the global batch, split evenly across the "
                             f"{self.world} processes: choose a multiple of {self.world}")
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
        if self.test_set is None and not family.generative:   # the classifier reports its test accuracy
            self.test_set = load_dataset(dataset, train=False, data_dir=data_dir)
        torch.manual_seed(seed)  # module initialisation
        self.recipe = family.recipe(self.train_set.classes, dataset, self.lr, self.device, self.model_kwargs)
        self.perm_gen = torch.Generator().manual_seed(seed)                      # data order
        self.noise_gen = torch.Generator(device=self.device).manual_seed(seed + 1 + self.rank)  # noise in steps
        self.noise_states = None   # under torchrun: every process's noise_gen state at the last epoch's end
        self.replicas: dict | None = None   # under torchrun: the DDP-wrapped trained modules (made by train())
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
        if self.noise_states is not None and len(self.noise_states) > 1:
            state["rng"]["noise_by_rank"] = self.noise_states
        if self.device.type == "cuda":
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.recipe.modules.items():
            m.load_state_dict(state["modules"][k], strict=True)
        for k, o in self.recipe.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.perm_gen.set_state(state["rng"]["perm"])
        # Each process continues its own noise stream; a process the saved run
        # did not have (resumed on more processes) starts one of its own.
        noise = state["rng"].get("noise_by_rank") or [state["rng"]["noise"]]
        if self.rank < len(noise):
            self.noise_gen.set_state(noise[self.rank])
        else:
            self.noise_gen.manual_seed(self.seed + 1 + self.rank + 1_000_000 * state["epoch"])
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
        main = self.recipe.modules[self.family.main_module]
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
        and the step's losses}, so it must be cheap.

        Under torchrun every process calls train() alike; should_stop is
        obeyed at the same step by all when any says stop, and on_epoch runs
        on rank 0, the one that writes."""
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        history = [r for r in read_jsonl(self.out / "history.jsonl") if r["epoch"] <= self.epoch]
        if self.epoch >= epochs:
            return history
        ddp = distributed.active()
        if ddp and self.replicas is None:
            self.replicas = distributed.replicate(self.recipe.modules, self.recipe.optimizers, self.device)
        self.processes = distributed.describe(self.device)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            self._write_training_meta()
        n, B = len(self.images), self.batch_size
        steps = n // B
        if steps == 0:
            raise ValueError(f"batch size {B} is larger than the {n} training images")
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        self.recipe.train_mode()
        while self.epoch < epochs:
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=self.perm_gen).to(self.device)
            sums: dict[str, float] = {}
            bar = tqdm(range(steps), desc=f"epoch {self.epoch + 1}/{epochs}", disable=not self.progress or self.rank,
                       leave=False, dynamic_ncols=True, file=sys.stderr)
            for i in bar:
                if should_stop is not None and (distributed.any_true(should_stop(), self.device) if ddp
                                                else should_stop()):
                    bar.close()
                    return history
                idx = distributed.shard(perm[i * B:(i + 1) * B])          # this process's B / world of them
                x = self.images[idx].unsqueeze(1).float().div_(255.0)   # (B / world, 1, 28, 28)
                with amp, distributed.through(self.recipe, self.replicas):
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
            if ddp:   # losses averaged over the processes; models and noise states gathered for the state file
                sums = distributed.mean(sums, self.device)
                distributed.sync_epoch_end(self.recipe.modules, self.replicas)
                self.noise_states = distributed.all_gather(self.noise_gen.get_state())
            row = {"epoch": self.epoch, "step": self.step_count,
                   **{k: round(v / steps, 5) for k, v in sums.items()},
                   "epoch_time_s": round(elapsed, 2), "images_per_s": round(steps * B / elapsed, 1),
                   "device": str(self.device), "processes": self.processes["processes"],
                   "devices": self.processes["devices"],
                   "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            # Every process builds the serving model (the same one: a VAE's class
            # prior is fitted on the whole training set); rank 0 judges and writes it.
            model = self.recipe.serving_model(self.train_set)
            history.append(row)
            if self.rank != 0:
                self.recipe.train_mode()
                continue
            if not self.family.generative:   # the classifier: its test accuracy
                pred = model.predict(self.test_set.floats())
                row["test_accuracy"] = round((pred == self.test_set.labels).float().mean().item(), 5)
                self.recipe.train_mode()
            if self.quality is not None:
                row.update(self.quality(model))
                self.recipe.train_mode()
            self._write_epoch(model, history)
            print(self._summary(row, epochs), flush=True)
            if on_epoch is not None:
                on_epoch(row)
        return history

    def _summary(self, row: dict, epochs: int) -> str:
        skip = {"epoch", "step", "device", "time", "epoch_time_s", "images_per_s", "processes", "devices"}
        losses = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in skip)
        where = row["device"] if row["processes"] == 1 else f"{row['processes']} processes, {row['device']} on rank 0"
        return (f"epoch {row['epoch']}/{epochs}  {losses}  "
                f"{row['epoch_time_s']:.0f}s  {row['images_per_s']:.0f} img/s  {where}")

    def _write_training_meta(self) -> None:
        main = self.family.main_module
        meta = {"kind": self.kind, "dataset": self.dataset, "batch_size": self.batch_size, "lr": self.lr,
                "seed": self.seed, "parameters": self.recipe.modules[main].num_parameters(),
                "hardware": hardware_name(self.device), "torch": torch.__version__,
                "date": dt.date.today().isoformat(), "phases": self.phases, **self.processes}
        atomic_write_text(self.out / "training.json", json.dumps(meta, indent=2) + "\n")

    def _write_epoch(self, model, history: list[dict]) -> None:
        # Order matters for a kill at any moment: the state goes last, and a
        # resume drops history rows newer than the state.
        save_model_files(model, self.out)
        if self.family.generative:
            k = len(model.classes)
            z = latent.seed_noise(0, 10, model.z_dim).repeat(k, 1)       # (10k, D): same noise per column
            y = torch.arange(k).repeat_interleave(10)
            img = latent.to_pil(latent.grid(model.generate(z, y), nrow=10), scale=2)
            atomic_write(self.out / "samples" / f"epoch_{self.epoch:03d}.png",
                         lambda tmp: img.save(tmp, format="PNG"))
        self.recipe.train_mode()
        write_jsonl(self.out / "history.jsonl", history)
        atomic_write_text(self.out / "README.md", str(make_card(self.out, self.out.name)))
        atomic_write(self.out / STATE_NAME, lambda tmp: torch.save(self.state_dict(), tmp))


def quality_check(kind: str, dataset: str, classifier_dir: str | None, data_dir: str | None):
    """The cheap per-epoch quality check for generative models: class accuracy and
    Frechet distance of 2,000 samples against 2,000 test images (and for VAEs
    the class accuracy of those test images' reconstructions), judged by the
    evaluation classifier. None when there is no classifier to judge with."""
    from . import load_folder
    from .hub import BUNDLED_DIR, is_checkpoint_dir

    if not get(kind).generative:
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

Several processes (torchrun, DistributedDataParallel; nccl on CUDA, gloo on the CPU):
    torchrun --nproc_per_node=4 -m aigc.train gan --dataset mnist --epochs 10 --out my-models/gan-mnist
--batch-size stays the global batch: each process trains on batch-size / N of
it. Rank 0 alone writes; --resume works with any number of processes.

Tiny runs, for tests and quick demos:
    python -m aigc.train gan --dataset mnist --epochs 2 --out /tmp/tiny --max-images 512 --model-kwargs '{"ch": 4}'
--model-kwargs takes: """ + "; ".join(f"{k}: {', '.join(model_args(k))}" for k in FAMILIES)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aigc.train", description=__doc__.split("\n\n")[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=list(FAMILIES), help="what to train")
    p.add_argument("--dataset", choices=sorted(DATASETS), help="mnist (digits) or fashion (Fashion-MNIST)")
    p.add_argument("--epochs", type=int, required=True, help="total epochs (with --resume: the new total)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--resume", action="store_true", help="continue from the last finished epoch in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None,
                   help="the global batch: under torchrun each of the N processes trains on batch-size / N "
                        "images of it (it must divide evenly); default: 64 (gan), 128 (vae, classifier)")
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
    p.add_argument("--dist-timeout", type=float, default=distributed.DEFAULT_TIMEOUT_S, metavar="S",
                   help="under torchrun: how long a process waits for the others before it stops with an "
                        f"error (a process died or hung; default {distributed.DEFAULT_TIMEOUT_S} s)")
    args = p.parse_args(argv)
    progress = None
    stop = StopOnSigterm().install()
    trained = False
    device = args.device
    try:
        if distributed.launched():   # by torchrun: one of several processes
            device = distributed.init(args.device, args.dist_timeout)
        if args.progress_file and distributed.rank() == 0:
            from .progress import ProgressWriter
            progress = ProgressWriter(args.progress_file)
            progress.begin()
        model_kwargs = parse_model_kwargs(args.kind, args.model_kwargs) if args.model_kwargs else None
        common = dict(device=device, data_dir=args.data_dir, progress=not args.no_progress)
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
            if trainer.rank == 0:
                print(f"resuming {args.out} after epoch {trainer.epoch}", flush=True)
        else:
            if not args.dataset:
                p.error("--dataset is required (mnist or fashion)")
            if (Path(args.out) / STATE_NAME).exists():
                p.error(f"{args.out} already holds a run: pass --resume to continue it, or pick another --out")
            trainer = Trainer(args.kind, args.dataset, args.out, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed, model_kwargs=model_kwargs, max_images=args.max_images, **common)
        if trainer.rank == 0:   # the one that judges each epoch
            trainer.quality = quality_check(trainer.kind, trainer.dataset, args.eval_classifier, args.data_dir)
        if progress is not None:
            progress.epochs_done = trainer.epoch
        trainer.train(args.epochs, should_stop=stop, on_step=progress.on_step if progress is not None else None,
                      on_epoch=progress.on_epoch if progress is not None else None)
        trained = True   # every process got here, so waiting for the others at close cannot hang
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        if progress is not None:
            progress.finish("failed", str(e))
        return 2
    except RuntimeError as e:
        if not distributed.active() or not distributed.lost(e):
            raise
        msg = (f"process {distributed.rank()} of {distributed.world_size()} stops: another process died or did not "
               f"answer within --dist-timeout ({args.dist_timeout:g} s); its own output says why. The last finished "
               f"epoch's files are intact and --resume continues from there. ({str(e).splitlines()[0][:300]})")
        print(f"error: {msg}", file=sys.stderr, flush=True)
        if progress is not None:
            progress.finish("failed", msg)
        return 1
    except BaseException as e:   # Ctrl-C, a refusal by argparse, a crash: the run must not look alive
        if progress is not None:
            if isinstance(e, KeyboardInterrupt):
                progress.finish("stopped")
            else:   # argparse has printed its reason; a crash's is in the traceback
                progress.finish("failed", "" if isinstance(e, SystemExit) else f"{type(e).__name__}: {e}")
        raise
    finally:
        stop.restore()
        distributed.close(wait=trained)
    if trainer.epoch < args.epochs:   # stopped by SIGTERM between steps
        if trainer.rank == 0:
            print(f"stopped after epoch {trainer.epoch} of {args.epochs}; --resume continues from there", flush=True)
        if progress is not None:
            progress.finish("stopped")
        return 128 + signal.SIGTERM
    if progress is not None:
        progress.finish("finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
