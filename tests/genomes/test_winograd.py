"""The `winograd` gene: its transform matrices, its TVM programs against PyTorch (tile
sizes, ragged tiles, padding, groups, pieces, packed weights, both vector axes, the fused
epilogue), its precondition, and where slots allow it."""

from __future__ import annotations

import numpy as np
import pytest
import tvm

from evo.equivalence import check_equivalence
from evo.networks import load_network
from evo.tvm_runtime import compile_plan, run_plan
from genomes.genes import (
    CacheWrite,
    Depthwise,
    Fuse,
    GeneError,
    GenomeFormatError,
    Group,
    Pack,
    Parallel,
    SplitChannels,
    SplitRows,
    Tile,
    Unroll,
    Vectorize,
    Winograd,
    gene_from_json,
)
from genomes.genome import LayerGenome, decode_layer
from genomes.plan import initial_plan
from genomes.spec import LayerSpec
from genomes.tvm_decoder import Epilogue, pack_weights, to_tvm
from genomes.tvm_winograd import matrices, transform_weights


@pytest.mark.parametrize("m", [2, 4])
def test_matrices_compute_a_1d_correlation(m: int) -> None:
    """A^T [(G g) * (B^T d)] is the valid correlation of d (m + 2 values) with g (3)."""
    a, b, g = matrices(m)
    assert a.shape == (m + 2, m) and b.shape == (m + 2, m + 2) and g.shape == (m + 2, 3)
    rng = np.random.default_rng(m)
    d, w = rng.standard_normal(m + 2), rng.standard_normal(3)
    got = a.T @ ((g @ w) * (b.T @ d))
    expected = np.array([d[i:i + 3] @ w for i in range(m)])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_weight_transform_is_g_w_gt_and_packs_by_output_channel() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 3, 3, 3)).astype("float32")
    _, _, g = matrices(2)
    u = transform_weights(w, 2, 1)
    assert u.shape == (4, 4, 8, 3)
    np.testing.assert_allclose(u[:, :, 5, 1], g @ w[5, 1] @ g.T, rtol=1e-5, atol=1e-6)
    packed = transform_weights(w, 2, 4)
    assert packed.shape == (4, 4, 2, 3, 4)
    np.testing.assert_array_equal(packed[:, :, 1, 2, 3], u[:, :, 7, 2])


VECTOR_CO = (Tile("co", 8), Pack(8), Vectorize("co"), Tile("ow", 4), CacheWrite(), Fuse(3),
             Parallel(), Unroll(16))
