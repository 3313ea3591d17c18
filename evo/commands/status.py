"""`evo status`: where a run stands, read-only (safe while the run is going)."""

from __future__ import annotations

import argparse

HELP = ("Show a run's progress: generation, evaluations, elapsed time, best legal latency "
        "and speedup, Pareto-set size, whether a process runs it now and how it last "
        "stopped (read-only; safe while the run is going).")

EXAMPLES = """examples:
  evo status runs/demo
  # the same as one JSON object, for scripts
  evo status runs/demo --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="the run folder, e.g. runs/tiny-1")
    from evo.commands.formats import add_format_options

    add_format_options(parser, "the status as one object (the text's fields)")


def run(args: argparse.Namespace) -> int:
    import json

    from evo.analysis.snapshot import load_run
    from evo.analysis.status import format_status, run_status
    from evo.commands.formats import wants_json

    status = run_status(load_run(args.run))
    print(json.dumps(status, indent=2) if wants_json(args) else format_status(status))
    return 0
