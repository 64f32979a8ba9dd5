import pytest
import torch

from aigc import neighbours
from aigc.classifier import Classifier
from aigc.neighbours import NeighbourIndex, knn

from .conftest import CLASSES, CopyingModel, synthetic_set


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    return Classifier(classes=CLASSES, ch=8, feature_dim=16).eval()


def test_knn_matches_brute_force_across_chunks(monkeypatch):
    monkeypatch.setattr(neighbours, "QUERY_CHUNK", 7)    # several blocks of queries and of references
    monkeypatch.setattr(neighbours, "REF_CHUNK", 50)
    g = torch.Generator().manual_seed(0)
    q, r = torch.rand(20, 30, generator=g), torch.rand(180, 30, generator=g)
    d, i = knn(q, r, 4)
    bd, bi = torch.cdist(q.double(), r.double()).topk(4, largest=False)
    torch.testing.assert_close(d.double(), bd, atol=1e-5, rtol=0)
    assert torch.equal(i, bi)
    d, i = knn(r, r, 3, exclude_self=True)
    full = torch.cdist(r.double(), r.double()).fill_diagonal_(float("inf"))
    assert torch.equal(i, full.topk(3, largest=False).indices)


def test_an_exact_copy_has_distance_zero_and_ratio_zero(classifier):
    train = synthetic_set(300)
    index = NeighbourIndex(train, classifier)
    for space in neighbours.SPACES:
        found = index.search(train.floats(torch.arange(10, 20)), k=3, space=space)
        assert torch.equal(found.indices[:, 0], torch.arange(10, 20))
        assert (found.distances[:, 0] == 0).all() and (found.ratio == 0).all()
        assert torch.equal(found.labels[:, 0], train.labels[10:20]) and found.space == space


def test_a_model_that_returns_training_images_is_flagged_and_real_test_images_are_not(classifier):
    train, test = synthetic_set(300), synthetic_set(100, seed=1)
    index = NeighbourIndex(train, classifier)
    copies = CopyingModel(train).sample(n=100, seed=0)
    for space in neighbours.SPACES:
        flagged, real = index.copying(copies, space), index.copying(test.floats(), space)
        assert flagged["copy_share"] == 1.0 and flagged["nn_median"] == 0.0
        assert real["copy_share"] == 0.0 and real["nn_median"] > 0


def test_training_features_are_cached_per_classifier(tmp_path, classifier, monkeypatch):
    train = synthetic_set(120)
    first = neighbours.cached_features(classifier, train, tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".safetensors"
    calls = []
    monkeypatch.setattr(neighbours, "features", lambda *a, **k: calls.append(1))
    assert torch.equal(neighbours.cached_features(classifier, train, tmp_path), first) and not calls
    monkeypatch.undo()
    torch.manual_seed(1)
    other = Classifier(classes=CLASSES, ch=8, feature_dim=16).eval()    # other weights: another file
    assert not torch.equal(neighbours.cached_features(other, train, tmp_path), first)
    assert len(list(tmp_path.iterdir())) == 2
    files[0].write_bytes(b"damaged")                                   # a broken cache is recomputed
    assert torch.equal(neighbours.cached_features(classifier, train, tmp_path), first)


def test_bad_search_arguments_say_what_is_allowed(classifier):
    index = NeighbourIndex(synthetic_set(50), classifier)
    x = synthetic_set(2).floats()
    with pytest.raises(ValueError, match="unknown space"):
        index.search(x, space="inception")
    with pytest.raises(ValueError, match="k must be a whole number from 1 to 50"):
        index.search(x, k=0)
    with pytest.raises(ValueError, match="shape"):
        index.search(x[:, 0])
    with pytest.raises(ValueError, match="needs the evaluation classifier"):
        NeighbourIndex(synthetic_set(50)).search(x, space="features")
