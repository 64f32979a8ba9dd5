import os

import pytest
import torch

import aigc
from aigc import evaluate, metrics
from aigc.classifier import Classifier
from aigc.hub import BUNDLED_DIR

from .conftest import CLASSES, CopyingModel, synthetic_set


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    return Classifier(classes=CLASSES, ch=8, feature_dim=16).eval()


def test_frechet_distance_is_zero_for_a_set_with_itself_and_grows_with_noise(classifier):
    g = torch.Generator().manual_seed(0)
    a = synthetic_set(400).floats()
    noisy = [(a + s * torch.randn(a.shape, generator=g)).clamp(0, 1) for s in (0.05, 0.2, 0.5)]
    d_self = metrics.frechet_distance(classifier, a, a)
    d = [metrics.frechet_distance(classifier, a, b) for b in noisy]
    assert abs(d_self) < 1e-6
    assert 0 < d[0] < d[1] < d[2]


def test_class_accuracy_counts_hits_per_class(classifier):
    x = synthetic_set(50).floats()
    pred = classifier.predict(x)
    overall, per_class = metrics.class_accuracy(classifier, x, pred)  # labels = its own predictions
    assert overall == 1.0 and all(a == 1.0 or a != a for a in per_class)  # nan for absent classes
    wrong = (pred + 1) % 10
    assert metrics.class_accuracy(classifier, x, wrong)[0] == 0.0


def test_balanced_samples_cover_every_class(tiny_gan):
    x, y = metrics.balanced_samples(tiny_gan, per_class=3)
    assert x.shape == (30, 1, 28, 28) and torch.equal(y, torch.arange(10).repeat_interleave(3))
    x2, _ = metrics.balanced_samples(tiny_gan, per_class=3)
    assert torch.equal(x, x2)


def test_evaluate_model_on_tiny_models(tiny_gan, tiny_vae, classifier):
    train, test = synthetic_set(200), synthetic_set(100, seed=1)
    r = evaluate.evaluate_model(tiny_vae, classifier, train, test, samples=5, iw=20)
    assert 0 <= r["class_accuracy"] <= 1 and set(r["class_accuracy_per_class"]) == set(CLASSES)
    assert r["frechet_ratio"] == pytest.approx(r["frechet"] / r["frechet_floor"], rel=0.02)
    assert r["nll_iw"] <= r["nelbo"] + 1.0  # the bound is below the ELBO (up to Monte-Carlo noise)
    assert 0 <= r["reconstruction_mse"] <= 1 and r["iw_k"] == 20
    g = evaluate.evaluate_model(tiny_gan, classifier, train, test, samples=5, iw=20)
    assert "nll_iw" not in g and g["frechet_samples"] == 50


def test_quick_quality_adds_reconstruction_accuracy_for_vaes(tiny_gan, tiny_vae, classifier):
    real = synthetic_set(60, seed=1)
    q = metrics.quick_quality(tiny_vae, classifier, real.floats(), real.labels, per_class=3)
    rec = tiny_vae.reconstruct(real.floats())
    expected = (classifier.predict(rec) == real.labels).float().mean().item()
    assert q["reconstruction_class_accuracy"] == round(expected, 4)
    assert set(metrics.quick_quality(tiny_gan, classifier, real.floats(), real.labels, per_class=3)) == \
        {"class_accuracy", "frechet"}


