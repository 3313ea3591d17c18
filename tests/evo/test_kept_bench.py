"""benchmarks.kept_bench: its folder survives a session through its archive, and
--status says which steps are done (the steps themselves are `evo bench` and `evo
confirm`, tested on their own)."""

from __future__ import annotations

import json
import sqlite3
import tarfile
from pathlib import Path

from benchmarks import kept_bench


def _where(tmp_path: Path) -> dict[str, Path]:
    runs = tmp_path / "runs"
    runs.mkdir()
    return {"folder": runs / "kept-tiny-1m", "log": runs / "kept-tiny-1m.log",
            "archive": tmp_path / "checkpoints" / "kept-tiny-1m.tar.xz",
            "results": tmp_path / "results" / "kept-tiny-1m"}


def test_the_folder_is_archived_and_restored_when_missing(tmp_path: Path) -> None:
    where = _where(tmp_path)
    search = where["folder"] / "search"
    search.mkdir(parents=True)
    with sqlite3.connect(search / "run.sqlite") as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (42)")
    where["log"].write_text("generation 0\n")
    kept_bench.archive(where)
    assert where["archive"].is_file()
    kept_bench.restore(where)  # the folder is there: nothing to do
    for path in sorted(where["folder"].rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    where["folder"].rmdir()
    where["log"].unlink()
    kept_bench.restore(where)
    with sqlite3.connect(search / "run.sqlite") as db:
        assert db.execute("SELECT x FROM t").fetchall() == [(42,)]
    assert where["log"].read_text() == "generation 0\n"


def test_the_archive_leaves_out_the_trainings_weights(tmp_path: Path) -> None:
    where = _where(tmp_path)
    training = where["folder"] / "search" / "confirm-e5" / "n0123-s0"
    training.mkdir(parents=True)
    for name in ("train.json", "history.json", "checkpoint.pt", "checkpoint.pt.partial",
                 "weights.pt"):
        (training / name).write_text(name)
    (training.parent / "results.jsonl").write_text('{"name": "n0123-s0"}\n')
    kept_bench.archive(where)
    with tarfile.open(where["archive"]) as tar:
        names = sorted(Path(n).name for n in tar.getnames() if tar.getmember(n).isfile())
    assert names == ["history.json", "results.jsonl", "train.json"]


def test_status_names_the_steps_done(tmp_path: Path) -> None:
    where = _where(tmp_path)
    folder = where["folder"]
    assert "bench: not done" in kept_bench.status(where)
    (folder / "search" / "confirm-e5").mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"individual": 7}))
    (folder / "search" / "confirm-e5" / "confirm.json").write_text(
        json.dumps({"fastest_kept": 9}))
    text = kept_bench.status(where)
    assert "bench: done" in text and "fastest kept #9" in text
    assert "rows of #9: not done" in text
    (folder / "bench-9.json").write_text("{}")
    assert "rows of #9: done" in kept_bench.status(where)
    (folder / "result.json").write_text(json.dumps({"individual": 9}))
    assert "in result.json" in kept_bench.status(where)


def test_name_sets_every_path_and_refuses_a_path(capsys) -> None:
    where = kept_bench.paths("resnet20", "2h", "kept-resnet20-2h-again")
    assert where["folder"].name == "kept-resnet20-2h-again"
    assert where["archive"].name == "kept-resnet20-2h-again.tar.xz"
    assert where["log"].name == "kept-resnet20-2h-again.log"
    assert kept_bench.paths("resnet20", "2h")["folder"].name == "kept-resnet20-2h"
    for bad in ("../elsewhere", "a/b", ".hidden", ""):
        assert kept_bench.main(["resnet20", "--name", bad, "--status"]) == 2
        assert "a name, not a path" in capsys.readouterr().err
    assert not (kept_bench.REPO / "elsewhere").exists()


def test_threshold_names_the_run_and_refuses_a_floor_outside_0_1(capsys) -> None:
    assert kept_bench.paths("resnet18", "2h", threshold=0.25)["folder"].name \
        == "kept-resnet18-2h-floor0.25"
    assert kept_bench.paths("resnet18", "2h", "mine", 0.25)["folder"].name == "mine"
    for bad in ("0", "1.5", "-0.2"):
        assert kept_bench.main(["resnet18", "--threshold", bad, "--status"]) == 2
        assert "a FLOPs floor is in (0, 1]" in capsys.readouterr().err
    assert not (kept_bench.REPO / "runs" / "kept-resnet18-2h-floor1.5").exists()
