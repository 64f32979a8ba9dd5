"""A demo built from tiny seeded models, fake training folders and synthetic
example pictures: what the demo, API and browser tests run against."""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import time
from pathlib import Path

import torch

from aigc import latent
from aigc.classifier import Classifier
from aigc.data import ImageSet, class_names
from aigc.examples import write_examples
from aigc.gan import Generator
from aigc.io import write_jsonl
from aigc.runs import RUN_FILE, RunManager, start_token
from aigc.vae import VAE

from .conftest import TINY_GAN, TINY_VAE, synthetic_set, tiny_model


def tiny_models() -> list:
    """A tiny GAN, VAE and flow model for each dataset (conftest's sizes and perturbation)."""
    models = []
    for i, dataset in enumerate(("mnist", "fashion")):
        classes = class_names(dataset)
        torch.manual_seed(i)
        g = Generator(classes=classes, dataset=dataset, **TINY_GAN).eval()
        with torch.no_grad():  # initial class gains are all 1: perturb them as training would
            for bn in (g.bn0, g.bn1, g.bn2):
                bn.gain.weight.add_(0.5 * torch.randn_like(bn.gain.weight))
                bn.bias.weight.add_(0.5 * torch.randn_like(bn.bias.weight))
        v = VAE(classes=classes, dataset=dataset, **TINY_VAE).eval()
        data = synthetic(dataset)
        v.fit_class_prior(data.floats(), data.labels)
        f = tiny_model("flow", dataset, seed=i)
        g.source, v.source, f.source = (f"test:tiny-{m}-{dataset}" for m in ("gan", "vae", "flow"))
        models += [g, v, f]
    return models


def synthetic(dataset: str) -> ImageSet:
    s = synthetic_set(seed=0 if dataset == "mnist" else 1)
    return ImageSet(s.images, s.labels, class_names(dataset))


def write_examples_dir(root: Path) -> Path:
    for dataset in ("mnist", "fashion"):
        write_examples(synthetic(dataset), root / dataset, per_class=2)
    return root


def write_checkpoints_dir(root: Path, models: list, epochs: int = 3) -> Path:
    """Training folders as aigc.train writes them, for the GAN and VAE on mnist;
    vae-mnist also has quality columns and a metrics.json, as aigc.train and aigc.evaluate add."""
    for m in models:
        if m.dataset != "mnist":
            continue
        out = root / f"{m.family}-mnist"
        m.save_pretrained(out)
        rows = []
        for e in range(1, epochs + 1):
            row = {"epoch": e, "step": 10 * e, "epoch_time_s": 1.5, "images_per_s": 100.0, "device": "cpu",
                   "time": "2025-01-01T00:00:00+00:00"}
            if m.family == "gan":
                row.update(d_loss=1.0 / e, g_loss=0.5 + e)
            else:
                row.update(loss=200.0 / e, rec=180.0 / e, kl=20.0, class_accuracy=0.5 + 0.1 * e, frechet=40.0 - 10 * e)
            rows.append(row)
            z = latent.seed_noise(e, 10, m.z_dim).repeat(10, 1)
            img = latent.to_pil(latent.grid(m.generate(z, torch.arange(10).repeat_interleave(10)), nrow=10))
            (out / "samples").mkdir(exist_ok=True)
            img.save(out / "samples" / f"epoch_{e:03d}.png")
        write_jsonl(out / "history.jsonl", rows)
        meta = {"kind": m.family, "dataset": "mnist", "batch_size": 64, "lr": 0.001, "seed": 0,
                "parameters": m.num_parameters(), "hardware": "test cpu", "date": "2025-01-01"}
        (out / "training.json").write_text(json.dumps(meta))
        if m.family == "vae":
            (out / "metrics.json").write_text(json.dumps({  # the shape aigc.evaluate writes
                "frechet": 12.5, "class_accuracy_per_class": {"0": 0.9, "1": 0.8}, "nll_iw_k": 5000}))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_synthetic_datasets(root: Path, train: int = 256, test: int = 128) -> Path:
    """MNIST and Fashion-MNIST folders in torchvision's raw format (the
    layout $AIGC_DATA_DIR holds), filled with conftest's synthetic blobs:
    training runs in tests load them in milliseconds and need no download."""
    for folder, seed in (("MNIST", 0), ("FashionMNIST", 1)):
        raw = root / folder / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for split, n in (("train", train), ("t10k", test)):
            s = synthetic_set(n, seed=seed + (split == "t10k") * 10)
            # idx format: magic (0, 0, type 8 = ubyte, number of dimensions), then each size, big-endian
            (raw / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28)
                                                            + s.images.numpy().tobytes())
            (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, n)
                                                            + s.labels.to(torch.uint8).numpy().tobytes())
    return root


def tiny_run_manager(root: Path, images: int = 256) -> RunManager:
    """A RunManager whose runs are tiny: synthetic data (root/data), the first
    `images` of it, conftest's model sizes, a tiny judging classifier."""
    data = root / "data"
    if not data.exists():
        write_synthetic_datasets(data, train=images)
    classifiers = {}
    for dataset in ("mnist", "fashion"):
        folder = root / f"classifier-{dataset}"
        if not folder.exists():
            torch.manual_seed(0)
            Classifier(classes=class_names(dataset), dataset=dataset, ch=2, feature_dim=8).save_pretrained(folder)
        classifiers[dataset] = folder
    return RunManager(root / "runs", data_dir=str(data), device="cpu", max_images=images,
                      model_kwargs={"gan": TINY_GAN, "vae": TINY_VAE}, eval_classifiers=classifiers)


def kill_runs(runs_dir: Path) -> None:
    """Kill every trainer still running under runs_dir (pid and start token
    checked, so nothing else is hit), and wait until it is gone."""
    for record in Path(runs_dir).glob(f"*/{RUN_FILE}"):
        proc = json.loads(record.read_text()).get("process") or {}
        if proc.get("token") and start_token(proc["pid"]) == proc["token"]:
            try:
                os.killpg(proc["pid"], signal.SIGKILL)   # the trainer leads its own process group
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while start_token(proc["pid"]) == proc["token"] and time.monotonic() < deadline:
                time.sleep(0.05)
