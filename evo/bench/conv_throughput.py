"""GFLOP/s of each conv program against PyTorch running the same conv (same plan).

For every slot's plan: the TVM program alone (`evo.tvm_runtime.compile_plan`, timed
with `time_evaluator`) and PyTorch eager on the plan's `TransformedConv` (same
pieces, same shapes), both under the project's timing protocol with the given
thread count. Identical plans are measured once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import tvm

from evo.bench.timing import set_tvm_threads, time_torch
from evo.measure.interference import OtherLoad
from evo.measure.timing import TimingPolicy, time_program
from evo.tvm_runtime import CompileError, compile_plan, tvm_arguments
from genomes.plan import LayerPlan
from genomes.torch_decoder import to_torch

LAYER_POLICY = TimingPolicy()


@dataclass(frozen=True)
class ConvThroughput:
    """One slot: FLOPs, milliseconds and GFLOP/s in TVM and PyTorch (None on error)."""

    slot: str
    flops: int
    tvm_ms: float | None
    torch_ms: float
    error: str | None = None

    @property
    def tvm_gflops(self) -> float | None:
        return None if self.tvm_ms is None else self.flops / self.tvm_ms / 1e6

    @property
    def torch_gflops(self) -> float:
        return self.flops / self.torch_ms / 1e6

    def to_json(self) -> dict:
        return {**asdict(self), "tvm_gflops": self.tvm_gflops, "torch_gflops": self.torch_gflops}


def conv_throughput(plans: dict[str, LayerPlan], target: tvm.target.Target,
                    threads: int = 2) -> list[ConvThroughput]:
    """Measure every plan in TVM and in PyTorch (see the module docstring)."""
    set_tvm_threads(threads)
    measured: dict[LayerPlan, tuple[float | None, float, str | None]] = {}
    rows = []
    for slot, plan in plans.items():
        if plan not in measured:
            tvm_ms, error = _tvm_ms(plan, target)
            spec = plan.spec
            shape = (spec.batch, spec.in_channels, spec.height, spec.width)
            torch_ms = time_torch(to_torch(plan), shape, threads, LAYER_POLICY).median_ms
            measured[plan] = (tvm_ms, torch_ms, error)
        tvm_ms, torch_ms, error = measured[plan]
        rows.append(ConvThroughput(slot, plan.flops, tvm_ms, torch_ms, error))
    return rows


def total_gflops(rows: list[ConvThroughput]) -> tuple[float | None, float]:
    """Whole-network conv throughput: total FLOPs over total time, TVM and PyTorch."""
    flops = sum(r.flops for r in rows)
    torch_ms = sum(r.torch_ms for r in rows)
    if any(r.tvm_ms is None for r in rows):
        return None, flops / torch_ms / 1e6
    return flops / sum(r.tvm_ms for r in rows) / 1e6, flops / torch_ms / 1e6


def _tvm_ms(plan: LayerPlan, target: tvm.target.Target) -> tuple[float | None, str | None]:
    try:
        library = compile_plan(plan, target)
    except CompileError as exc:
        return None, str(exc)
    return time_conv_program(library, plan), None


def time_conv_program(library: tvm.runtime.Executable, plan: LayerPlan,
                      policy: TimingPolicy = LAYER_POLICY, cold: bool = False) -> float:
    """Median ms of one compiled conv program alone on random data (`evo.measure.timing`).

    `cold`: every argument but the input (weights, output) is flushed from the CPU
    caches before each run (TVM's `cache_flush_cpu_non_first_arg`), one run per repeat.
    """
    spec = plan.spec
    rng = np.random.default_rng(0)
    data = rng.standard_normal((spec.batch, spec.in_channels, spec.height, spec.width))
    weights = [rng.standard_normal(p.weight_shape(spec)) for p in plan.pieces]
    args = tvm_arguments(plan, data, weights)
    device = tvm.cpu()
    preproc = "cache_flush_cpu_non_first_arg" if cold else ""

    def time_runs(number: int, repeat: int) -> tuple[list[float], float]:
        evaluator = library.mod.time_evaluator("main", device, number=1 if cold else number,
                                               repeat=repeat, f_preproc=preproc)
        with OtherLoad() as load:
            result = evaluator(*args)
        return list(result.results), load.share

    return time_program(time_runs, policy).median_ms
