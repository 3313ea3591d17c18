"""`evo resume`: continue a stopped run from its last finished generation."""

from __future__ import annotations

import argparse

HELP = ("Continue a run from its last checkpoint (after a crash, Ctrl-C or a finished "
        "budget); with the same evaluations it makes exactly the choices an "
        "uninterrupted run would have made.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="the run folder, e.g. runs/tiny-1")
    parser.add_argument("--generations", type=int, metavar="N",
                        help="run N more generations (default: up to the configured number)")
    parser.add_argument("--time-budget", metavar="T",
                        help="run for T more time, e.g. 30m (default: the configured budget)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars; one log line per generation")


def run(args: argparse.Namespace) -> int:
    from evo.search.config import parse_duration
    from evo.search.runner import resume_run

    seconds = parse_duration(args.time_budget) if args.time_budget else None
    return resume_run(args.run, args.generations, seconds, quiet=args.quiet)
