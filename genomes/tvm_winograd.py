"""Winograd's minimal filtering F(m x m, 3 x 3) for one piece: compute and schedule.

A piece whose schedule has `winograd = m` (3x3 kernel, stride 1) is computed in these
stages of the same TensorIR function, instead of the direct conv:

- `wdata{i}[eps, nu, c, p] = sum B[a, eps] B[b, nu] d[c, p, a, b]`: each input tile
  `d` (alpha x alpha, alpha = m + 2, read from the zero-padded strip, overlapping by
  2) transformed, for every input channel c and tile p (p runs over batch, tile rows,
  tile columns), in two passes (`wrow{i}` along the rows, then down the columns);
- the weights, transformed once when they are laid out (`transform_weights`:
  `U[eps, nu, co, c] = sum G[eps, kh] G[nu, kw] w[co, c, kh, kw]`, packed as
  [alpha, alpha, CO/x, C, x] when the schedule packs by x);
- `wgemm{i}[eps, nu, co, p] = sum_c U[eps, nu, co, c] wdata{i}[eps, nu, group(co, c), p]`:
  alpha^2 independent matrix products, the bulk of the work;
- `conv{i}[n, co, y, x] = sum A[a, y % m] A[b, x % m] wgemm{i}[a, b, co, tile(n, y, x)]`:
  the output transform, also in two passes (`wback{i}` first), under the same name and
  shape as the direct conv's stage, so the assembly of several pieces and the fused
  epilogue read it unchanged.

The transform matrices come from TVM's own Cook-Toom construction (`matrices`), the
same numbers in the kernel and in the weight transform. The result equals the direct
conv's up to float rounding (F(4x4) rounds more than F(2x2)); the property tests
compare both with PyTorch.

The product is scheduled like a direct conv's register tile: `tile(co)` and `tile(ow)`
tile its output channels and tiles, `tile(ci)` its reduction, `vectorize(co|ow)` makes
one of the two inner tiles the vector, `cache_write` accumulates in registers, `unroll`
unrolls the reduction, `fuse` + `parallel` spread the outer tiles over the threads.
The transforms are unrolled over the tile (the constant matrices fold into the code)
and run over channels in parallel when the schedule is parallel; the input transform is
vectorized over a run of tiles along a tile row (vectorizing the output transform the
same way measured no faster).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import tvm
from tvm import te, tirx

from genomes.plan import (
    LayerPlan,
    Piece,
    ScheduleConfig,
    largest_divisor_at_most,
    winograd_tiles,
)
from genomes.tvm_loops import vectorize_innermost

KERNEL = 3
VECTOR_TILES = 16  # the longest run of tiles a transform vectorizes over


@functools.cache
def matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, B, G) of F(m x m, 3 x 3), float64: A is alpha x m, B alpha x alpha, G alpha x 3."""
    from tvm.topi.nn.winograd_util import _cook_toom_convolution, _interpolation_points

    points = _interpolation_points(m + KERNEL - 2)
    a, b, g = _cook_toom_convolution(points, m, KERNEL)
    return (np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
            np.asarray(g, dtype=np.float64))


