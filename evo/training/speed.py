"""How a training step runs fast on a CPU without changing what is learned.

    precision       "fp32", or "bf16": convs and matmuls under `torch.autocast` in
                    bfloat16 (weights, BatchNorm statistics, the loss and the optimizer
                    stay float32). "auto" picks bf16 where the CPU has native bfloat16
                    arithmetic (AVX512-BF16 or AMX-BF16), else fp32. Precision changes
                    the arithmetic, so it is part of a training's settings.
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

from evo.errors import UsageError

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


def resolve_precision(precision: str) -> str:
    """`auto` -> bf16 with native bfloat16, else fp32; fp32/bf16 as given."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


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
