"""`evo confirm`: which candidates it trains, its verdicts, real trainings that resume,
and bad input refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evo.analysis import load_run
from evo.cli import main
from evo.training.confirm import candidates, verdict, walk
from tests.evo.synthetic_run import Planned, write_run

TILE = {"gene": "tile", "axis": "co", "factor": 8}
DEPTHWISE = {"schema": 1, "layers": {"layer1.conv2": [{"gene": "depthwise", "piece": None}]}}
GROUPED = {"gene": "group", "groups": 2}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVO_CACHE", str(tmp_path / "cache"))


def plan() -> list[Planned]:
    """Known answers: the front, fastest first, is 4 (depthwise, its faster schedule),
    6 (more capacity than anything faster) and 2 (the original's fastest schedule)."""
    dw = [{"gene": "depthwise"}]
    return [
        Planned(1, 0, (), "original", {}, 10.0, fisher=10.0),
        Planned(2, 0, (1,), "initial:template", {"conv2": [TILE]}, 5.0, fisher=10.0),
        Planned(3, 0, (1,), "initial:program", {"layer1.conv2": dw}, 3.0, fisher=6.0),
        Planned(4, 1, (3,), "mutate", {"layer1.conv2": [*dw, TILE]}, 2.0, fisher=6.0),
        Planned(5, 1, (1,), "mutate", {"conv2": [GROUPED]}, 2.5, fisher=5.0),  # dominated
        Planned(6, 1, (1,), "mutate", {"layer1.conv1": [GROUPED]}, 4.0, fisher=8.0),
        Planned(7, 1, (1,), "mutate", {"conv2": [GROUPED, TILE]}, 1.0, fisher=1.0,
                violation=0.5),  # illegal
        Planned(8, 1, (1,), "mutate", {"layer1.conv1": [GROUPED, GROUPED]}, 6.0,
                fisher=9.0),  # slower than the original's fastest schedule
    ]


def test_candidates_are_the_front_of_the_fastest_individual_per_neural_genome(
        tmp_path: Path) -> None:
    snap = load_run(write_run(tmp_path / "run", plan()))
    listed = candidates(snap)
    assert [c.ident for c in listed] == [4, 6, 2]
    assert listed[-1].is_original and not listed[0].is_original
    assert listed[0].neural.to_json() == DEPTHWISE  # program genes dropped
    assert listed[0].changes() == "depthwise()"


def test_the_verdict_compares_means_within_the_tolerance() -> None:
    original = [0.75, 0.74, 0.76]  # mean 0.75
    assert verdict([0.74], original, 1.0)
    assert not verdict([0.7399], original, 1.0)
    assert verdict([0.73, 0.75], original, 1.0)  # the candidate's mean
    assert not verdict([0.749], original, 0.0)


def test_bisection_finds_the_boundary_in_log_trainings_and_fastest_walks_in_order() -> None:
    def judged(order: str, boundary: int, count: int = 8, budget: int | None = None,
               train_all: bool = False) -> list[int]:
        return walk(count, lambda i: i >= boundary, order, budget, train_all)

    assert judged("bisect", 5) == [4, 6, 5]  # 5 is the fastest kept
    assert judged("bisect", 0) == [4, 2, 1, 0]
    assert judged("bisect", 8) == [4, 6, 7]  # none kept: the original is the answer
    assert judged("bisect", 5, budget=2) == [4, 6]
    assert judged("fastest", 5) == [0, 1, 2, 3, 4, 5]
    assert judged("fastest", 5, budget=3) == [0, 1, 2]
    assert judged("bisect", 5, train_all=True) == list(range(8))
    assert walk(3, lambda i: None if i == 1 else False, "fastest") == [0]  # cannot tell: stop
    assert walk(0, lambda i: True) == []


def write_images(root: Path, per_class: int = 24) -> Path:
    """Ten classes of 32x32 PNGs whose brightness tells the class."""
    rng = np.random.default_rng(0)
    for k in range(10):
        (root / f"c{k}").mkdir(parents=True)
        for i in range(per_class):
            pixels = (rng.integers(0, 60, (32, 32, 3)) + 19 * k).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"c{k}" / f"{i:04d}.png")
    return root


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_confirm_trains_the_original_then_stops_at_the_first_kept_and_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "run", plan())
    data = f"imagefolder:{write_images(tmp_path / 'images')}"
    common = [str(run), "--data", data, "--val-split", "40", "--epochs", "1",
              "--precision", "fp32", "--threads", "1"]
    assert main(["confirm", *common, "--original-seeds", "0,1", "--tolerance", "100",
                 "--order", "fastest"]) == 0
    out = run / "confirm-e1"
    names = [row["name"] for row in lines(out / "results.jsonl")]
    first = "n" + load_run(run).individual(4).genome.neural.hash()[:12] + "-s0"
    assert names == ["original-s0", "original-s1", first]  # stopped at a kept one
    summary = json.loads((out / "confirm.json").read_text())
    assert summary["fastest_kept"] == 4
    assert [r["kept"] for r in summary["candidates"]] == [True, None]
    said = capsys.readouterr().out
    assert "individual 4 (2.0000 ms):" in said and "keeps accuracy" in said
    assert "evo export" in said and "--id 4" in said and "2.50x" in said

    # again with --all: only candidate 6 is new; the rest is read back
    assert main(["confirm", *common, "--original-seeds", "0,1", "--tolerance", "100",
                 "--all"]) == 0
    rows = lines(out / "results.jsonl")
    assert [row["name"] for row in rows][:3] == names and len(rows) == 4
    assert all(row["settings"]["epochs"] == 1 and row["settings"]["precision"] == "fp32"
               for row in rows)
    summary = json.loads((out / "confirm.json").read_text())
    assert [r["kept"] for r in summary["candidates"]] == [True, True]

    # a second run (the same plan) adopts every training from the first one's results
    other = write_run(tmp_path / "other", plan())
    assert main(["confirm", str(other), *common[1:], "--original-seeds", "0,1",
                 "--tolerance", "100", "--all", "--reuse", str(out / "results.jsonl")]) == 0
    adopted = lines(other / "confirm-e1" / "results.jsonl")
    assert [row["name"] for row in adopted] == [row["name"] for row in rows]
    assert [row["accuracy"] for row in adopted] == [row["accuracy"] for row in rows]
    assert all(row["reused_from"].startswith(str(out / "results.jsonl")) for row in adopted)
    assert not any((other / "confirm-e1" / row["name"]).exists() for row in adopted)

    # a reusable line without a real accuracy (NaN here) is never adopted
    third = write_run(tmp_path / "third", plan())
    poisoned = tmp_path / "poisoned.jsonl"
    poisoned.write_text((out / "results.jsonl").read_text().replace(
        '"accuracy": ', '"accuracy": NaN, "was": ', 1))
    assert main(["confirm", str(third), *common[1:], "--original-seeds", "0,1",
                 "--tolerance", "100", "--reuse", str(poisoned), "--list"]) == 0
    assert "original: not trained yet" in capsys.readouterr().out

    # the same folder with another recipe: refused, nothing added
    before = (out / "results.jsonl").read_text()
    code = main(["confirm", *common, "--original-seeds", "0,1", "--out", str(out),
                 "--precision", "bf16"])
    assert code == 2 and "trained with other settings" in capsys.readouterr().err
    assert (out / "results.jsonl").read_text() == before


def test_bad_input_is_one_line_exit_2_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "run", plan())  # synthetic data, as written
    images = write_images(tmp_path / "images", per_class=2)
    empty = write_run(tmp_path / "empty", [Planned(1, 0, (), "original", {}, None)])
    cases = [
        ([str(tmp_path / "nowhere")], "no such run folder"),
        ([str(empty), "--data", f"imagefolder:{images}"], "no legal, measured individual"),
        ([str(run)], "synthetic data"),
        ([str(run), "--data", f"imagefolder:{tmp_path / 'missing.zip'}"], "missing.zip"),
        ([str(run), "--data", f"imagefolder:{images}", "--seeds", "0,x"], "comma-separated"),
        ([str(run), "--data", f"imagefolder:{images}", "--original-seeds", "1,1"],
         "distinct"),
        ([str(run), "--data", f"imagefolder:{images}", "--tolerance", "nan"], "tolerance"),
        ([str(run), "--data", f"imagefolder:{images}", "--reuse", str(tmp_path / "no.jsonl")],
         "no such results file"),
    ]
    for argv, needle in cases:
        assert main(["confirm", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not any(path.name.startswith("confirm") for path in run.iterdir())
