"""`python -m aigc.evaluate`: measure every checkpoint, write
checkpoints/<name>/metrics.json and print a table.

    python -m aigc.evaluate                       # the four bundled models
    python -m aigc.evaluate vae-mnist --iw 5000   # the README's NLL numbers

For every model: class accuracy of samples (1,000 per class by default) as
judged by the evaluation classifier, and the Frechet distance of 10,000 of
them to the 10,000 test images on the classifier's features, beside the floor
(10,000 real training images against the same test set). For VAEs also: the
negative ELBO and the importance-weighted NLL bound (Burda et al. 2016) on the
test set binarized once with a fixed seed, the mean squared reconstruction
error on the grayscale test set, and the class accuracy of reconstructions.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

from . import load, load_folder, metrics
from .card import make_card
from .data import ImageSet, load_dataset
from .hub import BUNDLED, BUNDLED_DIR, is_checkpoint_dir, resolve
from .io import atomic_write_text
from .model import pick_device

BINARIZE_SEED = 0
FLOOR_SEED = 0


def binarize_once(x: torch.Tensor, seed: int = BINARIZE_SEED) -> torch.Tensor:
    """A fixed binarization of a grayscale set, so every model is scored on the same bits."""
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))


def sig(x: float, digits: int = 4) -> float:
    """x to `digits` significant digits (distances span many magnitudes)."""
    return float(f"{x:.{digits}g}")


def frechet_floor(classifier, train: ImageSet, test: ImageSet, n: int) -> float:
    """The distance real data reaches: n random training images against the test set."""
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(FLOOR_SEED))[:n]
    return metrics.frechet_distance(classifier, train.floats(idx), test.floats())


def evaluate_model(model, classifier, train: ImageSet, test: ImageSet, *, samples: int = 1000,
                   iw: int = 1000, floor: float | None = None) -> dict:
    """Every number for one model, as a flat-ish dict (per-class lists aside)."""
    t0 = time.perf_counter()
    x, y = metrics.balanced_samples(model, samples, seed=0)
    acc, per_class = metrics.class_accuracy(classifier, x, y)
    out = {
        "model": model.family, "dataset": model.dataset, "samples_per_class": samples,
        "class_accuracy": round(acc, 4),
        "class_accuracy_per_class": dict(zip(model.classes, [round(a, 4) for a in per_class])),
        "frechet": sig(metrics.frechet_distance(classifier, x, test.floats())),
        "frechet_samples": len(x), "frechet_real": len(test),
    }
    if floor is None:
        floor = frechet_floor(classifier, train, test, len(x))
    out["frechet_ratio"] = sig(out["frechet"] / floor, 3)
    out["frechet_floor"] = sig(floor)
    if model.family == "vae":
        gray = test.floats()
        lik = metrics.vae_likelihood(model, binarize_once(gray), k=iw)
        rec_acc = metrics.reconstruction_accuracy(model, classifier, gray, test.labels)
        out.update({"nelbo": round(lik["nelbo"], 2), "nll_iw": round(lik["nll"], 2), "iw_k": iw,
                    "reconstruction_mse": round(metrics.reconstruction_mse(model, gray), 5),
                    "reconstruction_class_accuracy": round(rec_acc, 4)})
    out["classifier_test_accuracy"] = round(metrics.class_accuracy(classifier, test.floats(), test.labels)[0], 4)
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    out["date"] = dt.date.today().isoformat()
    return out


def table(rows: dict[str, dict]) -> str:
    cols = [("model", "name"), ("class acc", "class_accuracy"), ("Frechet", "frechet"),
            ("floor", "frechet_floor"), ("ratio", "frechet_ratio"), ("-ELBO", "nelbo"),
            ("NLL (IW)", "nll_iw"), ("K", "iw_k"), ("rec MSE", "reconstruction_mse"),
            ("rec acc", "reconstruction_class_accuracy")]
    lines = ["| " + " | ".join(c for c, _ in cols) + " |", "|" + "---|" * len(cols)]
    for name, r in rows.items():
        vals = [name] + [("" if r.get(k) is None else str(r.get(k))) for _, k in cols[1:]]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aigc.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", default=list(BUNDLED), help=f"models (default: {' '.join(BUNDLED)})")
    p.add_argument("--samples", type=int, default=1000, help="samples per class (default 1000)")
    p.add_argument("--iw", type=int, default=1000, help="importance samples K for the VAE NLL bound (default 1000)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--data-dir", default=None, help="datasets folder (default: $AIGC_DATA_DIR, else ./data)")
    p.add_argument("--no-write", action="store_true", help="print only; leave metrics.json alone")
    args = p.parse_args(argv)
    if args.samples < 1 or args.iw < 1:
        p.error("--samples and --iw must be at least 1")
    try:
        device = pick_device(args.device)
        rows, floors, sets, classifiers = {}, {}, {}, {}
        for name in args.names:
            folder, _ = resolve(name)
            model = load(name, device=device)
            ds = model.dataset
            if ds not in sets:
                sets[ds] = (load_dataset(ds, True, args.data_dir), load_dataset(ds, False, args.data_dir))
                clf_dir = BUNDLED_DIR / f"classifier-{ds}"
                if not is_checkpoint_dir(clf_dir):
                    raise FileNotFoundError(f"no evaluation classifier at {clf_dir}: train it with "
                                            f"python -m aigc.train classifier --dataset {ds} --out {clf_dir}")
                classifiers[ds] = load_folder(clf_dir, device=device)
            train, test = sets[ds]
            key = (ds, args.samples)
            if key not in floors:
                floors[key] = frechet_floor(classifiers[ds], train, test, args.samples * len(model.classes))
            print(f"evaluating {name} on {device} ...", file=sys.stderr, flush=True)
            r = evaluate_model(model, classifiers[ds], train, test, samples=args.samples, iw=args.iw,
                               floor=floors[key])
            rows[name] = r
            if not args.no_write:
                atomic_write_text(Path(folder) / "metrics.json", json.dumps(r, indent=2) + "\n")
                # the model card shows metrics.json: bring it up to date with it
                atomic_write_text(Path(folder) / "README.md", str(make_card(folder, Path(folder).name)))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
