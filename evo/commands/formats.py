"""The one output convention of the commands with machine-readable output:
`--format FORMAT` chooses it (text by default) and `--json` is short for
`--format json`; both set `args.format`."""

from __future__ import annotations

import argparse

JSON_ALIAS_HELP = "the same as --format json"


def add_format_options(parser: argparse.ArgumentParser, json_what: str,
                       formats: tuple[str, ...] = ("text", "json"),
                       extra_help: str = "") -> None:
    """Add `--format {formats}` (default text) and `--json` to `parser`, both
    storing into `args.format`; `json_what` says what the JSON holds."""
    group = parser.add_argument_group("output")
    group.add_argument("--format", choices=formats, default="text",
                       help=f"{', '.join(formats[:-1])} or {formats[-1]} (default text); "
                            f"json prints {json_what}" + (f"; {extra_help}" if extra_help
                                                          else ""))
    group.add_argument("--json", dest="format", action="store_const", const="json",
                       help=JSON_ALIAS_HELP)


def wants_json(args: argparse.Namespace) -> bool:
    """Whether the command line asked for JSON (`--json` or `--format json`)."""
    return getattr(args, "format", "text") == "json"
