"""The project's most important test: every decoded genome computes the same
function in TVM (built for llvm, run on this CPU) and in PyTorch."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from evo.equivalence import check_equivalence
from genomes.sampling import random_layer_genome
from genomes.spec import LayerSpec, SpecError

CHANNELS = st.one_of(st.sampled_from([8, 12, 16, 24, 32, 48, 64, 96, 128, 256]),
                     st.integers(8, 256))


@st.composite
def layer_specs(draw) -> LayerSpec:
    kernel = draw(st.sampled_from([1, 3]))
    stride = draw(st.sampled_from([1, 2]))
    height = draw(st.sampled_from([4, 6, 8, 12, 16]))
    width = draw(st.sampled_from([4, 5, 8, 12, 16]))
    try:
        return LayerSpec(draw(CHANNELS), draw(CHANNELS), height, width, kernel, stride)
    except SpecError:  # pragma: no cover - every drawn combination is valid today
        raise


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=layer_specs(), seed=st.integers(0, 2**32 - 1), length=st.integers(0, 10))
def test_tvm_matches_torch_for_random_genomes(target, spec, seed, length):
    genome = random_layer_genome(np.random.default_rng(seed), spec, length)
    note(f"spec={spec} genome={genome.canonical()}")
    result = check_equivalence(spec, genome, target, seed=seed % 1000)
    assert result.error is None, result.error
    assert result.matches, f"max |tvm - torch| = {result.max_abs_diff}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_program_genes_alone_never_change_results(target, seed):
    """Only program genes, on a layer that exercises padding, stride and a grouped conv."""
    spec = LayerSpec(32, 48, 10, 9, 3, 2, groups=2)
    rng = np.random.default_rng(seed)
    from genomes.sampling import PROGRAM_GENE_NAMES

    genome = random_layer_genome(rng, spec, 10, allowed=PROGRAM_GENE_NAMES)
    note(genome.canonical())
    result = check_equivalence(spec, genome, target, seed=seed % 1000)
    assert result.error is None and result.matches, result


def test_a_wrong_result_is_reported_as_a_mismatch(target):
    """The comparison itself can fail: with zero tolerance, differently ordered float
    sums in TVM and oneDNN disagree somewhere in a 3x3 conv over 64 channels."""
    from genomes.genes import Tile, Vectorize
    from genomes.genome import LayerGenome

    spec = LayerSpec(64, 16, 8, 8, 3, 1)
    genome = LayerGenome((Tile("ci", 8), Tile("ow", 8), Vectorize("ow")))
    result = check_equivalence(spec, genome, target, rtol=0.0, atol=0.0)
    assert result.error is None
    assert not result.matches and result.max_abs_diff > 0
