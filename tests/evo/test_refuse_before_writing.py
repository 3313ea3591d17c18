"""Commands refuse before they create or change anything: `evo run --out` over another
run leaves that folder byte-for-byte as it was, and `evo bench --run` imports no model
code a run folder names unless asked. Real folders and real runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from evo.cli import main
from tests.evo.analytic_run import MARKING_MODEL, copy_run, make_analytic_run

RUN = ["--model", "tiny", "--evaluator", "analytic", "--population", "4", "--generations",
       "1", "--quiet"]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    return make_analytic_run(tmp_path_factory.mktemp("made") / "r")


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder`: a link's target, a file's bytes and mode."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = os.lstat(path)
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = ("link", os.readlink(path))
        elif path.is_file():
            found[key] = ("file", path.read_bytes(), info.st_mode, info.st_mtime_ns)
        else:
            found[key] = ("folder", info.st_mode)
    return found


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"evo {argv[0]}: error: "), err
    return err


@pytest.mark.parametrize("holds", ["whole run", "config.json", "run.sqlite",
                                   "config.json link"])
def test_run_out_over_another_run_changes_nothing(made: Path, tmp_path: Path, capsys,
                                                  holds: str) -> None:
    out = tmp_path / "x"
    if holds == "whole run":
        copy_run(made, out)
    else:
        out.mkdir()
        if holds == "config.json link":  # a dangling one: config.save would write through it
            (out / "config.json").symlink_to(tmp_path / "elsewhere.json")
        else:
            shutil.copyfile(made / holds, out / holds)
    before = snapshot(out)
    err = one_line_error(capsys, ["run", *RUN, "--out", str(out), "--cache",
                                  str(tmp_path / "c.sqlite")])
    assert "already holds a run" in err and f"evo resume {out}" in err
    assert snapshot(out) == before
    assert not (tmp_path / "elsewhere.json").exists() and not (tmp_path / "c.sqlite").exists()


def test_bench_imports_the_model_config_names_only_when_asked(made: Path, tmp_path: Path,
                                                              capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    net = tmp_path / "src" / "net.py"
    net.parent.mkdir()
    net.write_text(MARKING_MODEL)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "model": f"{net}:build"}))
    argv = ["bench", "--run", str(run), "--metaschedule-trials-per-task", "0", "--peers",
            "none", "--threads", "1"]
    err = one_line_error(capsys, argv)
    assert "--trust-model-code" in err and "net.py:build" in err
    assert not (net.parent / "imported").exists() and not (run / "bench").exists()
    # Trusted, it imports the model and goes on to benchmark it; here it stops at the
    # first check that needs the network built (a program-only run of another model),
    # which keeps the test short: rows are measured in tests/evo/test_bench_command.py.
    err = one_line_error(capsys, [*argv, "--trust-model-code", "--program-run", str(made)])
    assert (net.parent / "imported").exists()
    assert f"--program-run {made}: model 'tiny'" in err
