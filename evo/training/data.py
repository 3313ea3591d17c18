"""Training and test images for `evo train`, held in memory as uint8 or float tensors.

    cifar10:DIR   the CIFAR-10 binary version: DIR/data_batch_*.bin for training and
                  DIR/test_batch.bin for testing (records: one label byte, then 3072
                  bytes of R, G, B planes of 32x32); files checked by `evo.capacity`
    npz:FILE      arrays `x` (M, C, H, W) and `y` (M,) for training and `x_test`,
                  `y_test` for testing (without them the last 10% of `x` is held out);
                  loaded without pickle
    imagefolder:PATH  a folder or zip of one subfolder of images per class
                  (`evo.training.imagefolder`): a seeded class-balanced validation split
                  of `val_split` images is tested on, the rest trained on

Images are normalised per channel with the training set's mean and deviation.
`TrainData.eval_name` says what the test images are.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from evo.capacity.data import CIFAR_RECORD, cifar_files, parse_data
from evo.errors import UsageError
from evo.training.imagefolder import (
    DEFAULT_SPLIT_SEED,
    DEFAULT_VAL_SPLIT,
    channel_stats,
    read_imagefolder,
    split_name,
    validation_split,
)


@dataclass(frozen=True)
class TrainData:
    """Training and test images (N, C, H, W) and int64 labels, and the normalisation;
    `eval_name` names the test images, `eval_kind` says whether they are a "test" set or
    a "validation" split, `note` is something to tell the user."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    eval_name: str
    note: str = ""
    eval_kind: str = "test"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def training_subset(self, count: int, seed: int) -> TrainData:
        """This data with `count` of its training images, class-balanced and drawn as
        `validation_split` draws (the test images and normalisation unchanged); 0 or
        at least all of them: unchanged."""
        total = len(self.y_train)
        if count <= 0 or count >= total:
            return self
        classes = int(torch.unique(self.y_train).numel())
        if count < classes:
            raise UsageError(f"--train-images {count}: at least one image per class "
                             f"({classes}) is needed")
        chosen = torch.from_numpy(validation_split(self.y_train.numpy(), count, seed)[1])
        note = f"trained on {count} of the {total} training images (class-balanced)"
        return replace(self, x_train=self.x_train[chosen], y_train=self.y_train[chosen],
                       note="; ".join(n for n in (self.note, note) if n))

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Float images: uint8 data scaled to [0, 1], float data as it is."""
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled images with the training set's per-channel mean and deviation removed."""
        return (x - self.mean) / self.std

    def normalisation(self) -> dict[str, list[float]]:
        """`{"mean": [...], "std": [...]}` per channel, of images scaled to [0, 1]."""
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}


def data_key(text: str) -> str:
    """A `--data` spec with its path made absolute, so a resume from elsewhere still
    matches the saved settings."""
    kind, sep, where = text.partition(":")
    if sep and kind in ("cifar10", "npz", "imagefolder") and where:
        return f"{kind}:{Path(where).resolve()}"
    return text


def load_train_data(text: str, val_split: int = DEFAULT_VAL_SPLIT,
                    split_seed: int = DEFAULT_SPLIT_SEED) -> TrainData:
    """Read `cifar10:DIR`, `npz:FILE` or `imagefolder:PATH` (raises UsageError with one
    line); `val_split` and `split_seed` choose an imagefolder's validation split (see
    `validation_split`) and are not used by the other kinds."""
    spec = parse_data(text)
    if spec.kind == "synthetic":
        raise UsageError("--data synthetic cannot train a network; use cifar10:DIR, "
                         "npz:FILE or imagefolder:PATH")
    if spec.kind == "imagefolder":
        return _read_imagefolder(spec.path, val_split, split_seed)
    if spec.kind == "cifar10":
        x, y = _read_cifar(cifar_files(spec.path), spec.path)
        test = spec.path / "test_batch.bin"
        if not test.is_file() or test in cifar_files(spec.path):
            raise UsageError(f"--data cifar10:{spec.path}: needs data_batch_*.bin for "
                             "training and test_batch.bin for testing")
        xt, yt = _read_cifar([test], spec.path)
        return _finish(x, y, xt, yt, f"test_batch.bin in {spec.path}", "")
    return _read_npz(spec.path)


