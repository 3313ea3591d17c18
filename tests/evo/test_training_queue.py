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


def test_report_recommends_a_check_whose_ranking_holds_on_synthetic_data(
        tmp_path: Path) -> None:
    """The report's last column is tau between the study's ratios (real images) and a
    search's (synthetic minibatch); the recommended check only uses measures that see
    no data or keep their ranking there."""
    import json

    from scipy.stats import kendalltau

    from benchmarks.calibration_report import markdown, table

    def lines(path: Path, rows: list[dict]) -> Path:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return path

    names = ["original", *(f"g{i}" for i in range(1, 9))]
    acc = dict(zip(names, (0.75, 0.75, 0.745, 0.742, 0.70, 0.68, 0.65, 0.62, 0.60),
                   strict=True))  # g1-g3 keep accuracy (within a point of 0.75)
    ratio = dict(zip(names, (1.0, 0.95, 0.9, 0.85, 0.7, 0.6, 0.5, 0.4, 0.3), strict=True))
    results = lines(tmp_path / "r.jsonl", [
        {"name": f"{n}-s0", "tags": [n], "accuracy": acc[n]} for n in names])
    measures = lines(tmp_path / "m.jsonl", [  # flops and snip rank the genomes alike
        {"name": n, "measures": {"flops": 100 * ratio[n], "snip": 10 * ratio[n]}}
        for n in names])
    shuffled = dict(zip(names[1:], (0.5, 0.9, 0.3, 0.95, 0.4, 0.85, 0.6, 0.7), strict=True))
    synthetic = lines(tmp_path / "s.jsonl", [
        {"name": n, "ratios": {"snip": shuffled[n]}} for n in names[1:]])
    study = table(results, measures, splits=20, synthetic=synthetic)
    rows = {row["measure"]: row for row in study["rows"]}
    expected = kendalltau([ratio[n] for n in names[1:]], [shuffled[n] for n in names[1:]])
    assert rows["snip"]["synthetic_tau"] == pytest.approx(expected.statistic)
    assert rows["snip"]["synthetic_tau"] < 0.8 and rows["flops"]["synthetic_tau"] is None
    assert rows["snip"]["cv"]["precision"] == rows["flops"]["cv"]["precision"] == 1.0
    assert study["recommended"]["spec"] == "flops@0.85"  # not snip: ranking not kept
    text = markdown(study)
    assert "tau real vs synthetic data |" in text
    assert text.split("| snip |")[1].splitlines()[0].endswith(
        f"| {rows['snip']['synthetic_tau']:.2f} | - |")  # no inflation probe measured
    assert "`--capacity flops@0.85`" in text
    # where the synthetic ranking holds, snip (listed first among equals) is eligible too
    lines(synthetic, [{"name": n, "ratios": {"snip": ratio[n]}} for n in names[1:]])
    again = table(results, measures, splits=20, synthetic=synthetic)
    assert again["recommended"]["spec"] in ("flops@0.85", "snip@0.85")


def test_without_a_rule_at_90_percent_the_report_names_the_most_precise_uninflated_one(
        tmp_path: Path) -> None:
    """No rule reaches 90 % here (a loser sits at the top of every measure), so the
    report says so and names the most precise rule at recall >= 50 %; params would be
    it, but Seq3 everywhere raises it, so flops is named."""
    import json

    from benchmarks.calibration_report import markdown, table

    def lines(path: Path, rows: list[dict]) -> Path:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return path

    names = ["original", *(f"g{i}" for i in range(1, 9)), "seq3-4-all"]
    acc = dict(zip(names, (0.75, 0.70, 0.75, 0.745, 0.742, 0.65, 0.74, 0.62, 0.60, 0.71),
                   strict=True))  # g1 loses at the top; g2, g3, g4 and g6 keep
    flops = dict(zip(names, (1.0, 0.97, 0.9, 0.85, 0.8, 0.7, 0.65, 0.4, 0.3, 1.0),
                     strict=True))
    # params ranks g6 above g5 (params@0.75: 4 of 6 keep, 67 %; flops@0.8: 3 of 5, 60 %)
    params = {**flops, "g5": 0.6, "g6": 0.75, "seq3-4-all": 4.0}
    results = lines(tmp_path / "r.jsonl", [
        {"name": f"{n}-s0", "tags": [n], "accuracy": acc[n]} for n in names])
    measures = lines(tmp_path / "m.jsonl", [
        {"name": n, "measures": {"flops": 100 * flops[n], "params": 10 * params[n]}}
        for n in names])
    study = table(results, measures, splits=40, synthetic=tmp_path / "none.jsonl")
    rows = {row["measure"]: row for row in study["rows"]}
    assert rows["params"]["inflated"] == pytest.approx(4.0)
    assert rows["flops"]["inflated"] == pytest.approx(1.0)
    best = study["recommended"]
    assert best is not None and not best["reaches"]
    assert best["measures"] == ["flops"] and best["spec"] == "flops@0.8"
    text = markdown(study)
    assert "none reaches it; the most precise eligible rule fitted at recall >= 50% is " \
           "`--capacity flops@0.8`" in text
    assert text.split("| params |")[1].splitlines()[0].endswith("| 4.00 |")
