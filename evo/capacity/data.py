"""The minibatch the Fisher Potential is measured on: synthetic, CIFAR-10 binary, npz, or
an ImageFolder.

    synthetic      seeded standard-normal images and uniform random labels
    cifar10:DIR    records from DIR/data_batch_*.bin (else DIR/test_batch.bin): one label
                   byte then 3072 pixel bytes (R, G, B planes of 32x32); pixels scaled to
                   [0, 1] and normalised with the CIFAR-10 channel means and deviations
    npz:FILE       arrays `x` (M, C, H, W) and `y` (M,) integer labels, loaded without
                   pickle; uint8 images are scaled to [0, 1]
    imagefolder:PATH  a folder or zip of one subfolder of images per class
                   (`evo.training.imagefolder`); drawn from the training part of the
                   default validation split (val5000-seed0), so capacity never sees the
                   images `evo train` validates on by default (from every image when a
                   class has too few for that split); scaled to [0, 1] and normalised
                   with that part's channel means and deviations

A batch is `batch` distinct records chosen with `numpy.random.default_rng(seed)`,
so the same seed gives the same batch.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evo.errors import UsageError

CIFAR_RECORD = 1 + 3 * 32 * 32
CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(1, 3, 1, 1)
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32).reshape(1, 3, 1, 1)


@dataclass(frozen=True)
class DataSpec:
    """A parsed `--data` option; `identity` changes whenever the data could."""

    kind: str
    path: Path | None
    identity: str


def parse_data(text: str) -> DataSpec:
    """Check a `--data` value (`synthetic`, `cifar10:DIR`, `npz:FILE`, `imagefolder:PATH`)
    and its files."""
    if text == "synthetic":
        return DataSpec("synthetic", None, "synthetic")
    kind, sep, where = text.partition(":")
    if not sep or kind not in ("cifar10", "npz", "imagefolder") or not where:
        raise UsageError(f"--data {text!r}: expected synthetic, cifar10:DIR, npz:FILE or "
                         f"imagefolder:PATH")
    path = Path(where)
    if kind == "cifar10":
        files = cifar_files(path)
        stamp = ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
        return DataSpec(kind, path, f"cifar10:{path.resolve()}:{stamp}")
    if kind == "imagefolder":  # imported here: evo.training imports this module
        from evo.training.imagefolder import FISHER_SPLIT, imagefolder_digest

        digest = imagefolder_digest(path)
        return DataSpec(kind, path, f"imagefolder:{path.resolve()}@{digest}:{FISHER_SPLIT}")
    if not path.is_file():
        raise UsageError(f"--data npz:{path}: no such file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return DataSpec(kind, path, f"npz:{path.resolve()}@{digest}")


def cifar_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UsageError(f"--data cifar10:{folder}: no such directory")
    files = sorted(folder.glob("data_batch_*.bin")) or sorted(folder.glob("test_batch.bin"))
    if not files:
        raise UsageError(f"--data cifar10:{folder}: no data_batch_*.bin or test_batch.bin "
                         f"(the CIFAR-10 binary version)")
    for f in files:
        size = f.stat().st_size
        if size == 0 or size % CIFAR_RECORD:
            raise UsageError(f"--data cifar10:{folder}: {f.name} is not CIFAR-10 binary "
                             f"({size} bytes is not a multiple of {CIFAR_RECORD})")
    return files


def load_batch(data: DataSpec, sample_shape: tuple[int, ...], batch: int, classes: int,
               seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch` images of `sample_shape` (C, H, W) as float32 and their int64 labels."""
    rng = np.random.default_rng(seed)
    if data.kind == "synthetic":
        x = rng.standard_normal((batch, *sample_shape), dtype=np.float32)
        y = rng.integers(0, classes, batch)
    elif data.kind == "cifar10":
        x, y = _cifar_batch(data.path, sample_shape, batch, rng)
    elif data.kind == "imagefolder":
        x, y = _imagefolder_batch(data.path, sample_shape, batch, rng)
    else:
        x, y = _npz_batch(data.path, sample_shape, batch, rng)
    if y.min() < 0 or y.max() >= classes:
        raise UsageError(f"--data {data.kind}:{data.path}: labels must be in [0, {classes}) "
                         f"for a model with {classes} outputs, found {int(y.min())}.."
                         f"{int(y.max())}")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(
        y.astype(np.int64))


