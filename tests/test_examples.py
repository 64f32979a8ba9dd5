import numpy as np
from PIL import Image

from aigc.data import class_names
from aigc.examples import EXAMPLES_DIR, PER_CLASS, list_examples, write_examples


def test_write_then_list_examples(tmp_path, synthetic):
    paths = write_examples(synthetic, tmp_path / "mnist", per_class=2)
    assert len(paths) == 20
    found = list_examples("mnist", tmp_path)
    assert [e.label for e in found[:10]] == list(range(10))       # one of each class first
    first = found[0]
    img = np.asarray(Image.open(first.path))
    i = int((synthetic.labels == first.label).nonzero()[0])       # the first test image of that class
    assert np.array_equal(img, synthetic.images[i].numpy())
    assert list_examples("fashion", tmp_path) == []


def test_the_shipped_examples():
    for dataset in ("mnist", "fashion"):
        found = list_examples(dataset, EXAMPLES_DIR)
        assert len(found) == PER_CLASS * len(class_names(dataset))
        for e in found:
            with Image.open(e.path) as img:
                assert img.mode == "L" and img.size == (28, 28)
            assert e.path.stat().st_size < 2000
