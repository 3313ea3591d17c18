"""The `evo` parsers and the examples their --help shows, for the CLI tests."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator

from evo.cli import build_parser


def parsers() -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the `evo` command line with its command words: () for `evo`
    itself, ("status",), ("genome", "show"), ..."""
    pending = [((), build_parser())]
    while pending:
        words, parser = pending.pop(0)
        yield words, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending += [((*words, name), sub) for name, sub in action.choices.items()]


def leaf_parsers() -> dict[str, argparse.ArgumentParser]:
    """The parsers that run something (not `evo` or `evo genome` alone), by command."""
    out = {}
    for words, parser in parsers():
        if words and not any(isinstance(a, argparse._SubParsersAction)
                             for a in parser._actions):
            out[" ".join(words)] = parser
    return out


def examples(help_text: str) -> list[str]:
    """The `evo ...` command lines of a help text's "examples:" section, each joined
    over its backslash continuations and cut before a pipe."""
    _, found, section = help_text.partition("\nexamples:\n")
    assert found, "no examples: section"
    lines, current = [], ""
    for raw in section.splitlines():
        line = raw.strip()
        if current:
            current += " " + line.removesuffix("\\").strip()
            if not line.endswith("\\"):
                lines.append(current)
                current = ""
        elif line.endswith("\\"):
            current = line.removesuffix("\\").strip()
        elif line:
            lines.append(line)
    return [line.split(" | ")[0].strip() for line in lines if line.startswith("evo ")]


def argv_of(example: str) -> list[str]:
    """The argument list an example passes to `evo` (comments dropped)."""
    words = shlex.split(example, comments=True)
    assert words[0] == "evo", example
    return words[1:]