def test_binarize_once_is_fixed():
    x = torch.rand(10, 1, 28, 28)
    b = evaluate.binarize_once(x)
    assert torch.equal(b, evaluate.binarize_once(x)) and set(b.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.skipif(not os.environ.get("AIGC_DATA_DIR"), reason="needs $AIGC_DATA_DIR with the datasets")
@pytest.mark.parametrize("dataset", ["mnist", "fashion"])
def test_bundled_classifier_accuracy_matches_what_it_reports(dataset):
    from aigc.data import load_dataset
    from aigc.io import read_jsonl

    folder = BUNDLED_DIR / f"classifier-{dataset}"
    clf = aigc.load_folder(folder, device="cpu")
    test = load_dataset(dataset, train=False)
    acc, _ = metrics.class_accuracy(clf, test.floats(), test.labels)
    reported = read_jsonl(folder / "history.jsonl")[-1]["test_accuracy"]
    assert acc == pytest.approx(reported, abs=1e-4)
    assert acc >= {"mnist": 0.992, "fashion": 0.92}[dataset]


def test_precision_and_recall_of_a_set_with_itself_are_one_and_fall_for_missing_classes():
    g = torch.Generator().manual_seed(0)
    centres = 4 * torch.randn(10, 8, generator=g)                    # ten well-separated "classes"
    labels = torch.arange(1000) % 10
    real = centres[labels] + 0.5 * torch.randn(1000, 8, generator=g)
    same = metrics.precision_recall(real, real)
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    fresh = centres[labels] + 0.5 * torch.randn(1000, 8, generator=g)  # another draw of the same distribution
    pr = metrics.precision_recall(real, fresh)
    assert pr["precision"] > 0.85 and pr["recall"] > 0.85
    half = fresh[labels < 5]                                         # a "mode-collapsed" model: 5 classes of 10
    collapsed = metrics.precision_recall(real, half)
    assert collapsed["precision"] > 0.85 and collapsed["recall"] < 0.55
    with pytest.raises(ValueError, match="need more than 3 points"):
        metrics.precision_recall(real, fresh[:3])


def test_precision_recall_on_classifier_features_matches_the_feature_version(classifier):
    a, b = synthetic_set(120).floats(), synthetic_set(120, seed=3).floats()
    from aigc.neighbours import features
    assert metrics.classifier_precision_recall(classifier, a, b) == \
        metrics.precision_recall(features(classifier, a), features(classifier, b))


def test_evaluate_model_reports_coverage_copying_and_cas(classifier):
    # A fake model that hands back training images: flagged as a copier, and
    # its images are worth as much as real ones for training a classifier.
    train, test = synthetic_set(1000), synthetic_set(100, seed=1)
    r = evaluate.evaluate_model(CopyingModel(train), classifier, train, test, samples=20, cas_epochs=4)
    for key in ("precision", "recall", "precision_real", "recall_real", "copy_share_features", "nn_distance_features",
                "copy_share_features_real", "nn_distance_features_real"):
        assert key in r, key
    assert r["copy_share"] == 1.0 and r["nn_distance"] == 0.0
    assert r["copy_share_real"] == 0.0 and r["nn_distance_real"] > 1.0
    assert r["cas_train_images"] == 1000 and r["cas_epochs"] == 4
    assert r["cas_real"] > 0.9 and r["cas"] > 0.9


def test_card_explains_coverage_copying_and_cas_beside_real_data():
    from aigc.card import evaluation_notes
    m = {"precision": 0.8, "recall": 0.4, "precision_real": 0.75, "recall_real": 0.76, "pr_k": 3,
         "copy_share": 0.0012, "copy_share_real": 0.0003, "nn_distance": 5.1, "nn_distance_real": 5.6,
         "cas": 0.95, "cas_real": 0.99, "cas_epochs": 3, "cas_train_images": 60000}
    text = "\n".join(evaluation_notes(m))
    assert "recall 0.4" in text and "0.76" in text and "0.12% of 10,000 samples" in text and "0.03%" in text
    assert "scores 0.95" in text and "0.99 (3 epochs each)" in text
    assert evaluation_notes({"class_accuracy": 0.9}) == []


def test_a_flow_card_says_how_it_samples_and_the_others_say_nothing():
    from aigc.card import sampling_text
    config = {"default_steps": 4, "default_solver": "midpoint", "default_guidance": 1.5,
              "guidance_interval": [0.3, 1.0], "critic_ch": 16, "critic_candidates": 4, "critic_threshold": 0.5}
    text = "\n".join(sampling_text(config))
    assert "4 midpoint steps" in text and "guidance 1.5 for t in [0.3, 1]" in text
    assert "below 0.5" in text and "up to 4 draws" in text
    assert "critic" not in "\n".join(sampling_text({**config, "critic_candidates": 1}))
    assert sampling_text({"ch": 32, "z_dim": 32}) == []
