"""`evo verify` and `evo genome show`, run as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def evo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evo", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_verify_reports_count_and_exits_zero():
    result = evo("verify", "--layer", "16,24,8,8,3,1", "--random", "6", "--seed", "3", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "6 checked, 0 mismatches"


def test_verify_prints_mismatches_and_exits_one_when_tolerance_is_zero(tmp_path):
    genome = tmp_path / "g.json"
    genome.write_text(json.dumps([{"gene": "tile", "axis": "ci", "factor": 8}]))
    result = evo("verify", "--layer", "64,16,8,8,3,1", "--random", "0", "--genome", str(genome),
                 "--rtol", "0", "--atol", "0", "--quiet")
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "1 checked, 1 mismatches"
    assert lines[0].startswith("MISMATCH ")


@pytest.mark.parametrize("args,fragment", [
    (("verify", "--layer", "1,2,3"), "--layer '1,2,3'"),
    (("verify", "--layer", "16,16,8,8,3,1", "--target", "{bad"), "--target"),
    (("verify", "--layer", "16,16,8,8,3,1", "--genome", "/nonexistent.json"), "no such file"),
    (("genome", "show", "/nonexistent.json", "--layer", "16,16,8,8,3,1"), "no such file"),
    (("verify", "--layer", "16,16,8,8,3,1", "--bogus"), "unrecognized arguments"),
])
def test_bad_input_is_one_line_and_exit_two(args, fragment):
    result = evo(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # argparse adds a usage line
    assert "Traceback" not in result.stderr


def test_genome_show_prints_pieces_flops_and_params(tmp_path):
    genome = tmp_path / "seq1.json"
    genome.write_text(json.dumps({"schema": 1, "layers": {"conv": [
        {"gene": "split_channels", "groups": [1, 4]}, {"gene": "parallel"}]}}))
    result = evo("genome", "show", str(genome), "--layer", "32,64,8,8,3,1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "pieces  2" in out
    assert "out 0:32 <- in 0:32 groups 1" in out and "out 32:64 <- in 0:32 groups 4" in out
    # Seq1 with groups (1, 4): half the outputs at full cost, half at a quarter.
    full = 2 * 64 * 8 * 8 * 32 * 9
    assert f"FLOPs   {full * 5 // 8:,}" in out
    assert "params  11,520" in out


def test_genome_show_rejects_a_genome_that_does_not_apply(tmp_path):
    genome = tmp_path / "g.json"
    genome.write_text(json.dumps([{"gene": "group", "groups": 3}]))
    result = evo("genome", "show", str(genome), "--layer", "32,64,8,8,3,1")
    assert result.returncode == 2
    assert "not divisible by 3 groups" in result.stderr
