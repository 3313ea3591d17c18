"""evo train on a tiny generated CIFAR-10 binary data set: accuracy is reported, the
trained model loads with evo.load_model, and a training killed with SIGKILL and
resumed by the same command ends with exactly the weights of an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import evo
from evo.cli import main
from evo.errors import UsageError
from evo.training.data import load_train_data
from evo.training.trainer import accuracy

ROOT = Path(__file__).resolve().parents[2]


def write_cifar(folder: Path, train: int = 320, test: int = 96, seed: int = 0) -> Path:
    """CIFAR-10 binary files whose classes are easy: class k has a bright band of rows
    3k..3k+2 in channel k % 3 over noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def records(n: int) -> np.ndarray:
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 80, (n, 3, 32, 32))
        for i, k in enumerate(labels):
            images[i, k % 3, 3 * k:3 * k + 3, :] += 150
        return np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1).astype(np.uint8)

    records(train // 2).tofile(folder / "data_batch_1.bin")
    records(train - train // 2).tofile(folder / "data_batch_2.bin")
    records(test).tofile(folder / "test_batch.bin")
    return folder


def command(data: Path, out: Path, epochs: int = 2, *extra: str) -> list[str]:
    return ["train", "--model", "tiny", "--data", f"cifar10:{data}", "--epochs", str(epochs),
            "--batch-size", "64", "--lr", "0.05", "--threads", "1", "--out", str(out),
            "--quiet", *extra]


def test_train_reports_test_accuracy_and_the_model_loads(tmp_path: Path, capsys) -> None:
    data = write_cifar(tmp_path / "cifar")
    out = tmp_path / "trained"
    assert main(command(data, out)) == 0
    text = capsys.readouterr().out
    assert "epoch 1/2: loss" in text and "epoch 2/2: loss" in text
    reported = float(text.split("test accuracy ")[-1].split()[0])
    assert f"on 96 images (test_batch.bin in {data}) after 2 epochs" in text
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[0]["lr"] == pytest.approx(0.05) and history[1]["lr"] == pytest.approx(0.025)
    # the loaded model takes images scaled to [0, 1]: its normalisation is inside it
    model = evo.load_model(out)
    loaded = load_train_data(f"cifar10:{data}")
    with torch.no_grad():
        predicted = model(loaded.scale(loaded.x_test)).argmax(1)
    assert float((predicted == loaded.y_test).float().mean()) == pytest.approx(reported,
                                                                              abs=1e-4)
    assert accuracy(model.network, loaded) == pytest.approx(reported, abs=1e-4)
    info = json.loads((out / "model.json").read_text())
    assert info["normalisation"]["mean"] == pytest.approx(loaded.mean.flatten().tolist())
    # a finished training run again just reports
    assert main(command(data, out)) == 0
    assert f"test accuracy {reported:.4f}" in capsys.readouterr().out


def test_training_a_discovered_genome(tmp_path: Path, capsys) -> None:
    data = write_cifar(tmp_path / "cifar", train=128, test=32)
    genome = tmp_path / "genome.json"
    genome.write_text(json.dumps({"schema": 1, "layers": {
        "conv1": [{"gene": "bottleneck", "factor": 2}],
        "layer1.conv1": [{"gene": "split_channels", "groups": [1, 4]},
                         {"gene": "tile", "axis": "co", "factor": 8}],
        "conv2": [{"gene": "split_rows", "parts": 2}]}}))
    out = tmp_path / "trained"
    assert main(command(data, out, 1, "--genome", str(genome))) == 0
    assert "test accuracy" in capsys.readouterr().out
    model = evo.load_model(out).network
    assert model.conv1.convs[0].out_channels == 8
    assert len(model.layer1.conv1.convs) == 2 and len(model.conv2.convs) == 2
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "weights.pt", weights_only=True)


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """Both trainings at one precision: `auto` times fp32 against bf16, and on a loaded
    machine two trainings may choose differently (a resumed one keeps its choice)."""
    data = write_cifar(tmp_path / "cifar", train=384, test=32)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    fixed = ("--precision", "fp32")
    assert main(command(data, straight, 3, *fixed)) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "evo",
                                *command(data, killed, 3, *fixed)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint.pt").exists() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    epochs_done = len(json.loads((killed / "history.json").read_text()))
    assert epochs_done < 3, "the training finished before it could be killed"
    done = subprocess.run([sys.executable, "-m", "evo", *command(data, killed, 3, *fixed)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"resuming {killed} after epoch {epochs_done} of 3" in done.stdout
    a, b = _weights(straight), _weights(killed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_npz_data_with_held_out_test_set(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(1)
    npz = tmp_path / "data.npz"
    np.savez(npz, x=rng.integers(0, 255, (60, 3, 32, 32)).astype(np.uint8),
             y=rng.integers(0, 10, 60))
    out = tmp_path / "trained"
    assert main(["train", "--data", f"npz:{npz}", "--epochs", "1", "--batch-size", "16",
                 "--out", str(out), "--quiet", "--threads", "1"]) == 0
    assert "on 6 images (the last 6 samples of x in" in capsys.readouterr().out


def test_bad_input_gives_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    data = write_cifar(tmp_path / "cifar", train=64, test=16)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([object()] * 4, dtype=object), y=np.zeros(4, dtype=int))
    other = tmp_path / "other"
    assert main(command(data, other, 1)) == 0
    capsys.readouterr()
    cases = [
        command(tmp_path / "missing", tmp_path / "a"),
        command(data, tmp_path / "b", 1, "--genome", str(tmp_path / "nope.json")),
        ["train", "--data", f"npz:{pickled}", "--out", str(tmp_path / "c"), "--quiet"],
        [*command(data, other, 1), "--lr", "0.1"],  # other settings than `other`'s
        command(data, other, 0),  # cannot shorten a training
        command(data, tmp_path / "d", 1, "--resume"),
        command(data, tmp_path / "e", 0),
        ["train", "--data", "synthetic", "--out", str(tmp_path / "f")],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("evo train: error:"), err
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.json").write_text("{")
    with pytest.raises(UsageError):
        evo.load_model(corrupt)
