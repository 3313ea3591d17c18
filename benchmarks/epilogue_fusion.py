"""End-to-end latency with and without the conv epilogues fused (BatchNorm, residual
add and ReLU in the conv's kernel), for zoo networks with one fixed schedule.

    .venv/bin/python -m benchmarks.epilogue_fusion [MODEL ...] [--schedule template|channels]
        [--genome FILE] [--threads 2] [--rounds 3]

Each network is compiled both ways (`evo.bench.relax_import.to_relax`,
`fuse_epilogues`), checked against PyTorch, and timed in alternating rounds (the
median of each round's median), so load on a shared machine hits both alike. Prints
one line per network: the two latencies, their ratio, and the kernel calls per run.
"""

from __future__ import annotations

import argparse
import statistics

from evo.bench.compile import check_against_torch, compile_network
from evo.bench.op_profile import profile_executable
from evo.bench.relax_import import to_relax
from evo.bench.timing import time_executable
from evo.host import describe_host, host_label
from evo.networks import load_network, transform_network
from evo.search.variation import SEED_SCHEDULES, seed_genome
from evo.target import make_target
from genomes.genome import load_genome_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", default=["resnet20", "resnet18"])
    parser.add_argument("--schedule", choices=sorted(SEED_SCHEDULES), default="template")
    parser.add_argument("--genome", help="a network genome file instead of the schedule "
                                         "(one model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    target = make_target()
    print(host_label(describe_host()))
    for model in args.models:
        network = load_network(model)
        if args.genome:
            genome = load_genome_file(args.genome)
        else:
            genome = seed_genome(network.slots, SEED_SCHEDULES[args.schedule])
        transform = transform_network(network, genome)
        module = transform.module.eval()
        builds = {}
        for fuse in (True, False):
            relax_network = to_relax(module, network.input_shape, plans=transform.plans,
                                     fuse_epilogues=fuse)
            executable = compile_network(relax_network, target)
            agreement = check_against_torch(module, executable, network.input_shape)
            calls = sum(k.calls for k in profile_executable(
                executable, network.input_shape, threads=args.threads, runs=1).kernels)
            builds[fuse] = (executable, agreement, calls, len(relax_network.fused))
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for fuse in (True, False):
                latency = time_executable(builds[fuse][0], network.input_shape,
                                          threads=args.threads)
                times[fuse].append(latency.median_ms)
        fused, separate = (statistics.median(times[f]) for f in (True, False))
        print(f"{model:10} fused {fused:.4f} ms ({builds[True][2]} kernel calls, "
              f"{builds[True][3]} convs with epilogue, matches torch: "
              f"{builds[True][1].matches})  separate {separate:.4f} ms "
              f"({builds[False][2]} calls, matches torch: {builds[False][1].matches})  "
              f"separate/fused {separate / fused:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
