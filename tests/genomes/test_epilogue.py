"""A conv program with its BatchNorm, residual add and ReLU fused (`Epilogue`) computes
what the plain program followed by those operations computes: for one piece with and
without the register tile (`cache_write`), packed weights, the padded input made in the
parallel tile (`tile_pad`), and several pieces."""

from __future__ import annotations

import numpy as np
import pytest
import tvm

from evo.tvm_runtime import compile_plan, run_plan
from genomes.genes import (
    CacheWrite,
    Fuse,
    Pack,
    Parallel,
    SplitChannels,
    Tile,
    TilePad,
    Vectorize,
)
from genomes.genome import LayerGenome, decode_layer
from genomes.spec import LayerSpec
from genomes.tvm_decoder import Epilogue, pack_weights, to_tvm

SPEC = LayerSpec(16, 24, 8, 8, 3, 2)
GENOMES = {
    "plain": LayerGenome(),
    "register tile": LayerGenome((Tile("co", 8), Tile("ow", 4), Vectorize("ow"), CacheWrite())),
    "packed channels": LayerGenome((Tile("co", 8), Pack(8), Tile("ow", 4), Vectorize("co"),
                                    CacheWrite())),
    "no register tile": LayerGenome((Tile("co", 8), Tile("ow", 4), Vectorize("ow"))),
    "pieces": LayerGenome((SplitChannels((1, 4)), Tile("co", 4))),
    "padded in the tile": LayerGenome((Tile("co", 8), Pack(8), Tile("ow", 4), Vectorize("co"),
                                       CacheWrite(), Fuse(3), Parallel(), TilePad())),
}


CASES = [(name, True, True) for name in sorted(GENOMES)] + [
    ("register tile", False, False), ("no register tile", False, True),
    ("pieces", False, True)]


@pytest.mark.parametrize("name,residual,relu", CASES)
def test_fused_epilogue_matches_the_separate_operations(target, name, residual, relu) -> None:
    plan = decode_layer(SPEC, GENOMES[name]).plan
    assert plan is not None
    rng = np.random.default_rng(0)
    data = rng.standard_normal((1, 16, 8, 8)).astype("float32")
    weights = [rng.standard_normal(p.weight_shape(SPEC)).astype("float32") * 0.1
               for p in plan.pieces]
    scale = rng.standard_normal(24).astype("float32")
    shift = rng.standard_normal(24).astype("float32")
    res = rng.standard_normal(plan.out_shape).astype("float32")
    conv = run_plan(compile_plan(plan, target), plan, data, weights)
    expected = conv * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
    if residual:
        expected = expected + res
    if relu:
        expected = np.maximum(expected, 0)

    program = to_tvm(plan, Epilogue(residual=residual, relu=relu))
    assert program.ok, program.error
    lib = tvm.compile(program.func, target=target)
    arrays = [data, *pack_weights(plan, weights), scale, shift, *([res] if residual else []),
              np.zeros(plan.out_shape, "float32")]
    args = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays]
    lib["main"](*args)
    got = args[-1].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    if relu:
        assert (got == 0).any() and (got > 0).any()
    # with the register tile (or several pieces, whose assembly is inlined into the
    # epilogue) the conv's whole output is never stored in a buffer of its own
    stored = "sblock_alloc_buffer((1, 24, 4, 4))" in program.func.script()
    assert stored == (name in ("plain", "no register tile"))
