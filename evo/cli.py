"""The `evo` command line: one module per command under `evo/commands/`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from evo.errors import INFRASTRUCTURE_EXIT, InfrastructureError, user_error_types

# command name -> module under evo.commands; each module defines HELP (one line),
# EXAMPLES (the epilog of its --help, starting "examples:"), add_arguments(parser)
# and run(args) -> int.
COMMANDS: dict[str, str] = {
    "verify": "verify",
    "genome": "genome",
    "run": "run",
    "resume": "resume",
    "status": "status",
    "lineage": "lineage",
    "report": "report",
    "export": "export",
    "train": "train",
    "confirm": "confirm",
    "measure": "measure",
    "bench-measure": "bench_measure",
    "slots": "slots",
    "fisher": "fisher",
    "bench": "bench",
}


EXAMPLES = """examples:
  # a search in seconds (analytic latency estimates, no TVM builds), then its results
  evo run --model tiny --evaluator analytic --population 4 --generations 1 --out runs/demo
  evo status runs/demo
  evo lineage runs/demo
  evo report runs/demo
  evo export runs/demo --out runs/demo/winner
  # each command's options and examples
  evo run --help
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but an "examples:" epilog keeps its lines as written
    (the description and option help are still wrapped)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="evo",
        description="Neural architecture search as program transformation exploration: "
                    "evolve per-layer transformation sequences of CNN convolutions, "
                    "legal by Fisher Potential, measured with TVM.",
        epilog=EXAMPLES, formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"evo {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"evo.commands.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP,
                                 epilog=getattr(module, "EXAMPLES", None),
                                 formatter_class=HelpFormatter)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def _version() -> str:
    """The installed evo-nas package's version (or the source tree's, if not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evo-nas")
    except PackageNotFoundError:
        return "0+unknown"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version exit 0 from inside argparse
        if exc.code == 2:  # a refused option, already said in one line
            return 2
        raise
    try:
        return int(args._run(args) or 0)
    except user_error_types() as exc:
        print(f"evo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except InfrastructureError as exc:  # the machinery, not the input, failed
        print(f"evo {args.command}: error: {exc}", file=sys.stderr)
        return INFRASTRUCTURE_EXIT
    except KeyboardInterrupt:
        print(f"evo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `evo lineage ... | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
