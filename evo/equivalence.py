"""Check that a decoded genome computes the same function in TVM and in PyTorch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from evo.tvm_runtime import CompileError, compile_plan, run_plan
from genomes.genome import LayerGenome, decode_layer
from genomes.spec import LayerSpec
from genomes.torch_decoder import to_torch

RTOL = 1e-4
ATOL = 1e-4


@dataclass(frozen=True)
class EquivalenceResult:
    """`error` is set when the genome did not decode or TVM rejected it;
    otherwise `max_abs_diff` says how far TVM's output was from PyTorch's."""

    genome: LayerGenome
    matches: bool
    max_abs_diff: float | None = None
    error: str | None = None


def check_equivalence(spec: LayerSpec, genome: LayerGenome, target, seed: int = 0,
                      rtol: float = RTOL, atol: float = ATOL) -> EquivalenceResult:
    """Decode `genome` for `spec`, run both decoders on the same random input and
    weights, and compare with `numpy.allclose(tvm, torch, rtol, atol)`."""
    decoded = decode_layer(spec, genome)
    if not decoded.ok:
        return EquivalenceResult(genome, False, error=f"decode: {decoded.error}")
    plan = decoded.plan
    generator = torch.Generator().manual_seed(seed)
    module = to_torch(plan)
    with torch.no_grad():
        for weight in module.weights():
            weight.copy_(torch.randn(weight.shape, generator=generator) * 0.1)
        data = torch.randn((spec.batch, spec.in_channels, spec.height, spec.width),
                           generator=generator)
        expected = module(data).numpy()
    try:
        lib = compile_plan(plan, target)
    except CompileError as exc:
        return EquivalenceResult(genome, False, error=f"tvm: {exc}")
    got = run_plan(lib, plan, data.numpy(), [w.detach().numpy() for w in module.weights()])
    if got.shape != expected.shape:
        return EquivalenceResult(genome, False,
                                 error=f"shape: tvm {got.shape} vs torch {expected.shape}")
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    return EquivalenceResult(genome, bool(np.allclose(got, expected, rtol=rtol, atol=atol)), diff)
