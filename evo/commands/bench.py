"""`evo bench`: end-to-end latency of a run's best network against the baselines."""

from __future__ import annotations

import argparse

HELP = ("Measure, in one process and one sitting, whole networks end to end (batch 1): the "
        "original under TVM (template schedule or a program-only run's best), under "
        "MetaSchedule and in PyTorch eager, a BlockSwap-style baseline, and a run's best "
        "legal network in TVM and in PyTorch eager.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, metavar="DIR",
                        help="the search whose best legal network is benchmarked")
    parser.add_argument("--id", type=int, help="benchmark this individual instead of the best")
    parser.add_argument("--program-run", metavar="DIR",
                        help="a --program-only run of the same model and budget: its best is "
                             "row 1 (default: the template schedule)")
    parser.add_argument("--metaschedule-trials", type=int, default=64, metavar="N",
                        help="MetaSchedule trials for row 2 (default 64; 0 skips the row)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for TVM and PyTorch (default 2)")
    parser.add_argument("--out", metavar="DIR",
                        help="where MetaSchedule keeps its database (default RUN/bench)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from evo.errors import UsageError

    if args.threads < 1 or args.metaschedule_trials < 0:
        raise UsageError("--threads must be >= 1 and --metaschedule-trials >= 0")
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # before anything starts TVM's pool
    from evo.bench_report import benchmark, format_table

    result = benchmark(Path(args.run), args.id, Path(args.program_run) if args.program_run
                       else None, args.metaschedule_trials, args.threads,
                       Path(args.out) if args.out else None)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0 if all(row["error"] is None for row in result["rows"]) else 1
