"""End-to-end latency of a whole network: a compiled TVM module, PyTorch eager, or any
callable running one inference (the peers of `evo.bench.peers`).

All follow the project's timing protocol (`evo.measure.timing.time_program`):
a warm-up run, repeats long enough (`NETWORK_POLICY`: at least 50 ms each), the
median of ten repeats, spread = (max - min) / median, the other processes' CPU
share recorded, a disturbed set re-measured once and flagged if still disturbed.
The thread count is fixed before timing and recorded with the result.

A compiled TVM network is timed in several fresh processes (`time_across_processes`)
and the row's latency is the median over the processes, its spread their range. On a
shared VM the machine slows down for spells of seconds (benchmarks/RESULTS.md, "Timing
on a shared VM"), which hit rows timed one after another differently: `evo bench`
takes its speedups from `evo.bench.head_to_head`, which interleaves the rows.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import tvm
from torch import nn
from tvm import relax

from evo.measure.interference import OtherLoad
from evo.measure.timing import TimingPolicy, time_program

NETWORK_POLICY = TimingPolicy(min_repeat_ms=50.0, repeats=10, min_repeats=5,
                              repeat_budget_ms=5000.0, remeasure_budget_ms=10000.0)
# Fresh processes a TVM network is timed in (`time_across_processes`), unless the
# environment's EVO_TIMING_PROCESSES (set by `evo bench --timing-processes`) says otherwise.
PROCESSES = 5
PROCESSES_VARIABLE = "EVO_TIMING_PROCESSES"
CHILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class Latency:
    """One network's measured latency; `threads` is the thread count really used.

    Timed in several processes, `median_ms` is the median of their medians,
    `process_ms` those medians in order and `spread` their (max - min) / median; else
    `processes` is 1 and `spread` the repeats' within the one process."""

    median_ms: float
    spread: float
    repeats: int
    number: int
    threads: int
    other_load: float
    flagged: bool
    processes: int = 1
    process_ms: tuple[float, ...] = ()

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
    """Time `main(input)` of a compiled network with the VM's `time_evaluator`, in this
    process."""
    return time_vm(relax.VirtualMachine(executable, tvm.cpu()), input_shape, threads,
                   policy, seed)


def time_vm(vm: relax.VirtualMachine, input_shape: tuple[int, ...], threads: int = 2,
            policy: TimingPolicy = NETWORK_POLICY, seed: int = 0) -> Latency:
    """Time `vm`'s `main(input)` with its `time_evaluator` (on the CPU)."""
    used = set_tvm_threads(threads)
    device = tvm.cpu()
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


def timing_processes() -> int:
    """How many processes `time_across_processes` uses by default: EVO_TIMING_PROCESSES
    if set to a whole number >= 1, else `PROCESSES`."""
    text = os.environ.get(PROCESSES_VARIABLE, "")
    return int(text) if text.isdigit() and int(text) >= 1 else PROCESSES


def time_across_processes(executable: tvm.runtime.Executable, input_shape: tuple[int, ...],
                          threads: int = 2, processes: int | None = None,
                          seed: int = 0, library: Path | None = None) -> Latency:
    """Time a compiled network in `processes` fresh processes one after another
    (`python -m evo.bench.timing_child`, each loading the network exported to a
    temporary .so); the median of their medians (see the module docstring). If the
    export or a child fails, the network is timed in this process instead. `processes`
    defaults to `timing_processes()`. `library`: the .so `executable` was loaded from
    (a module loaded from a file cannot be exported again)."""
    processes = processes or timing_processes()
    with tempfile.TemporaryDirectory(prefix="evo-bench-timing-") as folder:
        try:
            if library is None:
                library = Path(folder, "network.so")
                executable.export_library(str(library))
            children = [_time_in_child(library, input_shape, threads, seed)
                        for _ in range(processes)]
        except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            print(f"evo bench: timing in this process instead of {processes} fresh ones "
                  f"({str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else exc!r})",
                  file=sys.stderr)
            return time_executable(executable, input_shape, threads, seed=seed)
    medians = [child.median_ms for child in children]
    middle = statistics.median(medians)
    return Latency(middle, (max(medians) - min(medians)) / middle,
                   sum(child.repeats for child in children), children[0].number,
                   children[0].threads, max(child.other_load for child in children),
                   any(child.flagged for child in children), len(children), tuple(medians))


def _time_in_child(library: Path, input_shape: tuple[int, ...], threads: int,
                   seed: int) -> Latency:
    shape = ",".join(str(n) for n in input_shape)
    done = subprocess.run(
        [sys.executable, "-m", "evo.bench.timing_child", str(library), shape, str(threads),
         str(seed)], capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False,
        env={**os.environ, "TVM_NUM_THREADS": str(threads)})
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
        raise RuntimeError(f"timing child: {lines[-1]}")
    return Latency(**json.loads(done.stdout.strip().splitlines()[-1]))


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
