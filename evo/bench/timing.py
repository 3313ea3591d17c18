"""End-to-end latency of a whole network: a compiled TVM module, PyTorch eager, or any
callable running one inference (the peers of `evo.bench.peers`).

All follow the project's timing protocol (`evo.measure.timing.time_program`):
a warm-up run, repeats long enough (`NETWORK_POLICY`: at least 50 ms each), the
median of ten repeats, spread = (max - min) / median, the other processes' CPU
share recorded, a disturbed set re-measured once and flagged if still disturbed.
The thread count is fixed before timing and recorded with the result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import tvm
from torch import nn
from tvm import relax

from evo.measure.interference import OtherLoad
from evo.measure.timing import TimingPolicy, time_program

NETWORK_POLICY = TimingPolicy(min_repeat_ms=50.0, repeats=10, min_repeats=5,
                              repeat_budget_ms=5000.0, remeasure_budget_ms=10000.0)


@dataclass(frozen=True)
class Latency:
    """One network's measured latency; `threads` is the thread count really used."""

    median_ms: float
    spread: float
    repeats: int
    number: int
    threads: int
    other_load: float
    flagged: bool

    def to_json(self) -> dict:
        return asdict(self)


def set_tvm_threads(threads: int) -> int:
    """Fix the TVM runtime's thread pool to `threads`; returns the count in use.

    TVM caps its pool at the `TVM_NUM_THREADS` it saw when the pool started (else
    half the logical CPUs on x86), so call this before anything runs a TVM
    function, or start the process with `TVM_NUM_THREADS` set.

    TVM pins the calling thread to the CPUs it is given (with one thread, to CPU 0);
    the calling thread's own CPUs are restored afterwards, or everything this process
    did next (torch's capacity measures, `available_cores`) would be held to one core.
    """
    os.environ.setdefault("TVM_NUM_THREADS", str(threads))
    configure = tvm.get_global_func("runtime.config_threadpool")
    allowed = os.sched_getaffinity(0)
    try:
        configure(-3, threads, [str(i) for i in range(threads)])  # -3: threads share all cores
    finally:
        os.sched_setaffinity(0, allowed)
    return int(tvm.get_global_func("runtime.NumThreads")())


def time_executable(executable: tvm.runtime.Executable, input_shape: tuple[int, ...],
                    threads: int = 2, policy: TimingPolicy = NETWORK_POLICY,
                    seed: int = 0) -> Latency:
    """Time `main(input)` of a compiled network with the VM's `time_evaluator`."""
    used = set_tvm_threads(threads)
    device = tvm.cpu()
    vm = relax.VirtualMachine(executable, device)
    data = np.random.default_rng(seed).standard_normal(input_shape).astype("float32")
    arg = tvm.runtime.tensor(data, device)

    def time_runs(number: int, repeat: int) -> tuple[list[float], float]:
        evaluator = vm.time_evaluator("main", device, number=number, repeat=repeat)
        with OtherLoad() as load:
            result = evaluator(arg)
        return list(result.results), load.share

    timing = time_program(time_runs, policy)
    return Latency(timing.median_ms, timing.spread, timing.repeats, timing.number, used,
                   timing.other_load, timing.flagged)


def time_torch(module: nn.Module, input_shape: tuple[int, ...], threads: int = 2,
               policy: TimingPolicy = NETWORK_POLICY, seed: int = 0) -> Latency:
    """Time PyTorch eager inference (eval mode, `torch.inference_mode`) with
    `torch.set_num_threads(threads)`; the module's mode and the thread count are
    restored afterwards."""
    previous_threads, training = torch.get_num_threads(), module.training
    torch.set_num_threads(threads)
    module.eval()
    data = torch.randn(input_shape, generator=torch.Generator().manual_seed(seed))
    try:
        with torch.inference_mode():
            return time_callable(lambda: module(data), torch.get_num_threads(), policy)
    finally:
        torch.set_num_threads(previous_threads)
        module.train(training)


def time_callable(run: Callable[[], object], threads: int,
                  policy: TimingPolicy = NETWORK_POLICY) -> Latency:
    """Time `run()` (one inference, its input already bound) by the protocol above: a
    warm-up call before each set of repeats, `number` calls per repeat. `threads` is
    the thread count the caller fixed, recorded with the result."""
    def time_runs(number: int, repeat: int) -> tuple[list[float], float]:
        run()  # warm-up, as time_evaluator does
        seconds = []
        with OtherLoad() as load:
            for _ in range(repeat):
                start = time.perf_counter()
                for _ in range(number):
                    run()
                seconds.append((time.perf_counter() - start) / number)
        return seconds, load.share

    timing = time_program(time_runs, policy)
    return Latency(timing.median_ms, timing.spread, timing.repeats, timing.number, threads,
                   timing.other_load, timing.flagged)
