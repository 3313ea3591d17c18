"""`evo train` on a generated ImageFolder zip: validation on the named split, bf16 and
fp32 steps, extending a finished training, training the network of an export folder."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import evo
from evo.cli import main
from evo.training.augment import augment
from evo.training.data import load_train_data
from evo.training.speed import native_bf16


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVO_CACHE", str(tmp_path / "cache"))


def easy_zip(path: Path, per_class: int = 24) -> Path:
    """A zip `train/<class>/<i>.png` of 32x32 images, 10 classes; class k has a bright
    band of rows 3k..3k+2 over noise."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        for k in range(10):
            for i in range(per_class):
                image = rng.integers(0, 80, (32, 32, 3), dtype=np.uint8)
                image[3 * k:3 * k + 3, :, k % 3] += 150
                buffer = BytesIO()
                Image.fromarray(image).save(buffer, format="PNG")
                archive.writestr(f"train/class{k}/{i:04d}.png", buffer.getvalue())
    return path


def command(data: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return ["train", "--data", f"imagefolder:{data}", "--val-split", "40", "--epochs",
            str(epochs), "--batch-size", "32", "--lr", "0.05", "--threads", "1", "--out",
            str(out), "--quiet", *extra]


def test_uint8_augmentation_is_exactly_the_float_one() -> None:
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    as_uint8 = augment(x, torch.Generator().manual_seed(5))
    assert as_uint8.dtype == torch.uint8
    assert torch.equal(as_uint8.float() / 255, augment(x.float() / 255,
                                                       torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_validates_on_the_named_split_and_extends(tmp_path: Path, capsys,
                                                          precision: str) -> None:
    data = easy_zip(tmp_path / "easy.zip")
    out = tmp_path / "trained"
    assert main([*command(data, out, 1), "--model", "tiny", "--precision", precision]) == 0
    text = capsys.readouterr().out
    assert "validation accuracy" in text and "on 40 images (validation split val40-seed0" in text
    assert json.loads((out / "train.json").read_text())["precision"] == precision
    # more epochs extend the finished training; the cosine is re-planned over 3
    assert main([*command(data, out, 3), "--model", "tiny", "--precision", precision]) == 0
    text = capsys.readouterr().out
    assert f"resuming {out} after epoch 1 of 3" in text and "epoch 3/3" in text
    history = json.loads((out / "history.json").read_text())
    assert [h["lr"] for h in history] == pytest.approx([0.05, 0.0375, 0.0125])
    # ... and cannot be shortened
    assert main([*command(data, out, 2), "--model", "tiny", "--precision", precision]) == 2
    assert "cannot shorten" in capsys.readouterr().err
    model = evo.load_model(out)
    loaded = load_train_data(f"imagefolder:{data}", 40, 0)
    with torch.no_grad():
        predicted = model(loaded.scale(loaded.x_test)).argmax(1)
    reported = history[-1]["accuracy"]
    assert float((predicted == loaded.y_test).float().mean()) == pytest.approx(reported)
    assert reported > 0.3  # the bands are easy: far above chance after 3 epochs


def test_auto_precision_is_decided_once_and_kept(tmp_path: Path, capsys) -> None:
    data = easy_zip(tmp_path / "easy.zip", per_class=8)
    out = tmp_path / "auto"
    assert main([*command(data, out, 1), "--model", "tiny"]) == 0  # --precision auto
    chosen = json.loads((out / "train.json").read_text())["precision"]
    assert chosen in ("fp32", "bf16")
    if not native_bf16():
        assert chosen == "fp32"
    assert main([*command(data, out, 2), "--model", "tiny"]) == 0  # extends, keeps it
    assert json.loads((out / "train.json").read_text())["precision"] == chosen
    other = "fp32" if chosen == "bf16" else "bf16"
    capsys.readouterr()
    assert main([*command(data, out, 3), "--model", "tiny", "--precision", other]) == 2
    assert "precision" in capsys.readouterr().err


def test_an_export_folder_names_model_and_genome(tmp_path: Path, capsys) -> None:
    data = easy_zip(tmp_path / "easy.zip", per_class=8)
    genome = tmp_path / "genome.json"
    genome.write_text(json.dumps({"schema": 1, "layers": {
        "layer1.0.conv2": [{"gene": "depthwise"}]}}))
    first = tmp_path / "first"
    assert main([*command(data, first, 1), "--model", "resnet20", "--genome",
                 str(genome)]) == 0
    capsys.readouterr()
    again = tmp_path / "again"
    assert main([*command(data, again, 1), "--genome", str(first)]) == 0  # no --model
    settings = json.loads((again / "train.json").read_text())
    assert settings["model"] == "resnet20"
    assert settings["genome"]["layers"] == {"layer1.0.conv2": [
        {"gene": "depthwise", "piece": None}]}
    capsys.readouterr()
    assert main([*command(data, tmp_path / "x", 1), "--genome", str(first), "--model",
                 "tiny"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "differs from" in err


def test_an_export_folder_of_model_code_needs_the_model_named(tmp_path: Path,
                                                              capsys) -> None:
    data = easy_zip(tmp_path / "easy.zip", per_class=8)
    code = tmp_path / "net.py"
    code.write_text("from evo.networks.tiny import tiny\n\ndef net():\n    return tiny()\n")
    first = tmp_path / "first"
    assert main([*command(data, first, 1), "--model", f"{code}:net"]) == 0
    assert "trust_model_code=True" in capsys.readouterr().out
    assert main([*command(data, tmp_path / "a", 1), "--genome", str(first)]) == 2
    assert "does not import code from a folder unasked" in capsys.readouterr().err
    assert main([*command(data, tmp_path / "b", 1), "--genome", str(first), "--model",
                 f"{code}:other"]) == 2
    assert "another factory" in capsys.readouterr().err
    assert main([*command(data, tmp_path / "c", 1), "--genome", str(first), "--model",
                 f"{code}:net"]) == 0


def test_train_images_takes_a_class_balanced_subset_and_is_a_setting(tmp_path: Path,
                                                                     capsys) -> None:
    data = easy_zip(tmp_path / "easy.zip")  # 240 images, 40 held out: 200 to train on
    full = load_train_data(f"imagefolder:{data}", 40, 0)
    subset = full.training_subset(50, 0)
    assert len(subset.y_train) == 50 and torch.bincount(subset.y_train).tolist() == [5] * 10
    assert torch.equal(subset.x_test, full.x_test) and torch.equal(subset.mean, full.mean)
    again = full.training_subset(50, 0)
    assert torch.equal(again.x_train, subset.x_train)  # seeded
    assert full.training_subset(0, 0) is full and full.training_subset(200, 0) is full

    out = tmp_path / "small"
    assert main(command(data, out, 1, "--train-images", "50")) == 0
    assert "trained on 50 of the 200 training images" in capsys.readouterr().out
    assert json.loads((out / "train.json").read_text())["train_images"] == 50
    # the same folder with all the images is another training, refused in one line
    assert main(command(data, out, 1)) == 2
    assert "train_images" in capsys.readouterr().err
    assert main(command(data, tmp_path / "x", 1, "--train-images", "5")) == 2
    assert "at least one image per class" in capsys.readouterr().err
