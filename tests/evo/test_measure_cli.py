"""`evo measure` and `evo bench-measure`, run as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def evo(*args: str, timeout: float = 600, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evo", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def measure_json(*args: str) -> dict:
    result = evo("measure", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_measure_twice_the_second_run_is_served_from_the_cache(tmp_path):
    cache = str(tmp_path / "cache.sqlite")
    first = measure_json("--model", "tiny", "--cache", cache, "--jobs", "2")
    second = measure_json("--model", "tiny", "--cache", cache)
    ids = [s["id"] for s in first["slots"]]
    assert ids and ids == [s["id"] for s in second["slots"]]
    assert not any(s["cached"] for s in first["slots"])
    assert all(s["cached"] for s in second["slots"])
    assert [s["ms"] for s in second["slots"]] == [s["ms"] for s in first["slots"]]
    assert first["total_ms"] == pytest.approx(sum(s["ms"] for s in first["slots"]))
    assert all(s["repeats"] >= 5 and s["threads"] >= 1 for s in first["slots"])
    text = evo("measure", "--model", "tiny", "--cache", cache)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[-1] == f"from cache: {len(ids)} of {len(ids)} slots ({cache})"
    assert lines[-2].startswith("total: ") and f"sum over {len(ids)} slots" in lines[-2]


def test_identical_slots_are_measured_once_and_a_genome_changes_its_slot(tmp_path):
    cache = str(tmp_path / "cache.sqlite")
    plain = measure_json("--model", "resnet18", "--evaluator", "analytic", "--cache", cache)
    assert plain["distinct_programs"] < len(plain["slots"])
    slot = plain["slots"][1]["id"]
    genome = tmp_path / "g.json"
    genome.write_text(json.dumps({"schema": 1, "layers": {slot: [
        {"gene": "tile", "axis": "ow", "factor": 8}, {"gene": "vectorize", "axis": "ow"}]}}))
    tuned = measure_json("--model", "resnet18", "--evaluator", "analytic", "--cache", cache,
                         "--genome", str(genome))
    by_id = {s["id"]: s for s in tuned["slots"]}
    assert by_id[slot]["genes"] == 2 and not by_id[slot]["cached"]
    assert by_id[slot]["ms"] < plain["slots"][1]["ms"]
    others = [s for s in tuned["slots"] if s["id"] != slot]
    assert all(s["cached"] for s in others)
    assert tuned["total_ms"] < plain["total_ms"]


@pytest.mark.parametrize("args,fragment", [
    (("--model", "no-such-model"), "no-such-model"),
    (("--model", "tiny", "--genome", "/nonexistent.json"), "no such file"),
    (("--model", "tiny", "--runner", "ssh://x"), "rpc://HOST:PORT/KEY"),
    (("--model", "tiny", "--target", "{bad"), "--target"),
    (("--model", "tiny", "--backend", "dask"), "--scheduler"),
    (("--model", "tiny", "--cache", "x.sqlite", "--no-cache"), "contradict"),
])
def test_measure_bad_input_is_one_line_and_exit_two(args, fragment, tmp_path):
    evaluator = "tvm" if "--target" in args else "analytic"
    result = evo("measure", *args, "--evaluator", evaluator, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_measure_rejects_a_genome_for_unknown_slots(tmp_path):
    genome = tmp_path / "g.json"
    genome.write_text(json.dumps({"schema": 1, "layers": {"nope": [{"gene": "parallel"}]}}))
    result = evo("measure", "--model", "tiny", "--evaluator", "analytic", "--genome",
                 str(genome), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown slot 'nope'" in result.stderr


@pytest.mark.parametrize("command", ["measure", "bench-measure"])
def test_help(command):
    result = evo(command, "--help")
    assert result.returncode == 0 and "--json" in result.stdout


@pytest.mark.slow
def test_bench_measure_reports_throughput_and_spread():
    result = evo("bench-measure", "--layers", "4", "--seconds", "120", "--jobs", "1",
                 "--repeats", "3", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (throughput,) = report["throughput"]
    assert throughput["jobs"] == 1 and throughput["programs"] + throughput["errors"] == 4
    assert throughput["per_hour"] > 0
    assert len(report["repeat"]["medians_ms"]) == 3 and report["repeat"]["spread"] >= 0
