"""`evo fisher`: a network's Fisher Potential, and whether a genome keeps it."""

from __future__ import annotations

import argparse
import json
import math
import time

from evo.commands.formats import add_format_options, wants_json
from evo.commands.slots import MODEL_HELP

HELP = ("Fisher Potential of a network at initialisation (BlockSwap), and with --genome "
        "whether the transformed network keeps enough of it to be legal.")

EXAMPLES = """examples:
  evo fisher --model tiny
  # is an exported winner legal, and how does each slot's potential compare?
  evo fisher --model tiny --genome runs/demo/winner/genome.json --per-slot
  # on real images with the minibatch's BatchNorm statistics (the paper's setting)
  evo fisher --model resnet20 --data cifar10:cifar-10-batches-bin --bn batch --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo import options as o
    from evo.search.config import FISHER_BN_MODES, RunConfig

    parser.add_argument("--model", required=True, metavar="M", help=MODEL_HELP)
    parser.add_argument("--input-shape", default="1,3,32,32", metavar="N,C,H,W",
                        help="the network's input shape (default 1,3,32,32)")
    parser.add_argument("--genome", metavar="FILE",
                        help="a network genome JSON ({schema, layers}); also report the "
                             "original's potential and whether the genome is legal")
    parser.add_argument("--data", default="synthetic", metavar="SPEC",
                        help="synthetic (default: seeded Gaussian images, random labels), "
                             "cifar10:DIR (CIFAR-10 binary data_batch_*.bin), npz:FILE "
                             "(arrays x, y; no pickle) or imagefolder:PATH (a folder or zip "
                             "of one image folder per class)")
    parser.add_argument("--seed", type=o.SEED.arg(), default=0,
                        help="seed for the minibatch and the weights (default 0)")
    parser.add_argument("--batch", type=o.FISHER_BATCH.arg(), default=16,
                        help="minibatch size (default 16)")
    parser.add_argument("--bn", choices=FISHER_BN_MODES, default=RunConfig.fisher_bn,
                        help="BatchNorm while measuring: its initial running statistics, "
                             "transformed convs inheriting the original's weights (default), or "
                             "the minibatch's statistics (the paper's setting); see "
                             "docs/capacity.md")
    parser.add_argument("--threshold", type=o.THRESHOLD.arg(), default=1.0,
                        help="legal when potential >= threshold x the original's (default 1.0)")
    parser.add_argument("--scope", choices=("network", "layer"), default="network",
                        help="compare whole-network totals (default) or every slot's share")
    parser.add_argument("--cache", metavar="FILE",
                        help="SQLite file to reuse Fisher Potentials across runs")
    parser.add_argument("--threads", type=o.THREADS.arg(), default=1,
                        help="torch threads for the forward and backward pass (default 1)")
    parser.add_argument("--per-slot", action="store_true",
                        help="also print each slot's potential")
    add_format_options(parser, '{"fisher": ..., "per_slot": {...}, ...}')


def run(args: argparse.Namespace) -> int:
    from evo.capacity import FisherPotential, violation
    from evo.errors import UsageError
    from evo.networks import load_network, parse_input_shape, transform_network
    from genomes.genome import NetworkGenome, load_genome_file

    if not math.isfinite(args.threshold) or args.threshold <= 0:
        raise UsageError(f"--threshold {args.threshold}: must be a positive number")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: must be >= 0")
    genome = None
    if args.genome is not None:
        genome = load_genome_file(args.genome)
        if not isinstance(genome, NetworkGenome):
            raise UsageError(f"{args.genome}: a layer genome (a list of genes); --genome needs "
                             f"a network genome {{\"schema\": 1, \"layers\": {{slot: genes}}}}")
    network = load_network(args.model, parse_input_shape(args.input_shape), seed=args.seed)
    if genome is not None:
        check = transform_network(network, genome, plans_only=True)
        if check.error is not None:
            raise UsageError(f"{args.genome}: does not apply to {args.model}: {check.error}")
    started = time.perf_counter()
    potential = FisherPotential(network, data=args.data, seed=args.seed, batch=args.batch,
                                cache_path=args.cache, threads=args.threads, bn=args.bn)
    try:
        original = potential.original()
        result = potential.of(genome) if genome is not None else original
    finally:
        potential.close()
    if result.error is not None:
        raise UsageError(f"fisher: {result.error}")
    report = {"model": args.model, "input_shape": list(network.input_shape), "data": args.data,
              "seed": args.seed, "batch": args.batch, "bn": args.bn, "fisher": result.total,
              "per_slot": result.per_slot}
    if genome is not None:
        amount = violation(original, result, args.threshold, args.scope)
        report.update({"genome": args.genome, "original": original.total,
                       "original_per_slot": original.per_slot,
                       "ratio": result.total / original.total if original.total else None,
                       "threshold": args.threshold, "scope": args.scope,
                       "violation": amount, "legal": amount == 0.0})
    report["seconds"] = round(time.perf_counter() - started, 3)
    if wants_json(args):
        print(json.dumps(report, indent=1))
    else:
        print_report(report, original.per_slot if args.per_slot else None)
    return 0


def print_report(report: dict, original_per_slot: dict | None) -> None:
    shape = "x".join(map(str, report["input_shape"]))
    print(f"model     {report['model']} (input {shape})")
    print(f"data      {report['data']}, seed {report['seed']}, batch {report['batch']}, "
          f"BatchNorm on {report['bn']} statistics")
    if "genome" in report:
        print(f"original  {report['original']:.6g}")
        print(f"genome    {report['fisher']:.6g}  ({report['ratio']:.3f}x the original)  "
              f"{report['genome']}")
        verdict = ("legal" if report["legal"]
                   else f"illegal: short by {report['violation']:.4g} (relative)")
        print(f"capacity  {verdict}  (threshold {report['threshold']:g}, "
              f"{report['scope']} scope)")
    else:
        print(f"fisher    {report['fisher']:.6g}")
    if original_per_slot is not None:
        width = max(len(k) for k in report["per_slot"])
        for slot_id, value in report["per_slot"].items():
            extra = ""
            if "genome" in report and original_per_slot.get(slot_id):
                extra = f"  ({value / original_per_slot[slot_id]:.3f}x)"
            print(f"  {slot_id:<{width}}  {value:.6g}{extra}")
    print(f"time      {report['seconds']:.2f} s")
