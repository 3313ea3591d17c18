"""`evo export`: take an individual of a run away as files."""

from __future__ import annotations

import argparse

HELP = ("Export an individual of a run (default: the best legal one): its genome JSON, the "
        "transformed PyTorch model (load it with evo.load_model(DIR)) and its convolutions "
        "compiled by TVM with a script that runs them.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="the run folder, e.g. runs/tiny-1")
    parser.add_argument("--id", type=int, metavar="ID",
                        help="the individual to export (default: the best legal one)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder to write (created; files in it are overwritten)")
    parser.add_argument("--target", metavar="JSON",
                        help="TVM target to compile for (default: the run's target, else "
                             "this CPU)")
    parser.add_argument("--no-tvm", action="store_true",
                        help="only the genome and the PyTorch model, no TVM libraries")
    parser.add_argument("--trust-model-code", action="store_true",
                        help="import the model file or module the run's config.json names "
                             "(a run folder may come from someone else; zoo models need "
                             "nothing)")


def run(args: argparse.Namespace) -> int:
    from evo.export import export_individual

    s = export_individual(args.run, args.id, args.out, args.target, tvm=not args.no_tvm,
                          trust_model_code=args.trust_model_code)
    latency = f", {s['latency_ms']:.4f} ms" if s["latency_ms"] is not None else ""
    print(f"exported individual {s['individual']}{latency} to {s['out']}: genome.json, "
          f"model.json, weights.pt")
    if s["tvm"]:
        print(f"  {s['slots']} convs compiled for {s['tvm']} in {s['out']}/tvm; "
              f"run them with: python {s['out']}/run_tvm.py [--check]")
    trust = ", trust_model_code=True" if s["model_code"] else ""
    print(f"  load the PyTorch model with: evo.load_model({s['out']!r}{trust})")
    return 0
