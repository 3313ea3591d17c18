"""`evo bench` on a finished run: every row measured end to end, checked against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

from evo.cli import main


def test_bench_rows_and_speedups(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["run", "--model", "tiny", "--evaluator", "analytic", "--population", "6",
                 "--generations", "1", "--out", str(run), "--cache",
                 str(tmp_path / "cache.sqlite"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["bench", "--run", str(run), "--metaschedule-trials", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    names = [row["name"] for row in result["rows"]]
    assert names[:2] == ["tvm_program_only", "torch_eager_original"]
    assert names[-2:] == ["tvm_discovered", "torch_eager_discovered"]
    for row in result["rows"]:
        assert row["error"] is None and row["ms"] > 0
        if row["name"].startswith("tvm") or row["name"] == "blockswap":
            assert row["agreement"]["matches"]  # TVM end to end equals PyTorch
    ms = {row["name"]: row["ms"] for row in result["rows"]}
    assert result["speedup"]["vs_program_only"] == ms["tvm_program_only"] / ms["tvm_discovered"]
    assert result["speedup"]["vs_metaschedule"] is None
    original = result["rows"][0]
    assert original["fisher_ratio"] == 1.0


def test_bench_bad_run_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["bench", "--run", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err
