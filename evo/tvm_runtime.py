"""Compile a layer plan with TVM and call it on numpy arrays."""

from __future__ import annotations

import numpy as np
import tvm

from genomes.plan import LayerPlan
from genomes.tvm_decoder import pack_weights, to_tvm


class CompileError(RuntimeError):
    """TVM could not schedule or compile a plan; the message is TVM's last line."""


def compile_plan(plan: LayerPlan, target: tvm.target.Target):
    """Schedule and compile the plan; returns a TVM Executable or raises CompileError."""
    program = to_tvm(plan)
    if not program.ok:
        raise CompileError(program.error)
    try:
        return tvm.compile(program.func, target=target)
    except Exception as exc:  # noqa: BLE001 - TVM raises many types
        lines = str(exc).strip().splitlines()
        raise CompileError(f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:500]) from None


def tvm_arguments(plan: LayerPlan, data: np.ndarray, weights: list[np.ndarray],
                  device=None) -> list:
    """The function's arguments on `device`: input, packed weights, zeroed output."""
    device = device or tvm.cpu()
    arrays = [data, *pack_weights(plan, weights), np.zeros(plan.out_shape, dtype="float32")]
    return [tvm.runtime.tensor(np.ascontiguousarray(a, dtype="float32"), device) for a in arrays]


def run_plan(lib, plan: LayerPlan, data: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """Run a compiled plan once on host arrays and return its output."""
    args = tvm_arguments(plan, data, weights)
    lib["main"](*args)
    return args[-1].numpy()
