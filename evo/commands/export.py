"""`evo export`: take an individual of a run away as files."""

from __future__ import annotations

import argparse

HELP = ("Export an individual of a run (default: the best legal one): its genome JSON, the "
        "transformed PyTorch model (load it with evo.load_model(DIR)), the whole network "
        "as one TVM module (network.so, run by run_network.py with only tvm and numpy), "
        "as network.pt2 (torch.export) and network.onnx, with a sample input and "
        "PyTorch's output for it, and its convolutions compiled by TVM with a script "
        "that runs them.")

EXAMPLES = """examples:
  # the best legal individual
  evo export runs/demo --out runs/demo/winner
  python runs/demo/winner/run_network.py
  # individual 5, without TVM libraries (genome, PyTorch model, network.pt2, network.onnx)
  evo export runs/demo --id 5 --out runs/demo/id5 --no-tvm
"""


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
                        help="no TVM libraries: the genome, the PyTorch model, network.pt2 and "
                             "network.onnx only")
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
    files = {"tvm": "network.so", "torch.export": "network.pt2", "onnx": "network.onnx"}
    written = [files[what] for what, error in s["network"].items() if error is None]
    if written:
        print(f"  whole network: {', '.join(written)} (sample_input.npy, expected_output.npy; "
              f"see {s['out']}/README.md)")
    if s["network"].get("tvm", 1) is None:
        print(f"  run it with only tvm and numpy: python {s['out']}/run_network.py "
              f"[--threads N] (default {s['threads']})")
    for what, error in s["network"].items():
        if error is not None:
            print(f"  {what} export failed, not written: {error}")
    trust = ", trust_model_code=True" if s["model_code"] else ""
    print(f"  load the PyTorch model with: evo.load_model({s['out']!r}{trust})")
    return 0
