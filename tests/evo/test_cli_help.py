"""Every command's --help ends with examples, every example parses with the real
parser, and the cheap ones (tiny, analytic) run, in order, in real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evo.cli import build_parser
from tests.evo.cli_examples import argv_of, examples, parsers

ROOT = Path(__file__).resolve().parents[2]
HELPS = {" ".join(words): parser.format_help() for words, parser in parsers()}


@pytest.mark.parametrize("command", sorted(HELPS))
def test_every_help_ends_with_copy_pasteable_examples(command: str) -> None:
    text = HELPS[command]
    found = examples(text)
    assert len(found) >= 2 if command else len(found) >= 4, text
    assert text.rstrip().endswith(text.partition("\nexamples:\n")[2].rstrip())
    for example in found:  # an example of `evo status` runs `evo status`
        assert f"{example} ".startswith(f"evo {command} ".replace("  ", " ")), example


@pytest.mark.parametrize("command", sorted(HELPS))
def test_every_example_parses_with_the_real_parser(command: str) -> None:
    for example in examples(HELPS[command]):
        try:
            args = build_parser().parse_args(argv_of(example))
        except SystemExit as exc:  # only `evo run --help` may leave the parser
            assert exc.code == 0 and "--help" in example, f"{example!r} does not parse"
            continue
        assert callable(args._run)


def test_examples_keep_their_lines_and_the_description_is_still_wrapped() -> None:
    text = HELPS["run"]
    assert "  evo run --model tiny --evaluator analytic --population 4 --generations 1 " \
           "--out runs/demo\n" in text
    assert max(len(line) for line in text.partition("\nexamples:\n")[0].splitlines()) <= 100


def _cheap(argv: list[str]) -> bool:
    """Whether an example is quick here: the tiny network or the analytic run
    `runs/demo` of it, no TVM search, training or benchmark, few genomes to verify."""
    command = argv[0]
    if command in ("train", "bench", "bench-measure") or "--help" in argv:
        return False
    if any(a.startswith("runs/") and not a.startswith("runs/demo") for a in argv):
        return False
    option = dict(zip(argv, [*argv[1:], ""], strict=True))
    if option.get("--model", "tiny") != "tiny" or "--data" in option:
        return False
    if command in ("run", "measure") and option.get("--evaluator") != "analytic":
        return False
    return not (command == "verify" and int(option.get("--random", 50)) > 20)


@pytest.mark.slow
def test_the_cheap_examples_run(tmp_path: Path) -> None:
    order = ["run", "resume", "status", "lineage", "report", "export", "genome", "slots",
             "fisher", "measure", "verify"]
    argvs: list[list[str]] = []
    for text in HELPS.values():
        argvs += [a for a in map(argv_of, examples(text)) if _cheap(a) and a not in argvs]
    argvs.sort(key=lambda a: order.index(a[0]))
    assert {a[0] for a in argvs} == set(order), argvs
    (tmp_path / "layer.json").write_text(json.dumps([{"gene": "tile", "axis": "co",
                                                      "factor": 8}]))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVO_CACHE": str(tmp_path / "cache")}
    for argv in argvs:
        done = subprocess.run([sys.executable, "-m", "evo", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"evo {' '.join(argv)}: {done.stderr[-2000:]}"
        if argv[:1] == ["lineage"] and "dot" in argv:
            assert done.stdout.startswith("digraph lineage {")
    assert (tmp_path / "runs/demo/winner/network.so").is_file()
    assert (tmp_path / "runs/demo/report/report.md").is_file()

