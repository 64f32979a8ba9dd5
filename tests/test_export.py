import io
import json
import zipfile

import pandas as pd
import pytest
import torch
from PIL import Image

from aigc import export


def png_to_tensor(data: bytes) -> torch.Tensor:
    import numpy as np
    return torch.from_numpy(np.array(Image.open(io.BytesIO(data))))


def test_parquet_export_reads_back_with_its_labels_and_count(tiny_gan, tmp_path):
    out = export.export_dataset(tiny_gan, 23, tmp_path / "synthetic", seed=3, checkpoint="tiny", commit="abc")
    df = pd.read_parquet(out / "train.parquet")
    assert len(df) == 23 and df["label"].tolist() == torch.arange(10).repeat_interleave(
        torch.tensor(export.class_counts(23, 10))).tolist()
    first = df["image"][0]
    assert set(first) == {"bytes", "path"} and png_to_tensor(first["bytes"]).shape == (28, 28)
    # the same seed gives the same images, the PNG keeps the generated pixels
    again = tiny_gan.sample(n=3, labels=[0, 0, 0], seed=3)
    assert torch.equal(png_to_tensor(first["bytes"]), again[0, 0].mul(255).round().to(torch.uint8))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n"] == 23 and manifest["seed"] == 3 and manifest["commit"] == "abc"
    assert manifest["per_class"]["0"] == 3 and manifest["per_class"]["9"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["synthetic"]          # no temporary folder left behind
    again = export.export_dataset(tiny_gan, 23, tmp_path / "again", seed=3, checkpoint="tiny", commit="abc")
    assert (again / "train.parquet").read_bytes() == (out / "train.parquet").read_bytes()
    assert (again / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()


def test_folder_export_is_an_imagefolder_with_metadata(tiny_vae, tmp_path):
    out = export.export_dataset(tiny_vae, 12, tmp_path / "digits", fmt="folder", seed=0)
    meta = pd.read_csv(out / "metadata.csv")
    assert len(meta) == 12 and list(meta.columns) == ["file_name", "label", "class_name"]
    assert meta["label"].tolist() == [0, 0, 1, 1] + list(range(2, 10))
    assert all((out / f).is_file() for f in meta["file_name"])
    with pytest.raises(ValueError, match="already exists"):
        export.export_dataset(tiny_vae, 12, out, fmt="folder")
    export.export_dataset(tiny_vae, 5, out, fmt="parquet", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train.parquet"]


def test_download_file_holds_the_images_and_labels_asked_for(tiny_gan, tmp_path):
    z = export.download_file(tiny_gan, 7, tmp_path, seed=1, labels="4", checkpoint="gan-mnist")
    with zipfile.ZipFile(z) as f:
        meta = pd.read_csv(io.BytesIO(f.read("metadata.csv")))
        assert meta["label"].tolist() == [4] * 7 and meta["class_name"].tolist() == [4] * 7
        assert len([n for n in f.namelist() if n.endswith(".png")]) == 7
        assert json.loads(f.read("manifest.json"))["labels_asked"] == "4"
    p = export.download_file(tiny_gan, 10, tmp_path, fmt="parquet")
    assert pd.read_parquet(p)["label"].tolist() == list(range(10))
    with pytest.raises(ValueError, match="from 1 to 1,000"):
        export.download_file(tiny_gan, 1001, tmp_path)
    with pytest.raises(ValueError, match="unknown format"):
        export.download_file(tiny_gan, 1, tmp_path, fmt="tar")


def test_cli_writes_a_dataset_and_refuses_bad_input(tmp_path, capsys):
    assert export.main(["gan-mnist", "--n", "0", "--out", str(tmp_path / "x"), "--device", "cpu"]) == 2
    assert "n must be a whole number" in capsys.readouterr().err
    assert export.main(["gan-mnist", "--n", "20", "--out", str(tmp_path / "x"), "--device", "cpu"]) == 0
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert manifest["source"].startswith("bundled:") and manifest["checkpoint"] == "gan-mnist"