def _read_cifar(files: list[Path], folder: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.concatenate([np.fromfile(f, dtype=np.uint8) for f in files])
    if raw.size % CIFAR_RECORD:
        raise UsageError(f"--data cifar10:{folder}: a file is not CIFAR-10 binary")
    records = raw.reshape(-1, CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def _read_npz(path: Path) -> TrainData:
    where = f"--data npz:{path}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{where}: not a readable .npz without pickled objects "
                         f"({type(exc).__name__})") from None
    if "x" not in arrays or "y" not in arrays:
        raise UsageError(f"{where}: needs arrays 'x' and 'y' (and optionally 'x_test', "
                         f"'y_test'), has {', '.join(arrays) or 'none'}")
    x, y = _check_pair(arrays["x"], arrays["y"], where, "x", "y")
    if "x_test" in arrays and "y_test" in arrays:
        xt, yt = _check_pair(arrays["x_test"], arrays["y_test"], where, "x_test", "y_test")
        if xt.shape[1:] != x.shape[1:] or xt.dtype != x.dtype:
            raise UsageError(f"{where}: x_test must have x's image shape and type")
        return _finish(x, y, xt, yt, f"x_test, y_test of {path.name}", "")
    held = max(1, len(x) // 10)
    if len(x) - held < 1:
        raise UsageError(f"{where}: too few samples to hold out a test set")
    return _finish(x[:-held], y[:-held], x[-held:], y[-held:],
                   f"the last {held} samples of x in {path.name}",
                   f"no x_test/y_test in the npz: testing on the last {held} samples of x")


def _read_imagefolder(path: Path, size: int, seed: int) -> TrainData:
    if size < 1:
        raise UsageError(f"--val-split {size}: training on imagefolder data needs a "
                         f"validation split of at least 1 image to measure accuracy on")
    images = read_imagefolder(path)
    train, val = validation_split(images.y, size, seed)
    name = (f"validation split {split_name(size, seed)} of {Path(images.source).name} "
            f"(sha256 {images.digest[:12]})")
    x = images.x[train]  # channel_stats: exact integer sums, no float copy of x
    data = _finish(x, images.y[train], images.x[val], images.y[val], name, "",
                   channel_stats(x))
    return replace(data, eval_kind="validation")


def _check_pair(x: np.ndarray, y: np.ndarray, where: str, xn: str,
                yn: str) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim != 4 or x.shape[0] == 0:
        raise UsageError(f"{where}: {xn} has shape {x.shape}, expected (M, C, H, W)")
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise UsageError(f"{where}: {xn} must be uint8 or float, got {x.dtype}")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise UsageError(f"{where}: {yn} must be {x.shape[0]} integer labels, got {y.dtype} "
                         f"{y.shape}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise UsageError(f"{where}: {xn} contains NaN or infinite values")
    return x, y.astype(np.int64)


def _finish(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, eval_name: str,
            note: str, stats: tuple[np.ndarray, np.ndarray] | None = None) -> TrainData:
    x_train = torch.from_numpy(np.ascontiguousarray(x))
    if stats is not None:
        mean, std = torch.from_numpy(stats[0]), torch.from_numpy(stats[1])
    else:
        floats = x_train.float() / (255.0 if x.dtype == np.uint8 else 1.0)
        mean = floats.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)
        std = floats.std(dim=(0, 2, 3)).clamp_min(1e-6).view(1, -1, 1, 1)
    return TrainData(x_train, torch.from_numpy(y), torch.from_numpy(np.ascontiguousarray(xt)),
                     torch.from_numpy(yt), mean, std, eval_name, note)
