"""Where a compiled network's time goes: each kernel it calls, timed inside the network.

`profile_executable` runs `main(input)` in the Relax VM with an instrument that the
VM calls before and after every call instruction, and times each call with
`time.perf_counter`. Kernels run synchronously on the CPU, so the time between the
two callbacks is the kernel's. Calls are grouped by symbol and by kind:

- `conv`: our conv programs (`conv_<module>`, see `evo.bench.relax_import`) and TVM's
  own fused conv2d kernels (the MetaSchedule row);
- `other`: every other compiled kernel (batch norm, ReLU, add, concat, pooling,
  linear), fused as TVM's pipeline fused them;
- `runtime`: the VM's builtins (`vm.builtin.*`: memory allocation, shape checks).

Times are per inference, the mean over `runs` runs after one warm-up run. Convs
timed here run with whatever the network left in the caches, unlike a search's
fitness, which times each conv alone and warm: the difference is the cost of
streaming weights and activations between kernels. The instrument adds a Python
callback per call, so `total_ms` is a little above the network's timed latency;
compare the parts with one another, not with another row's latency.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from evo.bench.timing import set_tvm_threads

KINDS = ("conv", "other", "runtime")
NO_OP = 0  # tvm.runtime.vm.VMInstrumentReturnKind.NO_OP: run the call as usual


@dataclass(frozen=True)
class KernelTime:
    """One symbol's share of an inference: calls and milliseconds per inference."""

    symbol: str
    kind: str
    calls: int
    ms: float


@dataclass(frozen=True)
class Breakdown:
    """A network's inference split by kind of kernel, per inference."""

    runs: int
    threads: int
    total_ms: float
    kernels: tuple[KernelTime, ...]

    def ms_of(self, kind: str) -> float:
        return sum(k.ms for k in self.kernels if k.kind == kind)

    def to_json(self, top: int = 10) -> dict:
        """Totals per kind and the `top` slowest symbols."""
        slowest = sorted(self.kernels, key=lambda k: k.ms, reverse=True)[:top]
        return {"runs": self.runs, "threads": self.threads,
                "total_ms": round(self.total_ms, 4),
                **{f"{kind}_ms": round(self.ms_of(kind), 4) for kind in KINDS},
                "calls": sum(k.calls for k in self.kernels),
                "slowest": [{"symbol": k.symbol, "kind": k.kind, "calls": k.calls,
                             "ms": round(k.ms, 4)} for k in slowest]}


def kind_of(symbol: str) -> str:
    """`conv`, `other` or `runtime` for a VM call's symbol (see the module text)."""
    if symbol.startswith("vm.builtin.") or symbol.startswith("vm."):
        return "runtime"
    if symbol.startswith("conv_") or "conv2d" in symbol:
        return "conv"
    return "other"


def profile_executable(executable: tvm.runtime.Executable, input_shape: tuple[int, ...],
                       threads: int = 2, runs: int = 10, seed: int = 0) -> Breakdown:
    """Time every kernel call of `main(input)` over `runs` runs (after one warm-up)."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    used = set_tvm_threads(threads)
    device = tvm.cpu()
    vm = relax.VirtualMachine(executable, device)
    data = np.random.default_rng(seed).standard_normal(input_shape).astype("float32")
    arg = tvm.runtime.tensor(data, device)
    vm["main"](arg)  # warm-up: first-touch allocations and lazy initialisation
    seconds: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    started: list[float] = []

    def instrument(_func, symbol: str, before: bool, _ret, *_args) -> int:
        now = time.perf_counter()
        if before:
            started.append(now)
        else:
            seconds[symbol] += now - started.pop()
            calls[symbol] += 1
        return NO_OP

    vm.set_instrument(instrument)
    start = time.perf_counter()
    for _ in range(runs):
        vm["main"](arg)
    total = time.perf_counter() - start
    kernels = tuple(KernelTime(symbol, kind_of(symbol), calls[symbol] // runs,
                               1000 * seconds[symbol] / runs) for symbol in seconds)
    return Breakdown(runs, used, 1000 * total / runs, kernels)
