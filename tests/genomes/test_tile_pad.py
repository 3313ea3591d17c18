"""The `tile_pad` gene: the padded input computed inside each outer tile of the conv
instead of in a pass of its own. Its programs against PyTorch (strides, pieces, groups,
both vector axes, row bands), the loop structure it promises, and how it and
`inline_pad` undo each other (with the fused epilogue: tests/genomes/test_epilogue.py)."""

from __future__ import annotations

import pytest

from evo.equivalence import check_equivalence
from genomes.genes import (
    CacheWrite,
    Fuse,
    Group,
    InlinePad,
    Pack,
    Parallel,
    Reorder,
    SplitChannels,
    SplitRows,
    Tile,
    TilePad,
    Unroll,
    Vectorize,
    gene_from_json,
)
from genomes.genome import LayerGenome, decode_layer
from genomes.spec import LayerSpec
from genomes.tvm_decoder import to_tvm

COLUMNS = (Tile("co", 16), Tile("ow", 16), Vectorize("ow"), CacheWrite(), Fuse(3), Parallel(),
           Unroll(64))
CHANNELS = (Tile("co", 16), Pack(16), Vectorize("co"), Tile("oh", 2), Tile("ow", 4),
            CacheWrite(), Fuse(3), Parallel(), Unroll(16))


@pytest.mark.parametrize("spec, genes", [
    (LayerSpec(16, 16, 32, 32, 3), COLUMNS),
    (LayerSpec(16, 32, 32, 32, 3, 2), CHANNELS),
    (LayerSpec(3, 16, 32, 32, 3), COLUMNS),
    (LayerSpec(32, 32, 9, 9, 5), CHANNELS),                          # ragged tiles, padding 2
    (LayerSpec(16, 16, 16, 16, 3), (Group(4),) + COLUMNS),
    (LayerSpec(16, 16, 16, 16, 3), (SplitChannels((1, 1)),) + COLUMNS),
    (LayerSpec(16, 16, 16, 16, 3), (SplitRows(2),) + CHANNELS),
    (LayerSpec(16, 16, 16, 16, 3), (Tile("co", 4), Vectorize("ow"))),  # not parallel
    (LayerSpec(16, 32, 16, 16, 3, 2), CHANNELS + (Reorder(("oh", "co", "ow")), Fuse(2))),
    (LayerSpec(8, 16, 11, 11, 3), COLUMNS + (Reorder(("oh", "co", "ow")), Fuse(2))),
])
def test_tile_pad_programs_match_pytorch(target, spec: LayerSpec, genes: tuple) -> None:
    result = check_equivalence(spec, LayerGenome(genes + (TilePad(),)), target)
    assert result.error is None and result.matches, result


def test_the_padded_copy_is_made_inside_the_parallel_loop() -> None:
    """One parallel region, with the pad block in it, where the default schedule has a
    parallel pass of its own for the pad before the conv's."""
    spec = LayerSpec(16, 16, 32, 32, 3)
    before = to_tvm(decode_layer(spec, LayerGenome(COLUMNS)).plan).func.script()
    after = to_tvm(decode_layer(spec, LayerGenome(COLUMNS + (TilePad(),))).plan).func.script()
    assert before.count("T.parallel(") == 2 and after.count("T.parallel(") == 1
    parallel_at = after.index("T.parallel(")
    assert after.index('T.sblock("pad0")') > parallel_at
    assert before.index('T.sblock("pad0")') < before.rindex("T.parallel(")


def test_tile_pad_and_inline_pad_undo_each_other() -> None:
    spec = LayerSpec(16, 16, 8, 8, 3)
    tiled = decode_layer(spec, LayerGenome((InlinePad(), TilePad()))).plan.schedules[0]
    inlined = decode_layer(spec, LayerGenome((TilePad(), InlinePad()))).plan.schedules[0]
    assert (tiled.tile_pad, tiled.inline_pad) == (True, False)
    assert (inlined.tile_pad, inlined.inline_pad) == (False, True)
    assert gene_from_json({"gene": "tile_pad"}) == TilePad()


def test_tile_pad_does_nothing_on_an_unpadded_conv() -> None:
    spec = LayerSpec(16, 32, 8, 8, 1)
    plain = to_tvm(decode_layer(spec, LayerGenome(COLUMNS)).plan).func.script()
    padded = to_tvm(decode_layer(spec, LayerGenome(COLUMNS + (TilePad(),))).plan).func.script()
    assert plain == padded
