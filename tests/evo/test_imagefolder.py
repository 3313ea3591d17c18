"""`imagefolder:PATH` data on small ImageFolders written with Pillow (as a folder, a zip
and a zip with a `train/` top folder): labels, the decoded-array cache, the validation
split, every bad-archive error, `evo train`'s data and the Fisher minibatch; and, when
present, the 50,000 CIFAR-10 JPEGs in `<repo>/../shared/data`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evo.capacity import load_batch, parse_data
from evo.errors import UsageError
from evo.training.data import load_train_data
from evo.training.imagefolder import (
    cache_dir,
    channel_stats,
    fisher_pool,
    read_imagefolder,
    split_name,
    validation_split,
)

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10-train-jpeg.zip"
CLASSES = ("cat", "ant", "dog")  # written unsorted: labels must follow the sorted names


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "imagefolder"


def pixels(k: int, i: int, size: tuple[int, int] = (8, 8)) -> np.ndarray:
    """Image i of class k: (H, W, 3) uint8, different for every (k, i)."""
    rng = np.random.default_rng(100 * k + i)
    return rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def write_folder(root: Path, per_class: int = 6, classes: tuple[str, ...] = CLASSES) -> Path:
    """PNGs (one grayscale per class) and a JPEG per class, plus ignorable clutter."""
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = Image.fromarray(pixels(k, i))
            if i == 1:
                image.convert("L").save(root / name / f"{i:04d}.png")
            elif i == 2:
                image.save(root / name / f"{i:04d}.jpg", quality=90)
            else:
                image.save(root / name / f"{i:04d}.png")
    (root / ".DS_Store").write_bytes(b"\0clutter")
    (root / CLASSES[0] / ".hidden.txt").write_text("not an image, but hidden")
    return root


def write_zip(folder: Path, out: Path, top: str = "") -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.rglob("*"), reverse=True):  # order must not matter
            archive.write(path, top + path.relative_to(folder).as_posix())
        archive.writestr("__MACOSX/._cat", b"resource fork")
    return out


def test_labels_follow_sorted_class_names_and_images_become_rgb(tmp_path: Path) -> None:
    data = read_imagefolder(write_folder(tmp_path / "images"))
    assert data.classes == ("ant", "cat", "dog")
    assert data.y.dtype == np.int64 and data.y.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert data.x.dtype == np.uint8 and data.x.shape == (18, 3, 8, 8)
    ant = CLASSES.index("ant")
    assert np.array_equal(data.x[0], pixels(ant, 0).transpose(2, 0, 1))  # ant/0000.png
    gray = data.x[1]  # ant/0001.png, saved as grayscale: three equal channels
    assert np.array_equal(gray[0], gray[1]) and np.array_equal(gray[1], gray[2])
    assert np.array_equal(data.x[6 + 3], pixels(CLASSES.index("cat"), 3).transpose(2, 0, 1))
    assert len(data.digest) == 64 and data.source == str(tmp_path / "images")


def test_folder_zip_and_zip_with_a_top_folder_give_identical_arrays(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "images")
    loads = [read_imagefolder(folder),
             read_imagefolder(write_zip(folder, tmp_path / "flat.zip")),
             read_imagefolder(write_zip(folder, tmp_path / "top.zip", top="train/"))]
    for other in loads[1:]:
        assert other.classes == loads[0].classes
        assert np.array_equal(other.x, loads[0].x) and np.array_equal(other.y, loads[0].y)
    assert len({d.digest for d in loads}) == 3


def test_the_cache_is_written_once_and_read_back(tmp_path: Path, cache: Path) -> None:
    archive = write_zip(write_folder(tmp_path / "images"), tmp_path / "data.zip")
    first = read_imagefolder(archive)
    files = list(cache.iterdir())
    assert [f.name for f in files] == [f"{first.digest}-v1.npz"]
    # A second load reads the cache: doctor it (validly) and the load returns the doctored x.
    doctored = 255 - first.x
    np.savez(files[0], x=doctored, y=first.y, classes=np.array(first.classes))
    second = read_imagefolder(archive)
    assert np.array_equal(second.x, doctored) and np.array_equal(second.y, first.y)
    assert second.classes == first.classes and second.digest == first.digest


def test_the_cache_goes_under_xdg_without_evo_cache(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "evo" / "imagefolder"
    data = read_imagefolder(write_folder(tmp_path / "images"))
    assert (tmp_path / "xdg" / "evo" / "imagefolder" / f"{data.digest}-v1.npz").is_file()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "float_x", "missing_y", "bad_y"])
def test_a_damaged_cache_is_rebuilt(tmp_path: Path, cache: Path, damage: str) -> None:
    folder = write_folder(tmp_path / "images")
    good = read_imagefolder(folder)
    file = cache / f"{good.digest}-v1.npz"
    raw = file.read_bytes()
    if damage == "garbage":
        file.write_bytes(b"not an npz at all")
    elif damage == "truncated":
        file.write_bytes(raw[: len(raw) // 2])
    elif damage == "float_x":
        np.savez(file, x=good.x.astype(np.float32), y=good.y, classes=np.array(good.classes))
    elif damage == "missing_y":
        np.savez(file, x=good.x, classes=np.array(good.classes))
    else:
        np.savez(file, x=good.x, y=good.y[::-1].copy(), classes=np.array(good.classes))
    again = read_imagefolder(folder)
    assert np.array_equal(again.x, good.x) and np.array_equal(again.y, good.y)
    with np.load(file, allow_pickle=False) as rebuilt:  # rewritten with the decoded arrays
        assert np.array_equal(rebuilt["x"], good.x) and np.array_equal(rebuilt["y"], good.y)
    assert [f.name for f in cache.iterdir()] == [file.name]  # no temporary file left


def test_a_changed_folder_is_decoded_again(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "images")
    before = read_imagefolder(folder)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(folder / "dog" / "9999.png")
    after = read_imagefolder(folder)
    assert after.digest != before.digest and len(after.y) == 19 and after.x[-1].max() == 0


def test_validation_split_is_balanced_disjoint_complete_and_seeded() -> None:
    y = np.repeat(np.arange(3), 20)
    train, val = validation_split(y, 9, seed=0)
    assert train.dtype == val.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.union1d(train, val), np.arange(60))
    assert np.bincount(y[val]).tolist() == [3, 3, 3]
    again = validation_split(y, 9, seed=0)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    assert not np.array_equal(validation_split(y, 9, seed=1)[1], val)
    assert split_name(9, 0) == "val9-seed0"


def test_validation_split_spreads_a_remainder_and_refuses_too_small_classes() -> None:
    y = np.repeat(np.arange(3), 5)
    assert np.bincount(y[validation_split(y, 8, 0)[1]]).tolist() == [3, 3, 2]
    train, val = validation_split(y, 0, 0)
    assert val.size == 0 and np.array_equal(train, np.arange(15))
    with pytest.raises(UsageError, match="class 0 has 5 images, too few to hold out 5"):
        validation_split(y, 15, 0)
    with pytest.raises(UsageError, match=">= 0"):
        validation_split(y, -1, 0)


def test_the_fisher_pool_leaves_out_the_default_validation_split() -> None:
    y = np.repeat(np.arange(10), 600)
    pool = fisher_pool(y)
    assert np.array_equal(pool, validation_split(y, 5000, 0)[0]) and len(pool) == 1000
    small = np.repeat(np.arange(3), 6)  # too few for val5000: every image
    assert np.array_equal(fisher_pool(small), np.arange(18))


def _entries(root: Path, files: dict[str, bytes | np.ndarray]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            Image.fromarray(content).save(path)
    return root


IMG = np.zeros((8, 8, 3), dtype=np.uint8)


def _half_a_png() -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels(0, 0, (64, 64))).save(out, format="PNG")
    return out.getvalue()[: len(out.getvalue()) // 2]


BAD = {
    "no class folders": ({}, "no class folders (expected CLASS/IMAGE)"),
    "loose image": ({"a/1.png": IMG, "b/1.png": IMG, "stray.png": IMG},
                    "stray.png lies outside the class folders"),
    "one class": ({"train/a/1.png": IMG}, "needs at least 2 class folders, found only "
                                          "train/a"),
    "not an image": ({"a/1.png": IMG, "b/1.png": IMG, "b/notes.txt": b"hello"},
                     "b/notes.txt is not a decodable image (UnidentifiedImageError)"),
    "truncated image": ({"a/1.png": IMG, "b/1.png": IMG, "b/2.png": _half_a_png()},
                        "b/2.png is not a decodable image (OSError)"),
    "different sizes": ({"a/1.png": IMG, "b/1.png": np.zeros((9, 8, 3), dtype=np.uint8)},
                        "images of different sizes (width x height): a/1.png is 8x8, "
                        "b/1.png is 8x9"),
}


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_imagefolder_is_one_usage_error_and_writes_nothing(
        tmp_path: Path, cache: Path, case: str, as_zip: bool) -> None:
    files, message = BAD[case]
    path = _entries(tmp_path / "images", files)
    path.mkdir(exist_ok=True)
    if as_zip:
        path = write_zip(path, tmp_path / "images.zip")
    with pytest.raises(UsageError) as error:
        read_imagefolder(path)
    assert str(error.value).startswith(f"--data imagefolder:{path}: ")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not cache.exists()


def test_an_empty_class_folder_is_an_error(tmp_path: Path) -> None:
    path = _entries(tmp_path / "images", {"a/1.png": IMG, "c/1.png": IMG})
    (path / "b").mkdir()
    with pytest.raises(UsageError, match="class folder b has no images"):
        read_imagefolder(path)


@pytest.mark.parametrize("name,message", [("missing.zip", "no such file or folder"),
                                          ("notes.txt", "not a folder or a zip archive")])
def test_a_path_that_is_not_a_folder_or_zip_is_an_error(tmp_path: Path, name: str,
                                                        message: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UsageError, match=message):
        read_imagefolder(tmp_path / name)
    with pytest.raises(UsageError, match=message):
        parse_data(f"imagefolder:{tmp_path / name}")


def test_load_train_data_validates_on_a_split_and_normalises_on_the_rest(
        tmp_path: Path) -> None:
    archive = write_zip(write_folder(tmp_path / "images"), tmp_path / "data.zip")
    data = load_train_data(f"imagefolder:{archive}", val_split=3, split_seed=0)
    images = read_imagefolder(archive)
    train, val = validation_split(images.y, 3, 0)
    assert data.x_train.dtype == data.x_test.dtype == torch.uint8
    assert np.array_equal(data.x_train.numpy(), images.x[train])
    assert np.array_equal(data.x_test.numpy(), images.x[val])
    assert data.y_test.tolist() == [0, 1, 2] and len(data.y_train) == 15
    assert data.eval_name == (f"validation split val3-seed0 of data.zip "
                              f"(sha256 {images.digest[:12]})")
    assert data.eval_kind == "validation"
    mean = images.x[train].astype(np.float64).mean(axis=(0, 2, 3)) / 255.0
    assert np.allclose(data.mean.flatten().numpy(), mean, atol=1e-5)
    assert np.allclose(data.normalisation()["mean"], mean, atol=1e-5)
    other = load_train_data(f"imagefolder:{archive}", val_split=3, split_seed=1)
    assert not np.array_equal(other.x_test.numpy(), data.x_test.numpy())
    with pytest.raises(UsageError, match="--val-split 0: training on imagefolder data needs"):
        load_train_data(f"imagefolder:{archive}", val_split=0)
    with pytest.raises(UsageError, match="class 0 has 6 images"):
        load_train_data(f"imagefolder:{archive}", val_split=18)


def test_load_batch_draws_a_seeded_normalised_minibatch(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "images")
    spec = parse_data(f"imagefolder:{folder}")
    images = read_imagefolder(folder)
    assert spec.kind == "imagefolder" and images.digest in spec.identity
    x, y = load_batch(spec, (3, 8, 8), batch=5, classes=3, seed=4)
    chosen = np.sort(np.random.default_rng(4).choice(18, size=5, replace=False))
    mean, std = channel_stats(images.x)  # 18 images: too few for val5000, so all of them
    expected = (images.x[chosen].astype(np.float32) / 255.0 - mean) / std
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert np.allclose(x.numpy(), expected, atol=1e-6) and y.tolist() == images.y[chosen].tolist()
    again, _ = load_batch(spec, (3, 8, 8), batch=5, classes=3, seed=4)
    assert np.array_equal(again.numpy(), x.numpy())
    with pytest.raises(UsageError, match="images are 3x8x8, the model's input is 3x32x32"):
        load_batch(spec, (3, 32, 32), batch=5, classes=3, seed=4)
    with pytest.raises(UsageError, match="labels must be in"):
        load_batch(spec, (3, 8, 8), batch=18, classes=2, seed=0)
    with pytest.raises(UsageError, match="fewer than batch 19"):
        load_batch(spec, (3, 8, 8), batch=19, classes=3, seed=0)


def test_channel_stats_match_a_float_computation() -> None:
    x = np.random.default_rng(0).integers(0, 256, (7, 3, 5, 4), dtype=np.uint8)
    mean, std = channel_stats(x)
    floats = x.astype(np.float64) / 255.0
    assert np.allclose(mean.ravel(), floats.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(std.ravel(), floats.std(axis=(0, 2, 3)), atol=1e-6)


def test_parse_data_names_imagefolder_among_the_kinds() -> None:
    with pytest.raises(UsageError, match="imagefolder:PATH"):
        parse_data("jpegs:/tmp")


@pytest.mark.parametrize("command", ["fisher", "train"])
def test_a_bad_imagefolder_on_the_command_line_exits_2_with_one_line(
        tmp_path: Path, command: str) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    args = ["--model", "tiny", "--data", f"imagefolder:{bad}"]
    if command == "train":
        args += ["--epochs", "1", "--out", str(tmp_path / "out"), "--quiet"]
    result = subprocess.run([sys.executable, "-m", "evo", command, *args], capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "EVO_CACHE": str(tmp_path / "c")})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"evo {command}: error: --data imagefolder:{bad}: not a folder or a zip archive"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "c").exists()


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_file(), reason=f"no {REAL}")
def test_the_cifar10_jpeg_archive(cache: Path) -> None:
    data = read_imagefolder(REAL)
    assert data.x.shape == (50_000, 3, 32, 32) and data.x.dtype == np.uint8
    assert data.classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                            "horse", "ship", "truck")
    assert np.bincount(data.y).tolist() == [5000] * 10
    train, val = validation_split(data.y, 5000, 0)
    assert np.bincount(data.y[val]).tolist() == [500] * 10 and len(train) == 45_000
    assert np.array_equal(fisher_pool(data.y), train)
    warm = read_imagefolder(REAL)  # from the cache written by the first load
    assert (cache / f"{data.digest}-v1.npz").is_file()
    assert np.array_equal(warm.x, data.x) and np.array_equal(warm.y, data.y)
    mean, _ = channel_stats(data.x[train])
    assert np.allclose(mean.ravel(), [0.491, 0.482, 0.446], atol=0.01)  # CIFAR-10's means
