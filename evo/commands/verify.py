"""`evo verify`: decode random genomes for one layer and compare TVM with PyTorch."""

from __future__ import annotations

import argparse
import sys

HELP = ("Decode N random genomes for one conv layer, run each in TVM and in PyTorch on the "
        "same input and weights, and report every mismatch.")

EXAMPLES = """examples:
  # 20 random genomes on a 16->32 3x3 stride-1 conv on 32x32 inputs
  evo verify --layer 16,32,32,32,3,1 --random 20
  # a grouped (4 groups) stride-2 layer, longer genomes, another seed
  evo verify --layer 64,64,16,16,3,2,4 --random 50 --length 12 --seed 3
  # one layer genome of yours (a JSON list of genes), and no random ones
  evo verify --layer 32,32,16,16,3,1 --genome layer.json --random 0
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo import options as o

    parser.add_argument("--layer", required=True, metavar="CI,CO,H,W,K,STRIDE",
                        help="the layer: input/output channels, height, width, kernel, stride "
                             "(optionally ,GROUPS[,BATCH])")
    parser.add_argument("--random", type=o.count(0, 1_000_000).arg(), default=50, metavar="N",
                        help="how many random genomes to check (default 50)")
    parser.add_argument("--seed", type=o.SEED.arg(), default=0, help="random seed (default 0)")
    parser.add_argument("--length", type=o.count(0, 1000).arg(), default=8, metavar="L",
                        help="at most L genes per genome (default 8)")
    parser.add_argument("--genome", metavar="FILE",
                        help="also check this layer genome (a JSON list of genes)")
    parser.add_argument("--target", metavar="JSON", type=o.target_arg,
                        help='TVM target as JSON or TVM\'s "llvm -mcpu=CPU" (default: llvm '
                             'for this CPU, e.g. \'{"kind": "llvm", "mcpu": "znver4"}\')')
    parser.add_argument("--rtol", type=o.TOLERANCE.arg(), default=1e-4,
                        help="relative tolerance (1e-4)")
    parser.add_argument("--atol", type=o.TOLERANCE.arg(), default=1e-4,
                        help="absolute tolerance (1e-4)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from evo.equivalence import check_equivalence
    from evo.errors import UsageError
    from evo.target import make_target
    from genomes.genome import LayerGenome, load_genome_file
    from genomes.sampling import random_layer_genome
    from genomes.spec import parse_layer_option

    spec = parse_layer_option(args.layer)
    if args.random < 0 or args.length < 0:
        raise UsageError("--random and --length must be >= 0")
    if args.rtol < 0 or args.atol < 0:
        raise UsageError("--rtol and --atol must be >= 0")
    target = make_target(args.target)
    genomes = []
    if args.genome:
        loaded = load_genome_file(args.genome)
        if not isinstance(loaded, LayerGenome):
            raise UsageError(f"{args.genome}: expected a layer genome (a JSON list of genes)")
        genomes.append(loaded)
    rng = np.random.default_rng(args.seed)
    genomes += [random_layer_genome(rng, spec, int(rng.integers(0, args.length + 1)))
                for _ in range(args.random)]
    mismatches = 0
    bar = tqdm(genomes, desc=f"verify {spec.short()}", unit="genome", disable=args.quiet,
               file=sys.stderr)
    for index, genome in enumerate(bar):
        result = check_equivalence(spec, genome, target, seed=args.seed + index,
                                   rtol=args.rtol, atol=args.atol)
        if not result.matches:
            mismatches += 1
            reason = result.error or f"max |tvm - torch| = {result.max_abs_diff:.3g}"
            tqdm.write(f"MISMATCH {genome.canonical()}: {reason}", file=sys.stdout)
    print(f"{len(genomes)} checked, {mismatches} mismatches")
    return 0 if mismatches == 0 else 1
