"""`evo measure` and `evo bench-measure`, run as real subprocesses."""

from __future__ import annotations

import contextlib
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


MODEL = """
from torch import nn


def three_convs():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1))
"""


def test_measure_twice_the_second_run_is_served_from_the_cache(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    model = f"{tmp_path / 'model.py'}:three_convs"
    cache = str(tmp_path / "cache.sqlite")
    args = ("--model", model, "--input-shape", "1,3,16,16", "--cache", cache, "--jobs", "1")
    first = measure_json(*args)
    ids = [s["id"] for s in first["slots"]]
    assert len(ids) == 3 and first["distinct_programs"] == 2  # two 8->8 convs: one program
    assert not any(s["cached"] for s in first["slots"])
    assert first["slots"][1]["ms"] == first["slots"][2]["ms"]
    assert first["total_ms"] == pytest.approx(sum(s["ms"] for s in first["slots"]))
    assert all(s["repeats"] >= 5 and s["threads"] >= 1 for s in first["slots"])
    second = evo("measure", *args)  # another process, the text table
    assert second.returncode == 0, second.stderr
    lines = second.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines[1:4]}
    for slot in first["slots"]:
        assert f"{slot['ms']:.4f}" in rows[slot["id"]] and "cache" in rows[slot["id"]].split()
    assert lines[-1] == f"from cache: 3 of 3 slots ({cache})"
    total = (f"total: {first['total_ms']:.4f} ms = sum over 3 slots "
             f"(2 distinct programs; threads {first['slots'][0]['threads']})")
    assert total in lines


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
    (("--model", "tiny", "--evaluator", "tvm", "--target", "{bad"), "--target"),
    (("--model", "tiny", "--backend", "dask"), "--scheduler"),
    (("--model", "tiny", "--cache", "x.sqlite", "--no-cache"), "contradict"),
    (("--model", "tiny", "--evaluator", "fast"), "invalid choice"),
])
def test_measure_bad_input_is_one_line_and_exit_two(args, fragment, tmp_path, monkeypatch,
                                                     capsys):
    from evo.cli import main

    monkeypatch.chdir(tmp_path)  # nothing may be written where the tests run
    evaluator = () if "--evaluator" in args else ("--evaluator", "analytic")
    with contextlib.suppress(SystemExit):  # argparse exits 2 itself
        assert main(["measure", *args, *evaluator]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_measure_rejects_a_genome_for_unknown_slots(tmp_path, capsys):
    from evo.cli import main

    genome = tmp_path / "g.json"
    genome.write_text(json.dumps({"schema": 1, "layers": {"nope": [{"gene": "parallel"}]}}))
    code = main(["measure", "--model", "tiny", "--evaluator", "analytic", "--no-cache",
                 "--genome", str(genome)])
    assert code == 2
    assert "unknown slot 'nope'" in capsys.readouterr().err


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
    floor = report["host_floor"]
    assert len(floor["medians_ms"]) == 3 and min(floor["medians_ms"]) > 0
    assert floor["threads"] == 1 and floor["spread"] >= 0
