"""Where a benchmark's networks spend their time, end to end, in one sitting.

    .venv/bin/python -m benchmarks.profile_rows runs/bench-resnet34-2h-batch [GENE FACTOR]

For the bench folder's searches (`search`, `program-only`): the template schedule on
the original network, the program-only search's best, the full search's best and, with
GENE FACTOR (e.g. `group 64`), that BlockSwap-style uniform genome. Each is compiled as
one Relax module, checked against PyTorch, timed (`evo.bench.timing`) and profiled
(`evo.bench.op_profile`): milliseconds in convs, in the other operators and in the VM,
and the slowest kernels. 2 threads, like `evo bench`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

os.environ.setdefault("TVM_NUM_THREADS", "2")

from evo.analysis import load_run  # noqa: E402 - after the thread count is fixed
from evo.bench.blockswap import GENES, uniform_genome  # noqa: E402
from evo.bench.end_to_end import genome_end_to_end  # noqa: E402
from evo.errors import UsageError  # noqa: E402
from evo.networks import Network, load_network  # noqa: E402
from evo.search.config import RunConfig  # noqa: E402
from evo.search.variation import TEMPLATE_SCHEDULE, template_genome  # noqa: E402
from evo.target import make_target  # noqa: E402
from genomes.genome import NetworkGenome  # noqa: E402


@dataclass(frozen=True)
class Bench:
    """A bench folder's network, its search config and the genomes to compare, by name."""

    network: Network
    config: RunConfig
    genomes: dict[str, NetworkGenome]


def open_bench(argv: list[str], usage: str) -> Bench | None:
    """The bench of `BENCH_DIR [GENE FACTOR]`; None, after a one-line message on
    stderr, when the arguments are wrong."""
    if len(argv) not in (1, 3):
        print("usage: " + usage.strip().splitlines()[2].strip(), file=sys.stderr)
        return None
    try:
        return bench_genomes(argv[0], argv[1:])
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def bench_genomes(bench: str, blockswap: list[str]) -> Bench:
    """The template, both searches' bests and, with `[GENE, FACTOR]`, that uniform
    genome (template schedule); UsageError for a bad folder or gene."""
    config = load_run(f"{bench}/search").config
    network = load_network(config.model, config.input_shape, seed=config.seed)
    genomes = {"template": template_genome(network.slots)}
    for name in ("program-only", "search"):
        snap = load_run(f"{bench}/{name}")
        best = snap.resolve(None)
        genomes[f"{name} #{best}"] = snap.individual(best).genome
    if blockswap:
        gene, factor = blockswap
        if gene not in GENES or not factor.isdigit() or int(factor) < 1:
            raise UsageError(f"blockswap {gene} {factor}: GENE is one of {', '.join(GENES)} "
                             f"and FACTOR a positive integer")
        genomes[f"blockswap {gene}({factor})"] = uniform_genome(
            network, gene, int(factor), program=TEMPLATE_SCHEDULE)[0]
    return Bench(network, config, genomes)


def main(argv: list[str]) -> int:
    bench = open_bench(argv, __doc__)
    if bench is None:
        return 2
    network, config, genomes = bench.network, bench.config, bench.genomes
    target = make_target(config.target)
    for name, genome in genomes.items():
        row = genome_end_to_end(network, genome, target, 2, config.seed)
        if not row.ok:
            print(f"{name:28} error: {row.error}")
            continue
        b = row.breakdown.to_json(top=8)
        print(f"{name:28} {row.latency.median_ms:8.2f} ms ({row.latency.spread:.0%}) "
              f"conv {b['conv_ms']:.2f} other {b['other_ms']:.2f} vm {b['runtime_ms']:.2f} "
              f"instrumented {b['total_ms']:.2f}", flush=True)
        for k in b["slowest"]:
            print(f"    {k['symbol'][:60]:60} {k['kind']:7} x{k['calls']:<3} {k['ms']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
