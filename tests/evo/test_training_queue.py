"""The benchmark training queue: results appended once per job, finished jobs skipped,
two worker processes sharing one queue train every job exactly once; and the
calibration report's rank statistics and legality-rule numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.calibration_report import relative
from benchmarks.calibration_rules import cross_validated, fit_thresholds, fitted, rule
from benchmarks.training_queue import Job, claim, finished, release, run_queue
from evo.training import TrainSettings
from tests.evo.test_train_imagefolder import easy_zip

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVO_CACHE", str(tmp_path / "cache"))


def jobs(data: Path, count: int) -> list[Job]:
    return [Job(f"job{i}", TrainSettings("tiny", {"schema": 1, "layers": {}},
                                         f"imagefolder:{data}", 1, batch_size=16, seed=i,
                                         val_split=20), ("tiny",)) for i in range(count)]


def test_queue_appends_each_result_once_and_skips_finished(tmp_path: Path) -> None:
    data = easy_zip(tmp_path / "easy.zip", per_class=4)
    results, runs = tmp_path / "results.jsonl", tmp_path / "runs"
    assert run_queue(jobs(data, 2), results, runs, threads=1) == 2
    rows = finished(results)
    assert sorted(rows) == ["job0", "job1"]
    assert rows["job1"]["settings"]["seed"] == 1 and rows["job1"]["eval_images"] == 20
    assert "val20-seed0" in rows["job0"]["evaluated_on"]
    assert run_queue(jobs(data, 3), results, runs, threads=1) == 1  # only job2 is new
    assert len(results.read_text().splitlines()) == 3
    assert not list(runs.glob("*.claim"))


def test_a_live_claim_is_respected_and_a_dead_one_taken_over(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "a.claim").write_text(str(sleeper.pid))
        assert not claim(tmp_path, "a")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert claim(tmp_path, "a")  # its holder is gone
    assert (tmp_path / "a.claim").read_text() == str(os.getpid())
    release(tmp_path, "a")
    assert not (tmp_path / "a.claim").exists()


def test_two_workers_share_a_queue(tmp_path: Path) -> None:
    data = easy_zip(tmp_path / "easy.zip", per_class=4)
    script = textwrap.dedent(f"""
        from pathlib import Path
        from benchmarks.training_queue import Job, run_queue
        from evo.training import TrainSettings
        jobs = [Job(f"job{{i}}", TrainSettings("tiny", {{"schema": 1, "layers": {{}}}},
                "imagefolder:{data}", 1, batch_size=16, seed=i, val_split=20))
                for i in range(4)]
        print(run_queue(jobs, Path({str(tmp_path / 'r.jsonl')!r}),
                        Path({str(tmp_path / 'runs')!r}), threads=1))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    counts = [int(w.communicate(timeout=600)[0].strip().splitlines()[-1]) for w in workers]
    assert all(w.returncode == 0 for w in workers)
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["name"] for line in lines) == [f"job{i}" for i in range(4)]
    assert sum(counts) == 4


def test_relative_measures_are_oriented_so_more_is_more_capacity() -> None:
    assert relative("params", 50.0, 100.0) == 0.5
    assert relative("short_loss", 2.0, 1.0) == 0.5  # a higher loss is less capacity
    assert relative("jacob_cov", -130.0, -65.0) == 0.5
    assert relative("synflow", 1e10, 1e20) == pytest.approx(0.5)
    assert relative("params", None, 100.0) is None


def test_legality_rule_precision_recall_and_fitted_threshold() -> None:
    import numpy as np

    r = np.array([0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 0.3, 0.9])
    keeps = np.array([False, False, True, True, True, True, False, False])
    assert rule(r >= 0.6, keeps) == {"accepted": 5, "precision": 4 / 5, "recall": 1.0}
    fit = np.array([True, True, True, True, False, False, False, False])
    one = fitted([r], keeps, fit, 0.9)
    assert one["threshold"] == 0.6  # the lowest with precision >= 90 % on the fit half
    assert one["held_out"] == {"accepted": 3, "precision": 2 / 3, "recall": 1.0}
    assert fitted([r], ~keeps, fit, 0.9) == {"threshold": None}  # more is never better


def test_a_pair_rule_finds_what_neither_measure_finds_alone() -> None:
    import numpy as np

    # keepers are high on both measures; each measure alone also rates a loser high
    a = np.array([0.9, 0.8, 0.95, 0.3, 0.2, 0.85, 0.4])
    b = np.array([0.9, 0.85, 0.2, 0.95, 0.3, 0.8, 0.4])
    keeps = np.array([True, True, False, False, False, True, False])
    assert fit_thresholds([a], keeps, 0.9) is None  # 0.95 is a loser: never >= 90 %
    assert fit_thresholds([b], keeps, 0.9) is None
    # both: every keeper and no loser, the lowest such thresholds
    assert fit_thresholds([a, b], keeps, 0.9) == (0.4, 0.8)
    pooled = cross_validated([a, b], keeps, 0.9, splits=50)
    assert pooled["splits"] == 50 and 0 < pooled["found"] <= 1
    assert pooled["precision"] is not None and pooled["precision"] >= 0.5
    never = cross_validated([a], keeps, 0.9, splits=20)
    assert never["precision"] is None or never["precision"] < 1.0


def test_report_shows_how_a_measure_agrees_on_synthetic_data(tmp_path: Path) -> None:
    """The report's last column: tau between the study's ratios (real images) and a
    search's (synthetic minibatch), over the genomes measured both ways."""
    import json

    from benchmarks.calibration_report import markdown, table

    def lines(path: Path, rows: list[dict]) -> Path:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return path

    names = ["original", "a", "b", "c", "d"]
    acc = {"original": 0.75, "a": 0.74, "b": 0.70, "c": 0.65, "d": 0.60}
    flops = {"original": 100.0, "a": 90.0, "b": 70.0, "c": 50.0, "d": 30.0}
    snip = {"original": 10.0, "a": 9.0, "b": 8.0, "c": 7.0, "d": 6.0}
    results = lines(tmp_path / "r.jsonl", [
        {"name": f"{n}-s0", "tags": [n], "accuracy": acc[n]} for n in names])
    measures = lines(tmp_path / "m.jsonl", [
        {"name": n, "measures": {"flops": flops[n], "snip": snip[n]}} for n in names])
    # on synthetic data snip ranks b and c the other way round: tau 4/6 over a-d
    synthetic = lines(tmp_path / "s.jsonl", [
        {"name": n, "ratios": {"snip": {"a": 0.9, "b": 0.7, "c": 0.8, "d": 0.6}[n]}}
        for n in names[1:]])
    study = table(results, measures, splits=4, synthetic=synthetic)
    rows = {row["measure"]: row for row in study["rows"]}
    assert rows["snip"]["synthetic_tau"] == pytest.approx(4 / 6)
    assert rows["flops"]["synthetic_tau"] is None
    text = markdown(study)
    assert "tau real vs synthetic data |" in text
    assert "| snip |" in text and text.split("| snip |")[1].splitlines()[0].endswith("| 0.67 |")
