"""Compile a Relax network for the CPU, run it, and check it against PyTorch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import tvm
from torch import nn
from tvm import relax
from tvm.s_tir import dlight

from evo.bench.cpu_schedule import ParallelVectorize
from evo.bench.relax_import import RelaxNetwork

RTOL = 1e-4
ATOL = 1e-4


def cpu_pipeline(target: tvm.target.Target) -> tvm.transform.Pass:
    """TVM's CPU Relax pipeline with one addition: after operator fusion, every
    PrimFunc not yet scheduled gets `ParallelVectorize`. Inference batch norm is
    decomposed first so it fuses with its neighbours."""
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    @tvm.transform.module_pass(opt_level=0, name="EvoCpuPipeline")
    def _pipeline(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        with target:
            passes = [relax.transform.DecomposeOpsForInference(),
                      *cpu.library_dispatch_passes(target), *cpu.legalize_passes(target),
                      dlight.ApplyDefaultSchedule(ParallelVectorize()),
                      *cpu.dataflow_lower_passes(target), *cpu.finalize_passes(target)]
            return tvm.transform.Sequential(passes)(mod)

    return _pipeline


def compile_network(network: RelaxNetwork | tvm.IRModule,
                    target: tvm.target.Target) -> tvm.runtime.Executable:
    """One executable for the whole network (`main(input) -> output`)."""
    mod = network.mod if isinstance(network, RelaxNetwork) else network
    return tvm.compile(mod, target=target, relax_pipeline=cpu_pipeline(target))


def run_network(executable: tvm.runtime.Executable, data: np.ndarray) -> np.ndarray:
    """Run the compiled network once on the CPU and return its output."""
    vm = relax.VirtualMachine(executable, tvm.cpu())
    out = vm["main"](tvm.runtime.tensor(np.ascontiguousarray(data, dtype="float32"), tvm.cpu()))
    return out.numpy()


@dataclass(frozen=True)
class Agreement:
    """How far a compiled network's output (TVM or a peer) was from PyTorch's on the
    same input."""

    matches: bool
    max_abs_diff: float
    max_rel_diff: float


def check_against_torch(module: nn.Module, executable: tvm.runtime.Executable,
                        input_shape: tuple[int, ...], seed: int = 0, rtol: float = RTOL,
                        atol: float = ATOL) -> Agreement:
    """Run `module` (eval mode, no grad) and the executable on one random input and
    compare with `numpy.allclose(tvm, torch, rtol, atol)`."""
    data, expected = torch_reference(module, input_shape, seed)
    return compare(run_network(executable, data), expected, rtol, atol)


def torch_reference(module: nn.Module, input_shape: tuple[int, ...],
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The random input of seed `seed` and `module`'s output on it (eval mode, no grad;
    the module's mode is restored)."""
    data = torch.randn(input_shape, generator=torch.Generator().manual_seed(seed))
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = module(data).numpy()
    finally:
        module.train(training)
    return data.numpy(), expected


def compare(got: np.ndarray, expected: np.ndarray, rtol: float = RTOL,
            atol: float = ATOL) -> Agreement:
    """`numpy.allclose(got, expected, rtol, atol)` with the largest differences; a shape
    mismatch is a disagreement with infinite differences."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        return Agreement(False, float("inf"), float("inf"))
    diff = np.abs(got - expected)
    rel = diff / np.maximum(np.abs(expected), atol)
    return Agreement(bool(np.allclose(got, expected, rtol=rtol, atol=atol)),
                     float(diff.max(initial=0.0)), float(rel.max(initial=0.0)))
