"""One output convention: every command with machine-readable output takes both
`--json` and `--format json` (the same thing), says so in its --help, and prints
the same JSON for either."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from evo.cli import build_parser, main
from tests.evo.analytic_run import make_analytic_run
from tests.evo.cli_examples import argv_of, examples, leaf_parsers

MACHINE_READABLE = {"status", "lineage", "slots", "fisher", "measure", "bench", "bench-measure"}
LEAVES = leaf_parsers()


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


@pytest.mark.parametrize("command", sorted(LEAVES))
def test_json_and_format_json_come_together(command: str) -> None:
    parser = LEAVES[command]
    options = _options(parser)
    has = {"--json" in options, "--format" in options}
    assert has == {command in MACHINE_READABLE}, f"evo {command}: {sorted(options)}"
    if command not in MACHINE_READABLE:
        return
    assert "json" in options["--format"].choices and options["--format"].default == "text"
    assert options["--json"].dest == options["--format"].dest == "format"
    text = parser.format_help()
    assert "--json" in text and "the same as --format json" in text


@pytest.mark.parametrize("command", sorted(MACHINE_READABLE))
def test_json_parses_as_format_json(command: str) -> None:
    example = argv_of(examples(LEAVES[command].format_help())[0])
    short = build_parser().parse_args([*example, "--json"])
    long = build_parser().parse_args([*example, "--format", "json"])
    plain = build_parser().parse_args(example)
    assert vars(short) == vars(long) and short.format == "json" and plain.format == "text"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_analytic_run(tmp_path_factory.mktemp("formats") / "r")


def _printed(capsys, argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["status", "{run}"], ["lineage", "{run}"], ["slots", "--model", "tiny"],
    ["measure", "--model", "tiny", "--evaluator", "analytic", "--no-cache"],
])
def test_both_spellings_print_the_same_json(run: Path, capsys, argv: list[str]) -> None:
    argv = [a.format(run=run) for a in argv]
    short = _printed(capsys, [*argv, "--json"])
    assert _printed(capsys, [*argv, "--format", "json"]) == short
    json.loads(short)
    assert _printed(capsys, argv) != short  # text by default


def test_fisher_prints_json_for_either_spelling(capsys) -> None:
    argv = ["fisher", "--model", "tiny", "--batch", "4"]
    short, long = (json.loads(_printed(capsys, [*argv, *extra]))
                   for extra in (["--json"], ["--format", "json"]))
    short.pop("seconds"), long.pop("seconds")
    assert short == long and short["fisher"] > 0
