"""Decode a `LayerPlan` to a scheduled TVM TensorIR function.

The function is `main(data, w0, ..., w{k-1}, output)`: the layer's full NCHW input,
one weight tensor per piece (OIHW, or OIHW[x]o when the piece's schedule packs
its weights, see `pack_weights`; transformed for a Winograd piece, see
`genomes.tvm_winograd`), and the layer's NCHW output. Each piece is a
TE compute stage `conv{i}` (reading a zero-padded copy `pad{i}` of its input strip
when the layer pads); with more than one piece a stage `output` assembles them.

With an `Epilogue` the function also takes per-channel `scale` and `shift` (an
inference BatchNorm) and, when the epilogue adds one, a `residual` of the output's
shape, before `output`, and computes `max(conv * scale + shift + residual, 0)` (the
ReLU when asked) in the same kernel: written back from the register tile with
`cache_write`, after each outer tile without it, with the assembly of several pieces.

Schedules are created with `enable_check=False` because vectorizing a spatial
loop that lies under reduction loops fails TVM's dataflow check; the property
test in `tests/genomes/test_equivalence.py` is what proves the result correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import te, tirx

from genomes import tvm_winograd
from genomes.plan import (
    LayerPlan,
    Piece,
    ScheduleConfig,
    largest_divisor_at_most,
    winograd_fits,
)
from genomes.tvm_loops import vectorize_innermost

# The version of the programs genomes decode to: part of every measurement's cache key
# (`evo.measure.tvm_evaluator`), so a change here is never answered with an older
# program's time. 2: accumulators laid out with the vector's lanes contiguous, Winograd.
PROGRAM_VERSION = 2


@dataclass(frozen=True)
class Epilogue:
    """What follows the conv in the same kernel: always a per-channel affine map
    (`scale`, `shift`: an inference BatchNorm), then optionally the addition of a
    residual tensor and a ReLU."""

    residual: bool = False
    relu: bool = False


@dataclass(frozen=True)
class TvmProgram:
    """A scheduled function or the reason TVM rejected the schedule."""

    func: tirx.PrimFunc | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.func is not None


def to_tvm(plan: LayerPlan, epilogue: Epilogue | None = None) -> TvmProgram:
    """Build and schedule the plan's TensorIR (with `epilogue` fused, see the module
    docstring); a TVM failure comes back as `error`."""
    try:
        func = _compute(plan, epilogue)
        sch = tvm.s_tir.Schedule(func, enable_check=False)
        single = plan.is_single_full_piece()
        for index, (piece, config) in enumerate(zip(plan.pieces, plan.schedules, strict=True)):
            _schedule_piece(sch, plan, index, piece, config,
                            epilogue=epilogue is not None and single)
        if not single:
            if epilogue is not None:
                sch.compute_inline(sch.get_sblock("output"))
            _schedule_assembly(sch, plan, "epilogue" if epilogue is not None else "output")
        return TvmProgram(sch.mod["main"])
    except Exception as exc:  # noqa: BLE001 - TVM raises many types; the caller gets a value
        first = str(exc).strip().splitlines()
        return TvmProgram(None, f"{type(exc).__name__}: {first[-1] if first else ''}"[:500])


def pack_factor(plan: LayerPlan, index: int) -> int:
    """The weight packing factor piece `index` really uses (1 = plain OIHW)."""
    return largest_divisor_at_most(plan.pieces[index].out_channels, plan.schedules[index].pack)


def uses_winograd(plan: LayerPlan, index: int) -> bool:
    """Whether piece `index` is computed with Winograd (its schedule asks for it, and the
    layer is one Winograd fits, as the gene checks)."""
    return plan.schedules[index].winograd > 0 and winograd_fits(plan.spec)


def pack_weights(plan: LayerPlan, weights: list[np.ndarray]) -> list[np.ndarray]:
    """Lay out per-piece OIHW weights as the TVM function's weight arguments expect
    (transformed first for a Winograd piece)."""
    out = []
    for index, w in enumerate(weights):
        x = pack_factor(plan, index)
        if uses_winograd(plan, index):
            out.append(tvm_winograd.transform_weights(w, plan.schedules[index].winograd, x))
            continue
        if x == 1:
            out.append(np.ascontiguousarray(w))
            continue
        co, cig, k, _ = w.shape
        out.append(np.ascontiguousarray(w.reshape(co // x, x, cig, k, k).transpose(0, 2, 3, 4, 1)))
    return out


def _compute(plan: LayerPlan, epilogue: Epilogue | None = None) -> tirx.PrimFunc:
    spec = plan.spec
    data = te.placeholder((spec.batch, spec.in_channels, spec.height, spec.width), name="data")
    weights, stages = [], []
    for index, piece in enumerate(plan.pieces):
        weight, stage = _piece_compute(plan, index, piece, data)
        weights.append(weight)
        stages.append(stage)
    out = stages[0] if plan.is_single_full_piece() else _assembly(plan, stages)
    if epilogue is None:
        return te.create_prim_func([data, *weights, out])
    channels = plan.out_shape[1]
    scale = te.placeholder((channels,), name="scale")
    shift = te.placeholder((channels,), name="shift")
    extra = [scale, shift]
    residual = None
    if epilogue.residual:
        residual = te.placeholder(plan.out_shape, name="residual")
        extra.append(residual)

    def body(n, c, y, x):
        value = out[n, c, y, x] * scale[c] + shift[c]
        if residual is not None:
            value = value + residual[n, c, y, x]
        return tirx.max(value, tirx.const(0.0, "float32")) if epilogue.relu else value

    return te.create_prim_func([data, *weights, *extra,
                                te.compute(plan.out_shape, body, name="epilogue")])


def _piece_compute(plan: LayerPlan, index: int, piece: Piece, data: te.Tensor):
    if uses_winograd(plan, index):
        return tvm_winograd.compute(plan, index, piece, data, pack_factor(plan, index))
    spec = plan.spec
    pad, k, s = spec.padding, spec.kernel, spec.stride
    cig = piece.in_channels // piece.groups
    cog = piece.out_channels // piece.groups
    x_pack = pack_factor(plan, index)
    if x_pack > 1:
        weight = te.placeholder((piece.out_channels // x_pack, cig, k, k, x_pack), name=f"w{index}")

        def w_at(co, rc, ry, rx):
            return weight[co // x_pack, rc, ry, rx, co % x_pack]
    else:
        weight = te.placeholder((piece.out_channels, cig, k, k), name=f"w{index}")

        def w_at(co, rc, ry, rx):
            return weight[co, rc, ry, rx]

    c0, r0, rows = piece.in_start, piece.row_start, piece.rows
    if pad > 0:
        padded = te.compute(
            (spec.batch, piece.in_channels, rows + 2 * pad, spec.width + 2 * pad),
            lambda n, c, y, x: tirx.if_then_else(
                tirx.all(y >= pad, y < rows + pad, x >= pad, x < spec.width + pad),
                data[n, c + c0, y - pad + r0, x - pad], tirx.const(0.0, "float32")),
            name=f"pad{index}",
        )

        def src(n, c, y, x):
            return padded[n, c, y, x]
    else:
        def src(n, c, y, x):
            return data[n, c + c0, y + r0, x]

    rc = te.reduce_axis((0, cig), name="rc")
    ry = te.reduce_axis((0, k), name="ry")
    rx = te.reduce_axis((0, k), name="rx")

    def channel(co):
        return rc if piece.groups == 1 else (co // cog) * cig + rc

    conv = te.compute(
        (spec.batch, piece.out_channels, piece.out_rows(spec), spec.out_width),
        lambda n, co, y, x: te.sum(src(n, channel(co), y * s + ry, x * s + rx)
                                   * w_at(co, rc, ry, rx), axis=[rc, ry, rx]),
        name=f"conv{index}",
    )
    return weight, conv


def _assembly(plan: LayerPlan, stages: list[te.Tensor]) -> te.Tensor:
    spec = plan.spec

    def body(n, c, y, x):
        last = len(plan.pieces) - 1
        p = plan.pieces[last]
        expr = stages[last][n, c - p.out_start, y - p.out_row_start, x]
        for i in range(last - 1, -1, -1):
            p = plan.pieces[i]
            rows = p.out_rows(spec)
            inside = tirx.all(c >= p.out_start, c < p.out_stop,
                              y >= p.out_row_start, y < p.out_row_start + rows)
            expr = tirx.if_then_else(inside, stages[i][n, c - p.out_start, y - p.out_row_start, x],
                                     expr)
        return expr

    return te.compute(plan.out_shape, body, name="output")


def _schedule_piece(sch: tvm.s_tir.Schedule, plan: LayerPlan, index: int, piece: Piece,
                    config: ScheduleConfig, epilogue: bool = False) -> None:
    if uses_winograd(plan, index):
        tvm_winograd.schedule(sch, plan, index, piece, config, epilogue)
        return
    spec = plan.spec
    block = sch.get_sblock(f"conv{index}")
    if spec.padding > 0:
        pad_block = sch.get_sblock(f"pad{index}")
        if config.inline_pad:
            sch.compute_inline(pad_block)
        elif not config.tile_pad:  # else computed at the outer tile, below
            _schedule_elementwise(sch, pad_block, config.parallel, config.vectorize is not None)

    n, co, y, x, rc, ry, rx = sch.get_loops(block)
    extents = {"co": piece.out_channels, "oh": piece.out_rows(spec), "ow": spec.out_width,
               "ci": piece.in_channels // piece.groups}
    loops = {"co": co, "oh": y, "ow": x, "ci": rc}
    outer, inner = {}, {}
    for axis, loop in loops.items():
        factor = largest_divisor_at_most(extents[axis], config.tile(axis))
        outer[axis], inner[axis] = sch.split(loop, factors=[None, factor])
    inner_extent = {a: largest_divisor_at_most(extents[a], config.tile(a)) for a in extents}
    outer_loops = [n] + [outer[a] for a in config.outer_order]
    kh_inside = config.inner_kh and spec.kernel > 1
    reduction = [{"ci": outer["ci"], "kh": ry, "kw": rx}[a] for a in config.reduction_order
                 if not (kh_inside and a == "kh")]
    reduction.append(inner["ci"])
    inner_axes = ["co", "oh", "ow"]
    if config.vectorize is not None:
        inner_axes.remove(config.vectorize)
        inner_axes.append(config.vectorize)
    tile = [inner[a] for a in inner_axes]
    if kh_inside:  # just outside the tile's rows, so their input rows serve every kh
        tile.insert(inner_axes.index("oh"), ry)
    sch.reorder(*outer_loops, *reduction, *tile)

    if config.cache_write:
        write_back = sch.cache_write(block, 0, "local")
        sch.reverse_compute_at(write_back, outer_loops[-1])
        if config.vectorize == "co":  # accumulators with the vector's lanes contiguous
            sch.transform_layout(block, ("write", 0), lambda n, c, y, x: (n, y, x, c))
        if epilogue:  # the epilogue is computed as the register tile is written back
            sch.reverse_compute_inline(sch.get_sblock("epilogue"))
        if config.vectorize is not None:
            vectorize_innermost(sch, write_back, shared=len(outer_loops))
    elif epilogue:  # ... else after each outer tile, while the tile is in cache
        tail = sch.get_sblock("epilogue")
        sch.reverse_compute_at(tail, outer_loops[-1])
        if config.vectorize is not None:
            vectorize_innermost(sch, tail, shared=len(outer_loops))
    init = sch.decompose_reduction(block, reduction[0])
    vector_extent = inner_extent[config.vectorize] if config.vectorize else 1
    if vector_extent > 1:
        sch.vectorize(inner[config.vectorize])
        vectorize_innermost(sch, init, shared=len(outer_loops))
    if config.unroll:
        sch.annotate(reduction[0], "pragma_auto_unroll_max_step", config.unroll)
        sch.annotate(reduction[0], "pragma_unroll_explicit", 1)
    depth = min(config.fuse, len(outer_loops))
    top = sch.fuse(*outer_loops[:depth]) if depth > 1 else outer_loops[0]
    if config.parallel:
        sch.parallel(top)
    if spec.padding > 0 and config.tile_pad and not config.inline_pad:
        sch.compute_at(pad_block, top)
        if config.vectorize is not None:
            vectorize_innermost(sch, pad_block, shared=1)


def _schedule_assembly(sch: tvm.s_tir.Schedule, plan: LayerPlan, block: str) -> None:
    parallel = any(c.parallel for c in plan.schedules)
    vectorize = any(c.vectorize for c in plan.schedules)
    _schedule_elementwise(sch, sch.get_sblock(block), parallel, vectorize)


def _schedule_elementwise(sch, block, parallel: bool, vectorize: bool) -> None:
    n, c, y, x = sch.get_loops(block)
    if parallel:
        sch.parallel(sch.fuse(n, c, y))
    if vectorize:
        sch.vectorize(x)
