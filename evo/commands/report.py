"""`evo report`: a Markdown report with plots for a run."""

from __future__ import annotations

import argparse

HELP = ("Write RUN_DIR/report/report.md with PNG plots: best legal latency by generation and "
        "by search time, the Pareto front (latency vs Fisher Potential), the lineage of the "
        "best and its per-layer speedup (read-only on the run's store).")

EXAMPLES = """examples:
  # runs/demo/report/report.md with progress.png, pareto.png, lineage.png, layers.png
  evo report runs/demo
  # somewhere else
  evo report runs/demo --out demo-report
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="the run folder, e.g. runs/tiny-1")
    parser.add_argument("--out", metavar="DIR",
                        help="write the report here instead of RUN_DIR/report")


def run(args: argparse.Namespace) -> int:
    from evo.analysis.report import write_report

    path = write_report(args.run, args.out)
    print(f"report written to {path}")
    return 0
