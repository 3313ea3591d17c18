"""What each capacity measure costs per search candidate, on the networks of the study.

    .venv/bin/python -m benchmarks.measure_cost [--models resnet20,resnet18]
        [--candidates 8] [--threads 1]

Candidates are drawn as a search draws generation 0 (`Variation.initial`: the
template schedule plus four neural or program insertions, seeded), and each
measure of `evo.capacity.measures` (with the Fisher Potential in both BatchNorm
modes) computes each candidate once, as a search would on a cache miss. Printed: the
median milliseconds per candidate and the original's, on `--threads` torch threads.
Timings depend on the machine and its load: compare the measures of one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from evo.capacity.measures import MEASURES, make_measure
from evo.networks import load_network
from evo.search.evaluate import network_view
from evo.search.variation import Variation
from genomes.genome import NetworkGenome


def candidates(model: str, count: int, seed: int = 0) -> list[NetworkGenome]:
    """`count` distinct neural parts of generation-0 candidates of `model`."""
    network = load_network(model)
    variation = Variation(network_view(network))
    rng = np.random.default_rng(seed)
    out: dict[str, NetworkGenome] = {}
    for _ in range(50 * count):
        proposal = variation.initial(rng, program_only=False)
        if proposal is not None and proposal.genome.neural.layers:
            out.setdefault(proposal.genome.neural.hash(), proposal.genome)
        if len(out) == count:
            break
    return list(out.values())


def cost(model: str, name: str, bn: str, genomes: list[NetworkGenome],
         threads: int) -> tuple[float, float]:
    """Milliseconds of the original's measure and the median per candidate."""
    network = load_network(model)
    measure = make_measure(name, network, bn=bn, threads=threads)
    start = time.perf_counter()
    measure.original()
    original_ms = 1000 * (time.perf_counter() - start)
    per = []
    for genome in genomes:
        start = time.perf_counter()
        measure.of(genome)
        per.append(1000 * (time.perf_counter() - start))
    measure.close()
    return original_ms, statistics.median(per)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="resnet20,resnet18")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{'model':10} {'measure':16} {'original ms':>12} {'per candidate ms':>17}")
    for model in args.models.split(","):
        genomes = candidates(model, args.candidates)
        for name in MEASURES:
            for bn in (("running", "batch") if name == "fisher" else ("running",)):
                label = f"fisher ({bn})" if name == "fisher" else name
                original_ms, per_ms = cost(model, name, bn, genomes, args.threads)
                print(f"{model:10} {label:16} {original_ms:12.1f} {per_ms:17.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
