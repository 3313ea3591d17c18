"""MkDocs hook: the CLI reference (docs/cli.md) rendered from the real argparse parsers.

docs/cli.md holds the marker below; at build time it is replaced by one section per
command (`evo`, `evo verify`, `evo genome`, `evo genome show`, ...), each with exactly
what `format_help()` prints, so the page cannot drift from `evo COMMAND --help`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

MARKER = "<!-- cli-reference -->"
WIDTH = 100  # columns the help is wrapped at (argparse reads $COLUMNS)


def command_parsers(parser: argparse.ArgumentParser | None = None,
                    words: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the `evo` command line, depth first in registration order, with
    its command line: ("evo", ...), ("evo genome", ...), ("evo genome show", ...)."""
    if parser is None:
        from evo.cli import build_parser

        parser = build_parser()
    yield " ".join(("evo", *words)), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_parsers(sub, (*words, name))


def render() -> str:
    """The reference as Markdown: a section per command with its full --help text."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(WIDTH)
    try:
        sections = [f"## `{command}`\n\n```text\n{parser.format_help().rstrip()}\n```\n"
                    for command, parser in command_parsers()]
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(sections)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the marker of the page that has it (cli.md) with the rendered reference."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())
