"""A default CPU schedule for the operators around the convs (BN, ReLU, add, pool, linear).

TVM 0.27's CPU pipeline leaves legalized operators as plain serial loops (its dlight
CPU rules cover only GEMV and softmax-like reductions). This rule, applied through
`dlight.ApplyDefaultSchedule` to every PrimFunc not already scheduled (our conv
programs are marked scheduled), inlines chains of elementwise blocks, then for
each remaining block fuses its leading spatial loops and runs them in parallel
when there is enough work, and vectorizes the innermost loop of purely spatial
blocks. A function the rule cannot handle is left as it was.
"""

from __future__ import annotations

import math

from tvm import s_tir, tirx
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base import ScheduleRule, try_inline_contiguous_spatial
from tvm.target import Target

from genomes.plan import largest_divisor_at_most

PARALLEL_MIN_ITERATIONS = 4096  # fewer: thread launch costs more than it saves
VECTOR_LANES = 8  # float32 lanes of an AVX2 register


class ParallelVectorize(ScheduleRule):
    """Parallel outer spatial loops and vectorized inner loops for llvm targets."""

    def apply(self, func: tirx.PrimFunc, target: Target,
              tunable: bool) -> s_tir.Schedule | None:
        if not isinstance(func, tirx.PrimFunc) or target.kind.name != "llvm":
            return None
        try:
            return _schedule(func)
        except Exception:  # noqa: BLE001 - an unusual function stays unscheduled
            return None


def _schedule(func: tirx.PrimFunc) -> s_tir.Schedule | None:
    sch = s_tir.Schedule(func)
    blocks = normalize_prim_func(sch)
    if blocks is None:
        return None
    blocks = try_inline_contiguous_spatial(sch, blocks)
    for block in blocks:
        extents = [iter_info.dom for iter_info in block.iters]
        if not all(isinstance(e, int) for e in extents):
            continue
        kinds = block.dom_kind()
        leading = len(kinds) - len(kinds.lstrip("S"))
        if leading == 0:
            continue
        loops = block.get_loops()
        if block.is_injective():
            total = math.prod(extents)
            lanes = largest_divisor_at_most(total, VECTOR_LANES)
            outer, inner = sch.split(sch.fuse(*loops), factors=[None, lanes])
            if total // lanes >= 2 and total >= PARALLEL_MIN_ITERATIONS:
                sch.parallel(outer)
            if lanes > 1:
                sch.vectorize(inner)
        else:
            spatial = math.prod(extents[:leading])
            work = math.prod(extents)
            fused = sch.fuse(*loops[:leading]) if leading > 1 else loops[0]
            if spatial >= 2 and work >= PARALLEL_MIN_ITERATIONS:
                sch.parallel(fused)
    return sch
