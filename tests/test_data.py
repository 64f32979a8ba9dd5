import os

import pytest
import torch

from aigc import data


def test_class_names():
    assert data.class_names("mnist") == [str(i) for i in range(10)]
    assert data.class_names("fashion")[0] == "T-shirt/top" and data.class_names("fashion")[9] == "Ankle boot"
    with pytest.raises(ValueError, match="choose one of"):
        data.class_names("cifar10")


def test_data_dir_rule(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    assert data.resolve_data_dir() == ("./data", True)
    monkeypatch.setenv(data.DATA_DIR_ENV, "/somewhere")
    assert data.resolve_data_dir() == ("/somewhere", False)
    assert data.resolve_data_dir("/explicit") == ("/explicit", False)


def test_missing_data_names_the_folder_and_the_variable(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        data.load_dataset("mnist", data_dir=str(tmp_path / "empty"))
    assert str(tmp_path / "empty") in str(e.value) and data.DATA_DIR_ENV in str(e.value)


@pytest.mark.skipif(not os.environ.get(data.DATA_DIR_ENV), reason="needs $AIGC_DATA_DIR with the datasets")
@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_real_dataset_in_memory(name):
    test = data.load_dataset(name, train=False)
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == torch.uint8
    assert sorted(test.labels.unique().tolist()) == list(range(10))
    x = test.floats(slice(0, 5))
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
