"""The `inner_kh` gene: the kernel-row loop moved inside the register tile. Its programs
against PyTorch (strides, kernels, pieces, groups, both vector axes, reduction orders,
with `tile_pad` and `winograd`), and the loop nest it promises."""

from __future__ import annotations

import re

import pytest

from evo.equivalence import check_equivalence
from genomes.genes import (
    CacheWrite,
    Fuse,
    Group,
    InnerKh,
    Pack,
    Parallel,
    ReorderReduction,
    SplitRows,
    Tile,
    TilePad,
    Unroll,
    Vectorize,
    Winograd,
)
from genomes.genome import LayerGenome, decode_layer
from genomes.spec import LayerSpec
from genomes.tvm_decoder import to_tvm

# MetaSchedule's resnet20 16->16 kernel, in our genes: 4 channels x 4 rows x 16 columns.
ROWS = (Tile("co", 4), Tile("oh", 4), Tile("ow", 16), Vectorize("ow"), Fuse(3), Parallel(),
        Unroll(512))
CHANNELS = (Tile("co", 16), Pack(16), Vectorize("co"), Tile("oh", 2), Tile("ow", 4),
            CacheWrite(), Fuse(3), Parallel(), Unroll(16))


@pytest.mark.parametrize("spec, genes", [
    (LayerSpec(16, 16, 32, 32, 3), ROWS),
    (LayerSpec(16, 16, 32, 32, 3), ROWS + (CacheWrite(), TilePad())),
    (LayerSpec(16, 32, 32, 32, 3, 2), CHANNELS),
    (LayerSpec(32, 32, 9, 9, 5), CHANNELS),                          # ragged tiles, 5x5
    (LayerSpec(16, 16, 16, 16, 3), (Group(4),) + ROWS),
    (LayerSpec(16, 16, 16, 16, 3), (SplitRows(2),) + CHANNELS),
    (LayerSpec(16, 16, 16, 16, 3), ROWS + (ReorderReduction(("kh", "kw", "ci")),)),
    (LayerSpec(16, 16, 16, 16, 1), ROWS),                            # 1x1: nothing to move
    (LayerSpec(16, 16, 16, 16, 3), (Winograd(2),) + CHANNELS),       # ignored under winograd
])
def test_inner_kh_programs_match_pytorch(target, spec: LayerSpec, genes: tuple) -> None:
    result = check_equivalence(spec, LayerGenome(genes + (InnerKh(),)), target)
    assert result.error is None and result.matches, result


def _loop_vars(genes: tuple) -> list[str]:
    """The conv block's loop variables, outermost first, as the decoder names them."""
    spec = LayerSpec(16, 16, 32, 32, 3)
    script = to_tvm(decode_layer(spec, LayerGenome(genes)).plan).func.script()
    update = script[:script.index('T.sblock("conv0_update")')]
    nest = update[update.rindex("T.parallel("):]
    return re.findall(r"for ([\w, ]+) in", nest)


def test_kh_moves_from_the_reduction_to_just_outside_the_tile_rows() -> None:
    before = ", ".join(_loop_vars(ROWS))
    after = ", ".join(_loop_vars(ROWS + (InnerKh(),)))
    assert re.search(r"ry.*rx.*rc_1.*y_1.*x_1", before), before
    assert re.search(r"rx.*rc_1.*ry.*y_1.*x_1", after), after