def _cifar_batch(folder: Path, sample_shape: tuple[int, ...], batch: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if tuple(sample_shape) != (3, 32, 32):
        raise UsageError(f"--data cifar10: images are 3x32x32, the model's input is "
                         f"{'x'.join(map(str, sample_shape))}")
    files = cifar_files(folder)
    counts = [f.stat().st_size // CIFAR_RECORD for f in files]
    total = sum(counts)
    if total < batch:
        raise UsageError(f"--data cifar10:{folder}: {total} records, fewer than batch {batch}")
    chosen = np.sort(rng.choice(total, size=batch, replace=False))
    starts = np.cumsum([0, *counts])
    records = np.empty((batch, CIFAR_RECORD), dtype=np.uint8)
    for row, index in enumerate(chosen):
        which = int(np.searchsorted(starts, index, side="right") - 1)
        with open(files[which], "rb") as handle:
            handle.seek(int(index - starts[which]) * CIFAR_RECORD)
            records[row] = np.frombuffer(handle.read(CIFAR_RECORD), dtype=np.uint8)
    images = records[:, 1:].reshape(batch, 3, 32, 32).astype(np.float32) / 255.0
    return (images - CIFAR_MEAN) / CIFAR_STD, records[:, 0].astype(np.int64)


def _npz_batch(path: Path, sample_shape: tuple[int, ...], batch: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    where = f"--data npz:{path}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive or "y" not in archive:
                raise UsageError(f"{where}: needs arrays 'x' and 'y', has "
                                 f"{', '.join(archive.files) or 'none'}")
            x, y = archive["x"], archive["y"]
    except UsageError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{where}: not a readable .npz without pickled objects "
                         f"({type(exc).__name__})") from None
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(sample_shape):
        raise UsageError(f"{where}: x has shape {x.shape}, expected (M, "
                         f"{', '.join(map(str, sample_shape))})")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise UsageError(f"{where}: y must be {x.shape[0]} integer labels, got {y.dtype} "
                         f"{y.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise UsageError(f"{where}: x must be numeric, got {x.dtype}")
    if x.shape[0] < batch:
        raise UsageError(f"{where}: {x.shape[0]} samples, fewer than batch {batch}")
    chosen = np.sort(rng.choice(x.shape[0], size=batch, replace=False))
    images = x[chosen].astype(np.float32)
    if x.dtype == np.uint8:
        images /= 255.0
    if not np.isfinite(images).all():
        raise UsageError(f"{where}: x contains NaN or infinite values")
    return images, y[chosen].astype(np.int64)


def _imagefolder_batch(path: Path, sample_shape: tuple[int, ...], batch: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from evo.training.imagefolder import channel_stats, fisher_pool, read_imagefolder

    where = f"--data imagefolder:{path}"
    images = read_imagefolder(path)
    if tuple(images.x.shape[1:]) != tuple(sample_shape):
        raise UsageError(f"{where}: images are {'x'.join(map(str, images.x.shape[1:]))}, the "
                         f"model's input is {'x'.join(map(str, sample_shape))}")
    pool = fisher_pool(images.y)
    if len(pool) < batch:
        raise UsageError(f"{where}: {len(pool)} images to draw from, fewer than batch {batch}")
    chosen = pool[np.sort(rng.choice(len(pool), size=batch, replace=False))]
    mean, std = channel_stats(images.x[pool])
    return (images.x[chosen].astype(np.float32) / 255.0 - mean) / std, images.y[chosen]
