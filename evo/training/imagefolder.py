"""`imagefolder:PATH` data: same-size images in one subfolder per class, as a folder or a zip.

    PATH/CLASS/.../IMAGE   labels are the class folders' names in sorted order; images
                           are ordered by (class, path inside the class folder)

A single folder holding the class folders (such as `train/` in `train/CLASS/IMAGE`) is
descended into. Hidden entries (a path part starting with "."), `__MACOSX`, `Thumbs.db`
and `desktop.ini` are ignored; anything else that is not a decodable image in a class
folder is an error. Pillow decodes every image and converts it to RGB.

Decoded arrays are cached as an uncompressed `.npz` named by the data's digest (the
sha256 of a zip's bytes; for a folder, of the sorted path, size and mtime_ns of its
files) in `$EVO_CACHE/imagefolder/`, else `${XDG_CACHE_HOME:-~/.cache}/evo/imagefolder/`.
A cache file that does not load or fails the shape and type checks is rebuilt.

`validation_split` holds out a seeded, class-balanced part for measuring accuracy;
`fisher_pool` is what the Fisher Potential's minibatch is drawn from.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from evo.errors import UsageError

CACHE_FORMAT = 1  # part of the cache file name: bump when decoding or the layout rules change
DEFAULT_VAL_SPLIT = 5000
DEFAULT_SPLIT_SEED = 0
# Names the images the Fisher minibatch is drawn from, in `--data imagefolder:` identities.
FISHER_SPLIT = f"train-of-val{DEFAULT_VAL_SPLIT}-seed{DEFAULT_SPLIT_SEED}"
_IGNORED = {"__MACOSX", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class ImageFolder:
    """Decoded images `x` (N, 3, H, W) uint8, int64 labels `y` indexing `classes`."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    digest: str
    source: str


def read_imagefolder(path: str | Path) -> ImageFolder:
    """The images of the folder or zip at `path`, from the cache when it has them.

    Raises UsageError (one line naming the path) for a missing path, a file that is not
    a zip, no class folders, files beside the class folders, an empty class folder,
    fewer than 2 classes, a file that is not a decodable image, or images of different
    sizes; the cache is written only after all of that is checked."""
    path = Path(path)
    where = f"--data imagefolder:{path}"
    digest, listing = _scan(path, where)
    cached = cache_dir() / f"{digest}-v{CACHE_FORMAT}.npz"
    hit = _load_cache(cached)
    if hit is not None:
        return ImageFolder(hit[0], hit[1], hit[2], digest, str(path))
    classes, names, y = _layout(*(listing or _zip_listing(path, where)), where)
    if path.is_dir():
        x = _decode(names, lambda name: path / name, where)
    else:
        with zipfile.ZipFile(path) as archive:
            x = _decode(names, lambda name: io.BytesIO(archive.read(name)), where)
    _save_cache(cached, x, y, classes)
    return ImageFolder(x, y, classes, digest, str(path))


def imagefolder_digest(path: str | Path) -> str:
    """The digest `read_imagefolder` keys its cache by (raises UsageError like it)."""
    return _scan(Path(path), f"--data imagefolder:{path}")[0]


def cache_dir() -> Path:
    """`$EVO_CACHE/imagefolder`, else `${XDG_CACHE_HOME:-~/.cache}/evo/imagefolder`."""
    from evo.paths import cache_dir as evo_cache_dir

    return evo_cache_dir() / "imagefolder"


def split_name(size: int, seed: int) -> str:
    """`val5000-seed0` for `validation_split(y, 5000, 0)`."""
    return f"val{size}-seed{seed}"


