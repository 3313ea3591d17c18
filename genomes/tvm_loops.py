"""Loop helpers shared by the TVM schedules of direct and Winograd pieces."""

from __future__ import annotations

import tvm
from tvm import tirx


def vectorize_innermost(sch: tvm.s_tir.Schedule, block, shared: int) -> None:
    """Vectorize the block's innermost loop if it is the block's own (not one of the
    `shared` enclosing loops it was computed at) and longer than 1."""
    loops = sch.get_loops(block)
    if len(loops) <= shared:
        return
    loop = loops[-1]
    extent = sch.get(loop).extent
    if isinstance(extent, tirx.IntImm) and extent.value > 1:
        sch.vectorize(loop)
