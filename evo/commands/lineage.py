"""`evo lineage`: an individual's ancestry back to the original network, and which
genes the Pareto set's speedup came from."""

from __future__ import annotations

import argparse

HELP = ("Show the ancestry of an individual back to the original network (each step's "
        "operator, the genes it changed, latency and Fisher Potential before and after) "
        "and an attribution of the Pareto set's speedup to gene kinds.")

EXAMPLES = """examples:
  # the best legal individual's ancestry, then which genes the speedup came from
  evo lineage runs/demo
  # individual 5, as JSON
  evo lineage runs/demo --id 5 --json
  # as a picture (needs Graphviz)
  evo lineage runs/demo --format dot | dot -Tpng -o lineage.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="the run folder, e.g. runs/tiny-1")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--id", type=int, metavar="ID", help="the individual to trace")
    which.add_argument("--best", action="store_true",
                       help="trace the best legal individual (the default)")
    from evo.commands.formats import add_format_options

    add_format_options(parser, "the lineage and the attribution", ("text", "json", "dot"),
                       "text has the attribution summary; dot is Graphviz: evo lineage RUN "
                       "--format dot | dot -Tpng -o lineage.png")


def run(args: argparse.Namespace) -> int:
    import json

    from evo.analysis.attribution import attribute, format_attribution
    from evo.analysis.lineage import ancestry, format_lineage, lineage_dot, lineage_json
    from evo.analysis.snapshot import load_run

    snap = load_run(args.run)
    steps = ancestry(snap, snap.resolve(args.id))
    if args.format == "dot":
        print(lineage_dot(snap, steps), end="")
    elif args.format == "json":
        print(json.dumps({"individual": steps[-1].id, "lineage": lineage_json(steps),
                          "attribution": attribute(snap).to_json()}, indent=2))
    else:
        print(format_lineage(snap, steps))
        print()
        print(format_attribution(attribute(snap)))
    return 0
