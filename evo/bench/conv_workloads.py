"""Which conv each kernel of a compiled network computes, so two compilations of the
same network (ours and MetaSchedule's) can be compared conv by conv.

Our conv programs are named after their slot (`conv_layer1_0_conv2`, see
`evo.bench.relax_import`). TVM's own conv2d kernels, as the MetaSchedule row compiles
them, are named by the pipeline: LegalizeOps gives each distinct conv workload a
PrimFunc `conv2d`, `conv2d1`, ..., and FuseOps names a fused kernel after the
functions it fuses (`fused_conv2d1_multiply_add_relu`). `tvm_conv_workloads` repeats
the MetaSchedule child's import and legalization (`evo.bench.metaschedule_child`) up
to LegalizeOps and reads each `conv2d*` PrimFunc's data, weight and output shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tvm

from genomes.spec import LayerSpec

_TVM_CONV = re.compile(r"(?:^|_)(conv2d\d*)(?:_|$)")


@dataclass(frozen=True, order=True)
class ConvShape:
    """A conv workload (batch 1): what two compilations of one network share."""

    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel: int
    stride: int
    groups: int

    def describe(self) -> str:
        text = (f"{self.in_channels}->{self.out_channels} {self.height}x{self.width} "
                f"k{self.kernel} s{self.stride}")
        return text + (f" g{self.groups}" if self.groups > 1 else "")


def slot_shape(spec: LayerSpec) -> ConvShape:
    """The workload of a slot's conv."""
    return ConvShape(spec.in_channels, spec.out_channels, spec.height, spec.width,
                     spec.kernel, spec.stride, spec.groups)


def tvm_kernel_conv(symbol: str) -> str | None:
    """The `conv2d*` PrimFunc a TVM kernel symbol fuses, or None."""
    match = _TVM_CONV.search(symbol)
    return match.group(1) if match else None


def tvm_conv_workloads(module, input_shape: tuple[int, ...],
                       target: tvm.target.Target) -> dict[str, ConvShape]:
    """Each `conv2d*` PrimFunc of `module` imported with TVM's own conv2d and legalized
    as the MetaSchedule child does, with its workload."""
    from tvm import relax
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    from evo.bench.relax_import import to_relax

    mod = to_relax(module, input_shape, own_convs=False).mod
    with target:
        mod = tvm.transform.Sequential([relax.transform.DecomposeOpsForInference(),
                                        *cpu.library_dispatch_passes(target),
                                        relax.transform.LegalizeOps()])(mod)
    out = {}
    for var, func in mod.functions.items():
        name = var.name_hint
        if not isinstance(func, tvm.tirx.PrimFunc) or tvm_kernel_conv(name) != name:
            continue
        data, weight, result = (tuple(int(d) for d in p.ty.shape)
                                for p in (func.params[0], func.params[1], func.params[-1]))
        if len(data) != 4 or len(weight) != 4 or len(result) != 4:
            continue
        out[name] = ConvShape(data[1], weight[0], data[2], data[3], weight[2],
                              max(1, data[2] // result[2]), data[1] // weight[1])
    return out
