"""`evo lineage`: an individual's ancestry back to the original network, and which
genes the Pareto set's speedup came from."""

from __future__ import annotations

import argparse

HELP = ("Show the ancestry of an individual back to the original network (each step's "
        "operator, the genes it changed, latency and Fisher Potential before and after) "
        "and an attribution of the Pareto set's speedup to gene kinds.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="the run folder, e.g. runs/tiny-1")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--id", type=int, metavar="ID", help="the individual to trace")
    which.add_argument("--best", action="store_true",
                       help="trace the best legal individual (the default)")
    parser.add_argument("--format", choices=("text", "json", "dot"), default="text",
                        help="text (default; with the attribution summary), json (lineage "
                             "and attribution) or dot (Graphviz: evo lineage RUN --format "
                             "dot | dot -Tpng -o lineage.png)")


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
