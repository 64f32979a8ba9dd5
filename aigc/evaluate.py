"""`python -m aigc.evaluate`: measure every checkpoint, write
checkpoints/<name>/metrics.json and print a table.

    python -m aigc.evaluate                       # every bundled model
    python -m aigc.evaluate vae-mnist --iw 5000   # the README's NLL numbers

For every model: class accuracy of samples (1,000 per class by default) as
judged by the evaluation classifier, and the Frechet distance of 10,000 of
them to the 10,000 test images on the classifier's features, beside the floor
(10,000 real training images against the same test set). For VAEs also: the
negative ELBO and the importance-weighted NLL bound (Burda et al. 2016) on the
test set binarized once with a fixed seed; for every model that encodes
pictures (VAE; flow, by its ODE round trip) the mean squared reconstruction
error on the grayscale test set and the class accuracy of reconstructions.
A flow model is sampled with its checkpoint's default steps, guidance and
solver, or with --steps / --guidance / --solver (recorded in metrics.json).

Coverage and copying, for every model, on the same 10,000 samples:
- improved precision and recall (Kynkaanniemi et al. 2019, k=3) against the
  test images on the classifier's features, beside the same for 10,000 real
  training images (precision_real, recall_real: what real data reaches);
- the share of samples whose nearest training image is much closer than the
  second (d1/d2 < 1/3, Gu et al. 2023) and the median nearest-neighbour
  distance, in pixel space (copy_share, nn_distance) and in feature space
  (..._features), beside the same for the 10,000 test images (..._real).
  The training features are cached in --cache-dir (default ~/.cache/aigc).

--cas adds the Classification Accuracy Score (Ravuri & Vinyals 2019): the
evaluation classifier's recipe trained for --cas-epochs on 60,000 generated
images (6,000 per class) and tested on the real test set (cas), beside the
same recipe trained on the 60,000 real training images (cas_real, once per
dataset and cached in --cache-dir). Without --cas, the CAS numbers of an
earlier run are kept.

--keep-likelihood keeps a VAE's likelihood numbers from its metrics.json
rather than spending an hour recomputing them: only for a change that leaves
its networks as they were, such as a refitted class prior.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

from . import families, load, load_folder, metrics
from .neighbours import NeighbourIndex, default_cache_dir
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


def copying_numbers(index: NeighbourIndex, images: torch.Tensor, suffix: str = "") -> dict:
    """The copying figures of images against index's training set, in pixel
    and feature space: copy_share (d1/d2 < 1/3) and nn_distance (median d1)."""
    out = {}
    for space, tag in (("pixels", ""), ("features", "_features")):
        c = index.copying(images, space)
        out[f"copy_share{tag}{suffix}"] = round(c["copy_share"], 4)
        out[f"nn_distance{tag}{suffix}"] = sig(c["nn_median"])
    return out


def real_reference(classifier, train: ImageSet, test: ImageSet, n: int, index: NeighbourIndex | None = None,
                   floor: float | None = None) -> dict:
    """What real data reaches, once per dataset: the Frechet floor and
    precision/recall of n random training images against the test set, and
    the copying figures of the test images against the training set."""
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(FLOOR_SEED))[:n]
    real = train.floats(idx)
    if floor is None:
        floor = metrics.frechet_distance(classifier, real, test.floats())
    pr = metrics.classifier_precision_recall(classifier, test.floats(), real)
    out = {"frechet_floor": floor, "precision_real": round(pr["precision"], 4), "recall_real": round(pr["recall"], 4)}
    if index is None:
        index = NeighbourIndex(train, classifier)
    out.update(copying_numbers(index, test.floats(), "_real"))
    return out


def cas_score(train_set: ImageSet, test_set: ImageSet, dataset: str, *, epochs: int, device="cpu",
              model_kwargs: dict | None = None, seed: int = 0, workdir: str | Path | None = None) -> float:
    """Classification Accuracy Score: the evaluation classifier's recipe
    (aigc.train's, with its augmentation, batch size and learning rate)
    trained for `epochs` on train_set, its accuracy on test_set. The run's
    files go to a temporary folder (inside workdir when given), removed after."""
    import tempfile

    from .train import Trainer

    with tempfile.TemporaryDirectory(dir=workdir, prefix="aigc-cas-") as out:
        trainer = Trainer("classifier", dataset, out, seed=seed, device=device, model_kwargs=model_kwargs,
                          train_set=train_set, test_set=test_set, progress=False)
        history = trainer.train(epochs)
    return float(history[-1]["test_accuracy"])


def cached_cas_real(train: ImageSet, test: ImageSet, dataset: str, *, epochs: int, device, model_kwargs: dict,
                    cache_dir: str | Path | None) -> float:
    """cas_score on the real training set, kept in cache_dir as JSON keyed by
    the dataset's images, the epochs and the recipe's arguments (it is a
    property of the data and the recipe, not of any model): one training per
    dataset, not one per evaluation run."""
    from .neighbours import tensor_hash

    key = tensor_hash({"train": train.images, "test": test.images, "train_labels": train.labels,
                       "test_labels": test.labels})[:16]
    args = "-".join(f"{k}{v}" for k, v in sorted(model_kwargs.items()))
    path = Path(cache_dir) / f"cas-real-{dataset}-{key}-e{epochs}-{args}.json" if cache_dir else None
    if path is not None and path.exists():
        try:
            return float(json.loads(path.read_text())["cas_real"])
        except (ValueError, KeyError):
            pass
    score = cas_score(train, test, dataset, epochs=epochs, device=device, model_kwargs=model_kwargs)
    if path is not None:
        atomic_write_text(path, json.dumps({"cas_real": score, "dataset": dataset, "epochs": epochs,
                                            "model_kwargs": model_kwargs}) + "\n")
    return score


def classifier_kwargs(classifier) -> dict:
    """The evaluation classifier's size arguments (ch, feature_dim), for training its recipe anew."""
    config = dict(getattr(classifier, "_hub_mixin_config", None) or {})
    return {k: v for k, v in config.items() if k not in ("classes", "dataset", "family")}


def evaluate_model(model, classifier, train: ImageSet, test: ImageSet, *, samples: int = 1000,
                   iw: int = 1000, floor: float | None = None, sampler: dict | None = None,
                   reference: dict | None = None, index: NeighbourIndex | None = None,
                   cas_epochs: int | None = None, cas_real: float | None = None, device="cpu",
                   likelihood: bool = True) -> dict:
    """Every number for one model, as a flat-ish dict (per-class lists aside).
    sampler: a flow model's steps, guidance, solver (None: its defaults).
    reference: real_reference()'s numbers for this dataset (None: computed
    here); index: the training set's NeighbourIndex (None: built here,
    uncached). cas_epochs: also the CAS, trained that many epochs (None: no
    CAS); cas_real: the real-data CAS for the same epochs (None: trained here)."""
    t0 = time.perf_counter()
    family = families.get(model.family)
    sampler = {k: v for k, v in (sampler or {}).items() if v is not None} if family.takes_guidance else {}
    x, y = metrics.balanced_samples(model, samples, seed=0, **sampler)
    acc, per_class = metrics.class_accuracy(classifier, x, y)
    out = {
        "model": model.family, "dataset": model.dataset, "samples_per_class": samples,
        "class_accuracy": round(acc, 4),
        "class_accuracy_per_class": dict(zip(model.classes, [round(a, 4) for a in per_class])),
        "frechet": sig(metrics.frechet_distance(classifier, x, test.floats())),
        "frechet_samples": len(x), "frechet_real": len(test),
    }
    if index is None:
        index = NeighbourIndex(train, classifier)
    if reference is None:
        reference = real_reference(classifier, train, test, len(x), index, floor)
    floor = reference["frechet_floor"] if floor is None else floor
    out["frechet_ratio"] = sig(out["frechet"] / floor, 3)
    out["frechet_floor"] = sig(floor)
    pr = metrics.classifier_precision_recall(classifier, test.floats(), x)
    out.update({"precision": round(pr["precision"], 4), "recall": round(pr["recall"], 4),
                "precision_real": reference["precision_real"], "recall_real": reference["recall_real"],
                "pr_k": metrics.PR_NEIGHBOURS})
    out.update(copying_numbers(index, x))
    out.update({k: v for k, v in reference.items() if k.startswith(("copy_share", "nn_distance"))})
    if cas_epochs is not None:
        kwargs = classifier_kwargs(classifier)
        synthetic = _generated_set(model, len(train) // len(model.classes), sampler)
        out["cas"] = round(cas_score(synthetic, test, model.dataset, epochs=cas_epochs, device=device,
                                     model_kwargs=kwargs), 4)
        if cas_real is None:
            cas_real = cas_score(train, test, model.dataset, epochs=cas_epochs, device=device, model_kwargs=kwargs)
        out.update({"cas_real": round(cas_real, 4), "cas_epochs": cas_epochs, "cas_train_images": len(synthetic)})
    if family.takes_guidance:
        steps, guidance, solver = model.sampler_args(**sampler)
        out.update({"steps": steps, "guidance": guidance, "solver": solver,
                    "guidance_interval": list(getattr(model, "guidance_interval", (0.0, 1.0))),
                    "critic_candidates": getattr(model, "critic_candidates", 1)})   # 1: no redraws
    gray = test.floats()
    if family.has_likelihood and likelihood:
        lik = metrics.vae_likelihood(model, binarize_once(gray), k=iw)
        out.update({"nelbo": round(lik["nelbo"], 2), "nll_iw": round(lik["nll"], 2), "iw_k": iw})
    if family.can_encode:
        # An invertible model's round trip costs 2 x 16 ODE steps per picture and its error is
        # the solver's (nearly the same on any picture): the first ROUND_TRIP_IMAGES test images.
        n = ROUND_TRIP_IMAGES if family.invertible else len(gray)
        rec = metrics.reconstructions(model, gray[:n])           # made once, judged twice
        rec_acc = metrics.reconstruction_accuracy(model, classifier, gray[:n], test.labels[:n], rec=rec)
        out.update({"reconstruction_mse": round(metrics.reconstruction_mse(model, gray[:n], rec=rec), 5),
                    "reconstruction_class_accuracy": round(rec_acc, 4), "reconstruction_images": n})
    out["classifier_test_accuracy"] = round(metrics.class_accuracy(classifier, test.floats(), test.labels)[0], 4)
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    out["date"] = dt.date.today().isoformat()
    return out


ROUND_TRIP_IMAGES = 2000
CAS_SEED = 100_000   # the CAS training set's noise: apart from the evaluation samples' (seed 0, ...)


def _generated_set(model, per_class: int, sampler: dict) -> ImageSet:
    """per_class generated images of every class, as a uint8 ImageSet (what an export would hold)."""
    from .export import generate_set

    return generate_set(model, per_class * len(model.classes), seed=CAS_SEED, **sampler)


def table(rows: dict[str, dict]) -> str:
    cols = [("model", "name"), ("steps", "steps"), ("guidance", "guidance"), ("class acc", "class_accuracy"), ("Frechet", "frechet"),
            ("floor", "frechet_floor"), ("ratio", "frechet_ratio"), ("-ELBO", "nelbo"),
            ("NLL (IW)", "nll_iw"), ("K", "iw_k"), ("rec MSE", "reconstruction_mse"),
            ("rec acc", "reconstruction_class_accuracy"), ("precision", "precision"), ("recall", "recall"),
            ("P real", "precision_real"), ("R real", "recall_real"), ("copies", "copy_share"),
            ("copies real", "copy_share_real"), ("NN dist", "nn_distance"), ("NN dist real", "nn_distance_real"),
            ("CAS", "cas"), ("CAS real", "cas_real")]
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
    p.add_argument("--steps", type=int, default=None, help="flow models: solver steps (default: the checkpoint's)")
    p.add_argument("--guidance", type=float, default=None,
                   help="flow models: classifier-free guidance, 0 to 10, 1 = none (default: the checkpoint's)")
    p.add_argument("--solver", default=None, choices=["euler", "midpoint", "heun"],
                   help="flow models: ODE solver (default: the checkpoint's)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--data-dir", default=None, help="datasets folder (default: $AIGC_DATA_DIR, else ./data)")
    p.add_argument("--no-write", action="store_true", help="print only; leave metrics.json alone")
    p.add_argument("--cas", action="store_true",
                   help="also the Classification Accuracy Score (trains the classifier recipe once per model, "
                        "and once per dataset on real images, cached in --cache-dir)")
    p.add_argument("--cas-epochs", type=int, default=3, help="epochs of each CAS training (default 3)")
    p.add_argument("--keep-likelihood", action="store_true",
                   help="keep the likelihood numbers (nelbo, nll_iw, iw_k) of the existing metrics.json instead of "
                        "recomputing them: only after a change that leaves the encoder and decoder as they were, "
                        "such as refitting a VAE's class prior (the likelihood uses the N(0, I) prior)")
    p.add_argument("--cache-dir", default=None,
                   help=f"where the training set's classifier features are cached (default {default_cache_dir()})")
    args = p.parse_args(argv)
    if args.samples < 1 or args.iw < 1 or args.cas_epochs < 1:
        p.error("--samples, --iw and --cas-epochs must be at least 1")
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    try:
        device = pick_device(args.device)
        rows, floors, sets, classifiers, indexes, cas_real = {}, {}, {}, {}, {}, {}
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
                indexes[ds] = NeighbourIndex(sets[ds][0], classifiers[ds], cache_dir)
            train, test = sets[ds]
            key = (ds, args.samples)
            if key not in floors:
                floors[key] = real_reference(classifiers[ds], train, test, args.samples * len(model.classes),
                                             indexes[ds])
            if args.cas and ds not in cas_real:
                print(f"CAS: training the classifier recipe on real {ds} images ...", file=sys.stderr, flush=True)
                cas_real[ds] = cached_cas_real(train, test, ds, epochs=args.cas_epochs, device=device,
                                               model_kwargs=classifier_kwargs(classifiers[ds]), cache_dir=cache_dir)
            print(f"evaluating {name} on {device} ...", file=sys.stderr, flush=True)
            kept = {}
            if args.keep_likelihood and families.get(model.family).has_likelihood:
                old = Path(folder) / "metrics.json"
                kept = {k: v for k, v in (json.loads(old.read_text()) if old.exists() else {}).items()
                        if k in ("nelbo", "nll_iw", "iw_k")}
                if len(kept) != 3:
                    raise ValueError(f"--keep-likelihood: {old} has no likelihood numbers to keep")
            r = evaluate_model(model, classifiers[ds], train, test, samples=args.samples, iw=args.iw,
                               likelihood=not kept,
                               reference=floors[key], index=indexes[ds],
                               sampler={"steps": args.steps, "guidance": args.guidance, "solver": args.solver},
                               cas_epochs=args.cas_epochs if args.cas else None, cas_real=cas_real.get(ds),
                               device=device)
            r.update(kept)
            old = Path(folder) / "metrics.json"
            if not args.cas and old.exists():   # CAS costs trainings: an earlier run's numbers stay
                try:
                    previous = json.loads(old.read_text())
                except ValueError:
                    previous = {}
                r.update({k: v for k, v in previous.items() if k.startswith("cas")})
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