def validation_split(y: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted int64 (train, validation) indices of `y`: disjoint, together all of `y`.

    Each class (in label order) gives `size // classes` images, the first
    `size % classes` classes one more, drawn in turn by one
    `numpy.random.default_rng(seed)`. `size` 0 holds out nothing. A class must keep
    at least one training image (else UsageError)."""
    y = np.asarray(y)
    if size < 0 or seed < 0:
        raise UsageError(f"--val-split {size} --split-seed {seed}: both must be >= 0")
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) == 0:
        raise UsageError(f"--val-split {size}: no images to split")
    base, extra = divmod(size, len(labels))
    rng = np.random.default_rng(seed)
    held = [np.empty(0, dtype=np.int64)]
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        share = base + (i < extra)
        if share >= count:
            raise UsageError(f"--val-split {size}: class {label} has {count} images, too few "
                             f"to hold out {share} and train on the rest")
        held.append(np.flatnonzero(y == label)[rng.permutation(count)[:share]])
    val = np.sort(np.concatenate(held)).astype(np.int64)
    keep = np.ones(len(y), dtype=bool)
    keep[val] = False
    return np.flatnonzero(keep).astype(np.int64), val


def fisher_pool(y: np.ndarray) -> np.ndarray:
    """Indices the Fisher minibatch is drawn from: the training part of the default split
    (val5000-seed0), so capacity never sees its validation images; every image when a
    class has too few images for that split."""
    try:
        return validation_split(y, DEFAULT_VAL_SPLIT, DEFAULT_SPLIT_SEED)[0]
    except UsageError:
        return np.arange(len(y), dtype=np.int64)


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and deviation of uint8 images (N, C, H, W) scaled to [0, 1], as
    float32 (1, C, 1, 1); from exact integer sums, so without a float copy of `x`."""
    count = x.size // x.shape[1]
    sums = x.sum(axis=(0, 2, 3), dtype=np.uint64).astype(np.float64) / 255.0
    squares = np.einsum("nchw,nchw->c", x, x, dtype=np.uint64, casting="unsafe")
    mean = sums / count
    var = np.maximum(squares.astype(np.float64) / 255.0**2 / count - mean**2, 0.0)
    shape = (1, -1, 1, 1)
    return (mean.astype(np.float32).reshape(shape),
            np.maximum(np.sqrt(var), 1e-6).astype(np.float32).reshape(shape))


def _ignored(name: str) -> bool:
    return any(part.startswith(".") or part in _IGNORED for part in name.split("/"))


def _scan(path: Path, where: str) -> tuple[str, tuple[list[str], set[str]] | None]:
    """The digest, and for a folder its files and subfolders (POSIX paths relative to
    it); a zip is listed by `_zip_listing` only when it has to be decoded."""
    if path.is_dir():
        files, dirs, stamps = {}, set(), hashlib.sha256()
        for top, subdirs, names in os.walk(path):
            rel = Path(top).relative_to(path).as_posix()
            prefix = "" if rel == "." else rel + "/"
            subdirs[:] = [d for d in subdirs if not _ignored(d)]
            dirs.update(prefix + d for d in subdirs)
            for name in names:
                if not _ignored(name):
                    files[prefix + name] = os.stat(os.path.join(top, name))
        for name in sorted(files):
            stat = files[name]
            stamps.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return stamps.hexdigest(), (list(files), dirs)
    if not path.exists():
        raise UsageError(f"{where}: no such file or folder")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{where}: not a folder or a zip archive")
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest(), None


def _zip_listing(path: Path, where: str) -> tuple[list[str], set[str]]:
    """The files and folders in the zip at `path`, as `_scan` lists a folder."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = [e.filename for e in archive.infolist()]
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{where}: unreadable zip archive ({type(exc).__name__})") from None
    entries = [e for e in entries if not _ignored(e.rstrip("/"))]
    files = [e for e in entries if not e.endswith("/")]
    dirs = {e.rstrip("/") for e in entries if e.endswith("/")}
    dirs.update(f.rsplit("/", i)[0] for f in files for i in range(1, f.count("/") + 1))
    return files, dirs


def _layout(files: list[str], dirs: set[str],
            where: str) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    """Class names, image paths in (class, path) order and their labels."""
    root = ""
    while True:  # descend into a lone folder that holds only folders
        inner = [f[len(root):] for f in files]
        subdirs = {d[len(root):] for d in dirs if d.startswith(root) and len(d) > len(root)}
        tops = {d.split("/", 1)[0] for d in subdirs}
        if len(tops) != 1 or any(f.count("/") < 2 for f in inner):
            break
        root += tops.pop() + "/"
    loose = sorted(f for f in inner if "/" not in f)
    if loose:
        raise UsageError(f"{where}: {root}{loose[0]} lies outside the class folders "
                         f"(expected {root}CLASS/IMAGE)")
    classes = tuple(sorted(tops))
    if not classes:
        raise UsageError(f"{where}: no class folders (expected {root}CLASS/IMAGE)")
    if len(classes) < 2:
        raise UsageError(f"{where}: needs at least 2 class folders, found only "
                         f"{root}{classes[0]}")
    groups: dict[str, list[str]] = {name: [] for name in classes}
    for f in inner:
        groups[f.split("/", 1)[0]].append(f)
    names, labels = [], []
    for label, name in enumerate(classes):
        members = sorted(groups[name])
        if not members:
            raise UsageError(f"{where}: class folder {root}{name} has no images")
        names += [root + f for f in members]
        labels += [label] * len(members)
    return classes, names, np.array(labels, dtype=np.int64)


def _decode(names: list[str], opener: Callable[[str], object], where: str) -> np.ndarray:
    """Every image as RGB uint8 (N, 3, H, W); all must have one size."""
    x: np.ndarray | None = None
    for i, name in enumerate(names):
        try:
            with Image.open(opener(name)) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, EOFError, SyntaxError,
                Image.DecompressionBombError) as exc:
            raise UsageError(f"{where}: {name} is not a decodable image "
                             f"({type(exc).__name__})") from None
        if x is None:
            x = np.empty((len(names), 3, *rgb.shape[:2]), dtype=np.uint8)
        elif rgb.shape[:2] != x.shape[2:]:
            raise UsageError(f"{where}: images of different sizes (width x height): "
                             f"{names[0]} is {x.shape[3]}x{x.shape[2]}, {name} is "
                             f"{rgb.shape[1]}x{rgb.shape[0]}")
        x[i] = rgb.transpose(2, 0, 1)
    assert x is not None  # _layout gives at least two images
    return x


def _load_cache(file: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]] | None:
    """The cached (x, y, classes), or None when absent or damaged."""
    try:
        with np.load(file, allow_pickle=False) as archive:
            x, y, classes = archive["x"], archive["y"], archive["classes"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    good = (x.dtype == np.uint8 and x.ndim == 4 and x.shape[0] > 0 and x.shape[1] == 3
            and y.dtype == np.int64 and y.shape == x.shape[:1] and classes.ndim == 1
            and classes.dtype.kind == "U" and len(classes) >= 2)
    if not good or y[0] != 0 or np.any(np.diff(y) < 0) or np.any(np.diff(y) > 1) \
            or y[-1] != len(classes) - 1:
        return None
    return x, y, tuple(str(c) for c in classes)


def _save_cache(file: Path, x: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> None:
    """Write atomically (a temporary file, then os.replace); warn when it cannot."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=file.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, x=x, y=y, classes=np.array(classes, dtype=str))
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from a shared cache
            os.replace(temporary, file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        warnings.warn(f"imagefolder: decoded images not cached in {file.parent} ({exc})",
                      stacklevel=3)
