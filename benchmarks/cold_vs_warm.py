"""Conv sums timed alone, warm and with cold caches, against the convs inside the network.

    .venv/bin/python -m benchmarks.cold_vs_warm runs/bench-resnet34-2h-batch [GENE FACTOR]

For the genomes `profile_rows.py` compares: every conv's program timed alone under the
search's protocol (`evo.measure.timing`), once warm (as the search's fitness) and once
with its weights and output flushed from the cache before each run (TVM's
`cache_flush_cpu_non_first_arg`, one run per repeat), summed over the network; and the
convs' time inside the compiled network (`evo.bench.op_profile`), before and after.
Identical programs are timed once.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TVM_NUM_THREADS", "2")

import tvm  # noqa: E402 - after the thread count is fixed

from benchmarks.profile_rows import open_bench  # noqa: E402
from evo.bench.compile import compile_network  # noqa: E402
from evo.bench.conv_throughput import time_conv_program  # noqa: E402
from evo.bench.op_profile import profile_executable  # noqa: E402
from evo.bench.relax_import import to_relax  # noqa: E402
from evo.bench.timing import set_tvm_threads  # noqa: E402
from evo.measure.timing import TimingPolicy  # noqa: E402
from evo.networks import transform_network  # noqa: E402
from evo.target import make_target  # noqa: E402
from evo.tvm_runtime import compile_plan  # noqa: E402
from genomes.plan import LayerPlan  # noqa: E402

COLD = TimingPolicy(min_repeat_ms=0.0)  # one run per repeat, each after its own flush


def warm_and_cold_ms(plan: LayerPlan, target: tvm.target.Target) -> tuple[float, float]:
    """One conv program alone: median ms warm, and with weights and output flushed."""
    library = compile_plan(plan, target)
    return time_conv_program(library, plan), time_conv_program(library, plan, COLD, cold=True)


def main(argv: list[str]) -> int:
    bench = open_bench(argv, __doc__)
    if bench is None:
        return 2
    network, config, genomes = bench.network, bench.config, bench.genomes
    target = make_target(config.target)
    set_tvm_threads(2)
    timed: dict[LayerPlan, tuple[float, float]] = {}
    print(f"{'genome':28} {'inside':>8} {'warm':>8} {'cold':>8}  (ms, conv sums)", flush=True)
    for name, genome in genomes.items():
        start = time.time()
        transform = transform_network(network, genome, seed=config.seed)
        executable = compile_network(to_relax(transform.module, network.input_shape,
                                              plans=transform.plans), target)
        inside = profile_executable(executable, network.input_shape, runs=20).ms_of("conv")
        warm = cold = 0.0
        for plan in transform.plans.values():
            if plan not in timed:
                timed[plan] = warm_and_cold_ms(plan, target)
            warm, cold = warm + timed[plan][0], cold + timed[plan][1]
        again = profile_executable(executable, network.input_shape, runs=20).ms_of("conv")
        print(f"{name:28} {inside:8.2f} {warm:8.2f} {cold:8.2f}  inside again {again:.2f} "
              f"({time.time() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