CASES = {
    "F(2x2)": (LayerSpec(16, 16, 8, 8, 3), (Winograd(2),)),
    "F(4x4), ragged tiles": (LayerSpec(16, 32, 7, 9, 3), (Winograd(4), *VECTOR_CO)),
    "F(4x4), no padding": (LayerSpec(8, 8, 10, 10, 3, padding=0), (Winograd(4),)),
    "vectorized over tiles": (LayerSpec(16, 16, 8, 8, 3),
                              (Winograd(2), Tile("co", 4), Tile("ow", 8), Vectorize("ow"),
                               CacheWrite())),
    "grouped": (LayerSpec(16, 16, 8, 8, 3), (Group(4), Winograd(2), *VECTOR_CO)),
    "depthwise": (LayerSpec(16, 16, 8, 8, 3), (Depthwise(), Winograd(4), Parallel())),
    "row strips": (LayerSpec(8, 8, 10, 10, 3), (SplitRows(2), Winograd(4), Parallel())),
    "one of two pieces": (LayerSpec(16, 16, 8, 8, 3),
                          (SplitChannels((1, 2)), Winograd(2, piece=1), Tile("ci", 4))),
    "batch 2": (LayerSpec(8, 16, 6, 6, 3, batch=2), (Winograd(2), *VECTOR_CO)),
    "one tile": (LayerSpec(32, 32, 4, 4, 3), (Winograd(4), *VECTOR_CO)),
    "one tile a row": (LayerSpec(8, 8, 5, 3, 3), (Winograd(4), Parallel())),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_winograd_programs_match_pytorch(target, name: str) -> None:
    spec, genes = CASES[name]
    genome = LayerGenome(genes)
    plan = decode_layer(spec, genome).plan
    assert plan is not None and any(s.winograd for s in plan.schedules)
    result = check_equivalence(spec, genome, target)
    assert result.error is None and result.matches, result


def test_winograd_differs_from_the_direct_program(target) -> None:
    """The comparison can fail: the Winograd program is another program, and at zero
    tolerance it rounds differently from PyTorch."""
    spec = LayerSpec(16, 16, 8, 8, 3)
    result = check_equivalence(spec, LayerGenome((Winograd(4),)), target, rtol=0.0, atol=0.0)
    assert result.error is None and not result.matches and 0 < result.max_abs_diff < 1e-4
    assert "wgemm0" in to_tvm(decode_layer(spec, LayerGenome((Winograd(4),))).plan).func.script()


@pytest.mark.parametrize("cache_write", [True, False])
def test_fused_epilogue_on_a_winograd_program(target, cache_write: bool) -> None:
    spec = LayerSpec(16, 16, 8, 8, 3)
    genes = (Winograd(4), Tile("co", 8), Pack(8), Vectorize("co"), Parallel())
    plan = decode_layer(spec, LayerGenome(genes + ((CacheWrite(),) if cache_write else ()))).plan
    rng = np.random.default_rng(1)
    data = rng.standard_normal((1, 16, 8, 8)).astype("float32")
    weights = [rng.standard_normal(p.weight_shape(spec)).astype("float32") * 0.1
               for p in plan.pieces]
    scale, shift = (rng.standard_normal(16).astype("float32") for _ in range(2))
    residual = rng.standard_normal(plan.out_shape).astype("float32")
    conv = run_plan(compile_plan(plan, target), plan, data, weights)
    expected = np.maximum(conv * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
                          + residual, 0)
    program = to_tvm(plan, Epilogue(residual=True, relu=True))
    assert program.ok, program.error
    lib = tvm.compile(program.func, target=target)
    arrays = [data, *pack_weights(plan, weights), scale, shift, residual,
              np.zeros(plan.out_shape, "float32")]
    args = [tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays]
    lib["main"](*args)
    got = args[-1].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert (got == 0).any() and (got > 0).any()


@pytest.mark.parametrize("spec", [LayerSpec(16, 16, 8, 8, 1), LayerSpec(16, 16, 8, 8, 3, 2),
                                  LayerSpec(16, 16, 8, 8, 5)])
def test_winograd_needs_a_3x3_conv_at_stride_1(spec: LayerSpec) -> None:
    with pytest.raises(GeneError, match="winograd.*needs a 3x3 conv at stride 1"):
        Winograd(2).apply(initial_plan(spec))


def test_winograd_json_and_bad_tiles() -> None:
    gene = Winograd(4, piece=1)
    assert gene_from_json(gene.to_json()) == gene
    for bad in (3, 6, 0, "4", True):
        with pytest.raises(GenomeFormatError, match="winograd.tile must be one of 2, 4"):
            gene_from_json({"gene": "winograd", "tile": bad})


def test_slots_allow_winograd_exactly_on_3x3_convs_at_stride_1() -> None:
    network = load_network("resnet20")
    allowed = {slot.id for slot in network.slots if "winograd" in slot.allowed}
    expected = {slot.id for slot in network.slots
                if slot.spec.kernel == 3 and slot.spec.stride == 1}
    assert allowed == expected and 0 < len(allowed) < len(network.slots)
    assert all("tile" in slot.allowed for slot in network.slots)


def test_a_network_with_winograd_convs_compiles_whole_and_matches_pytorch(target) -> None:
    """The deploy path (`to_relax`, epilogues fused, weights transformed as constants):
    tiny with the `winograd` seed on its two 3x3 convs at stride 1 agrees with PyTorch."""
    from evo.bench.end_to_end import genome_end_to_end
    from evo.search.variation import WINOGRAD_SCHEDULE, seed_genome

    network = load_network("tiny")
    genome = seed_genome(network.slots, WINOGRAD_SCHEDULE)
    assert sorted(s for s, g in genome.layers.items() if g == WINOGRAD_SCHEDULE) == [
        "conv1", "layer1.conv2"]
    row = genome_end_to_end(network, genome, target, threads=1)
    assert row.error is None and row.agreement is not None and row.agreement.matches
    assert row.convs == len(network.slots) and row.fused >= 2