def weight_shape(piece: Piece, m: int, pack: int) -> tuple[int, ...]:
    """The transformed weights' shape as the function takes them."""
    alpha, cig = m + KERNEL - 1, piece.in_channels // piece.groups
    if pack > 1:
        return (alpha, alpha, piece.out_channels // pack, cig, pack)
    return (alpha, alpha, piece.out_channels, cig)


def transform_weights(w: np.ndarray, m: int, pack: int) -> np.ndarray:
    """OIHW 3x3 weights -> U (see the module docstring), float32, laid out for `pack`."""
    _, _, g = matrices(m)
    u = np.einsum("ek,nl,oikl->enoi", g, g, w.astype(np.float64)).astype(np.float32)
    if pack > 1:
        alpha, _, co, cig = u.shape
        u = u.reshape(alpha, alpha, co // pack, pack, cig).transpose(0, 1, 2, 4, 3)
    return np.ascontiguousarray(u)


def _const(matrix: np.ndarray, name: str) -> te.Tensor:
    """A constant matrix as a stage of selects, which fold away once its loops are
    unrolled (the stage itself is inlined)."""
    rows, cols = matrix.shape

    def value(i, j):
        out = tirx.const(0.0, "float32")
        for r in range(rows):
            for c in range(cols):
                if matrix[r, c] != 0:
                    out = tirx.Select(tirx.all(i == r, j == c),
                                      tirx.const(float(matrix[r, c]), "float32"), out)
        return out

    return te.compute(matrix.shape, value, name=name)


def compute(plan: LayerPlan, index: int, piece: Piece, data: te.Tensor,
            pack: int) -> tuple[te.Tensor, te.Tensor]:
    """The piece's transformed-weight placeholder and its output stage `conv{index}`."""
    spec, m = plan.spec, plan.schedules[index].winograd
    alpha = m + KERNEL - 1
    a_np, b_np, _ = matrices(m)
    a_mat, b_mat = _const(a_np, f"wA{index}"), _const(b_np, f"wB{index}")
    cig, cog = piece.in_channels // piece.groups, piece.out_channels // piece.groups
    out_h, out_w = piece.out_rows(spec), spec.out_width
    tiles_h, tiles_w = winograd_tiles(spec, piece, m)
    tiles = spec.batch * tiles_h * tiles_w
    pad, rows, c0, r0 = spec.padding, piece.rows, piece.in_start, piece.row_start

    def padded(n, c, y, x):  # the strip zero-padded by `pad`, and by zeros past its end
        inside = tirx.all(y >= pad, y < rows + pad, x >= pad, x < spec.width + pad)
        return tirx.if_then_else(inside, data[n, c + c0, y - pad + r0, x - pad],
                                 tirx.const(0.0, "float32"))

    def tile_of(p):
        return p // (tiles_h * tiles_w), (p // tiles_w) % tiles_h * m, p % tiles_w * m

    rb = te.reduce_axis((0, alpha), name="rb")

    def rows_transform(a, nu, c, p):  # one pass: along each row of the tile
        n, y, x = tile_of(p)
        return te.sum(padded(n, c, y + a, x + rb) * b_mat[rb, nu], axis=rb)

    half = te.compute((alpha, alpha, piece.in_channels, tiles), rows_transform,
                      name=f"wrow{index}")
    ra = te.reduce_axis((0, alpha), name="ra")
    transformed = te.compute(
        (alpha, alpha, piece.in_channels, tiles),
        lambda eps, nu, c, p: te.sum(half[ra, nu, c, p] * b_mat[ra, eps], axis=ra),
        name=f"wdata{index}")
    weight = te.placeholder(weight_shape(piece, m, pack), name=f"w{index}")

    def u_at(eps, nu, co, c):
        if pack > 1:
            return weight[eps, nu, co // pack, c, co % pack]
        return weight[eps, nu, co, c]

    rc = te.reduce_axis((0, cig), name="rc")

    def channel(co):
        return rc if piece.groups == 1 else (co // cog) * cig + rc

    product = te.compute(
        (alpha, alpha, piece.out_channels, tiles),
        lambda eps, nu, co, p: te.sum(u_at(eps, nu, co, rc) * transformed[eps, nu, channel(co), p],
                                      axis=rc),
        name=f"wgemm{index}")
    sb = te.reduce_axis((0, alpha), name="sb")
    back = te.compute(  # one pass back: along each row of the product's tile
        (alpha, m, piece.out_channels, tiles),
        lambda a, vx, co, p: te.sum(product[a, sb, co, p] * a_mat[sb, vx], axis=sb),
        name=f"wback{index}")
    sa = te.reduce_axis((0, alpha), name="sa")

    def inverse(n, co, y, x):
        p = n * tiles_h * tiles_w + (y // m) * tiles_w + x // m
        return te.sum(back[sa, x % m, co, p] * a_mat[sa, y % m], axis=sa)

    conv = te.compute((spec.batch, piece.out_channels, out_h, out_w), inverse,
                      name=f"conv{index}")
    return weight, conv


def schedule(sch: tvm.s_tir.Schedule, plan: LayerPlan, index: int, piece: Piece,
             config: ScheduleConfig, epilogue: bool = False) -> None:
    """Schedule the stages `compute` made (see the module docstring); with `epilogue`
    the single piece's fused epilogue is computed as each output tile is written."""
    for name in (f"wA{index}", f"wB{index}"):
        sch.compute_inline(sch.get_sblock(name))

    _schedule_input_transform(sch, plan, index, piece, config)
    _schedule_product(sch, plan, index, piece, config)

    _schedule_output_transform(sch, plan, index, piece, config, epilogue)


def _schedule_output_transform(sch: tvm.s_tir.Schedule, plan: LayerPlan, index: int,
                               piece: Piece, config: ScheduleConfig, epilogue: bool) -> None:
    """Per output channel and tile: both passes unrolled over the tile into a local
    tile, written back through the epilogue. (Vectorizing over a run of tiles, as the
    input transform does, measured no faster.)"""
    m = config.winograd
    block = sch.get_sblock(f"conv{index}")
    n, co, y, x, sa = sch.get_loops(block)
    yo, yi = sch.split(y, factors=[None, m])
    xo, xi = sch.split(x, factors=[None, m])
    sch.reorder(n, co, yo, xo, yi, xi, sa)
    back = sch.get_sblock(f"wback{index}")
    sch.compute_at(back, xo)
    sch.set_scope(back, 0, "local")
    write_back = sch.cache_write(block, 0, "local")
    sch.reverse_compute_at(write_back, xo)
    if epilogue:
        sch.reverse_compute_inline(sch.get_sblock("epilogue"))
    for loop in (*sch.get_loops(back)[4:], yi, xi, sa, *sch.get_loops(write_back)[4:]):
        sch.unroll(loop)
    top = sch.fuse(n, co)
    if config.parallel:
        sch.parallel(top)


def _schedule_input_transform(sch: tvm.s_tir.Schedule, plan: LayerPlan, index: int,
                              piece: Piece, config: ScheduleConfig) -> None:
    """Per input channel and run of tiles along a tile row: both passes unrolled over the
    tile, vectorized over the run (inputs read `m` apart)."""
    spec, m = plan.spec, config.winograd
    run = largest_divisor_at_most(winograd_tiles(spec, piece, m)[1], VECTOR_TILES)
    block = sch.get_sblock(f"wdata{index}")
    eps, nu, c, p, ra = sch.get_loops(block)
    p_o, p_i = sch.split(p, factors=[None, run])
    sch.reorder(c, p_o, eps, nu, ra, p_i)
    half = sch.get_sblock(f"wrow{index}")
    sch.compute_at(half, p_o)
    sch.set_scope(half, 0, "local")
    if run > 1:
        a, nu_h, p_h, rb = sch.get_loops(half)[2:]
        sch.reorder(a, nu_h, rb, p_h)
    else:  # a run of one tile has no loop of its own
        a, nu_h, rb = sch.get_loops(half)[2:]
    for target, reduction in ((half, rb), (block, ra)):
        init = sch.decompose_reduction(target, reduction)
        if run > 1:
            sch.vectorize(sch.get_loops(init)[-1])
    for loop in (a, nu_h, rb, eps, nu, ra):
        sch.unroll(loop)
    if run > 1:
        sch.vectorize(p_h)
        sch.vectorize(p_i)
    if config.parallel:
        sch.parallel(c)


def _schedule_product(sch: tvm.s_tir.Schedule, plan: LayerPlan, index: int, piece: Piece,
                      config: ScheduleConfig) -> None:
    spec, m = plan.spec, config.winograd
    block = sch.get_sblock(f"wgemm{index}")
    eps, nu, co, p, rc = sch.get_loops(block)
    tiles = spec.batch * math.prod(winograd_tiles(spec, piece, m))
    extents = {"co": piece.out_channels, "ow": tiles, "ci": piece.in_channels // piece.groups}
    factor = {a: largest_divisor_at_most(e, config.tile(a)) for a, e in extents.items()}
    co_o, co_i = sch.split(co, factors=[None, factor["co"]])
    p_o, p_i = sch.split(p, factors=[None, factor["ow"]])
    rc_o, rc_i = sch.split(rc, factors=[None, factor["ci"]])
    vector = {"co": co_i, "ow": p_i}.get(config.vectorize or "")
    inner = [co_i, p_i] if vector is not co_i else [p_i, co_i]
    sch.reorder(eps, nu, co_o, p_o, rc_o, rc_i, *inner)
    outer = [eps, nu, co_o, p_o]
    if config.cache_write:
        write_back = sch.cache_write(block, 0, "local")
        sch.reverse_compute_at(write_back, p_o)
        if vector is co_i:  # accumulators with the vector's lanes contiguous
            sch.transform_layout(block, ("write", 0), lambda e, n, c, p: (e, n, p, c))
        if vector is not None:
            vectorize_innermost(sch, write_back, shared=len(outer))
    init = sch.decompose_reduction(block, rc_o)
    if vector is not None and factor[config.vectorize] > 1:
        sch.vectorize(vector)
        vectorize_innermost(sch, init, shared=len(outer))
    if config.unroll:
        sch.annotate(rc_o, "pragma_auto_unroll_max_step", config.unroll)
        sch.annotate(rc_o, "pragma_unroll_explicit", 1)
    depth = min(max(config.fuse, 1), len(outer))
    top = sch.fuse(*outer[:depth]) if depth > 1 else outer[0]
    if config.parallel:
        sch.parallel(top)

