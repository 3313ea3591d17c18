"""How a training step runs fast on a CPU without changing what is learned.

    precision       "fp32", or "bf16": convs and matmuls under `torch.autocast` in
                    bfloat16 (weights, BatchNorm statistics, the loss and the optimizer
                    stay float32). "auto": fp32 unless the CPU has native bfloat16
                    arithmetic (AVX512-BF16 or AMX-BF16); there `faster_precision` times
                    a few steps of the network in each and takes the faster (oneDNN's
                    bf16 depthwise convs are slower than fp32 ones here). Precision
                    changes the arithmetic, so it is part of a training's settings.
    channels_last   the module and its inputs in NHWC memory layout (oneDNN's fast path
                    for convs); the same arithmetic, so not a setting.
    compile         `torch.compile` (inductor) of the training forward; the same
                    arithmetic up to operator fusion, not a setting.

`benchmarks/train_speed.py` measures each of them on this machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def faster_precision(module: nn.Module, sample_shape: tuple[int, ...], classes: int,
                     batch: int, steps: int = 3) -> tuple[str, dict[str, float]]:
    """The faster of fp32 and bf16 for training steps of (a deep copy of) `module` on
    random batches, and the seconds per step of each (after one warm-up step)."""
    import copy
    import time

    import torch.nn.functional as F

    seconds = {}
    for precision in ("fp32", "bf16"):
        trial = copy.deepcopy(module).train().to(memory_format=torch.channels_last)
        options = StepOptions(precision)
        optimizer = torch.optim.SGD(trial.parameters(), lr=1e-3, momentum=0.9)
        generator = torch.Generator().manual_seed(0)  # leaves the global RNG alone
        x = options.inputs(torch.randn(batch, *sample_shape, generator=generator))
        y = torch.randint(0, classes, (batch,), generator=generator)
        for step in range(steps + 1):
            if step == 1:
                started = time.perf_counter()
            with options.autocast():
                loss = F.cross_entropy(trial(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds[precision] = (time.perf_counter() - started) / steps
    return min(seconds, key=seconds.__getitem__), seconds


@dataclass(frozen=True)
class StepOptions:
    """How training steps run: `precision` (fp32/bf16), NHWC layout, torch.compile."""

    precision: str = "fp32"
    channels_last: bool = True
    compile: bool = False

    def prepare(self, module: nn.Module) -> nn.Module:
        """`module` in the chosen layout; the callable to train with (compiled or not).
        The returned callable shares parameters with `module`."""
        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        return torch.compile(module) if self.compile else module

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A float batch in the module's memory layout."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """bfloat16 autocast for bf16, nothing for fp32."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            yield
