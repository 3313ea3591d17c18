"""The BlockSwap-style baseline: uniform group/bottleneck, largest legal factor."""

from __future__ import annotations

from evo.bench.blockswap import blockswap_baseline, fisher_violation, uniform_genome
from evo.capacity import FisherPotential
from evo.networks import load_network, transform_network
from evo.search.variation import TEMPLATE_SCHEDULE
from genomes.genome import NetworkGenome


def _factor_of(genome: NetworkGenome) -> int:
    factors = {g.to_json().get("groups", g.to_json().get("factor"))
               for layer in genome.layers.values() for g in layer.genes if g.kind == "neural"}
    (factor,) = factors
    return factor


def test_uniform_genome_changes_every_allowed_slot_and_decodes():
    network = load_network("tiny")
    genome, slots = uniform_genome(network, "group", 4, TEMPLATE_SCHEDULE)
    # conv1 reads 3 input channels: group(4) does not apply there
    assert set(slots) == {s.id for s in network.slots} - {"conv1"}
    assert set(genome.layers) == {s.id for s in network.slots}
    assert transform_network(network, genome, plans_only=True).ok
    genome, slots = uniform_genome(network, "bottleneck", 2)
    assert set(slots) == {s.id for s in network.slots if "bottleneck" in s.allowed}
    assert slots and len(slots) < len(network.slots)


def test_largest_legal_factor_and_fewest_flops_win():
    network = load_network("tiny")
    limits = {"group": 4, "bottleneck": 2}

    def violation(genome: NetworkGenome) -> float:
        gene = next(g.name for layer in genome.layers.values() for g in layer.genes
                    if g.kind == "neural")
        return 0.0 if _factor_of(genome) <= limits[gene] else 0.5

    choice = blockswap_baseline(network, violation, program=TEMPLATE_SCHEDULE)
    assert (choice.best.gene, choice.best.factor) == ("group", 4)
    assert {(c.gene, c.factor) for c in choice.tried if c.legal} == \
        {("group", 2), ("group", 4), ("bottleneck", 2)}
    bottleneck = [c for c in choice.tried if c.gene == "bottleneck" and c.factor == 2][0]
    assert choice.best.flops < bottleneck.flops

    nothing = blockswap_baseline(network, lambda genome: 1.0)
    assert nothing.best is None and nothing.tried


def test_with_the_real_fisher_potential():
    network = load_network("tiny")
    fisher = FisherPotential(network, data="synthetic", seed=0, batch=4)
    choice = blockswap_baseline(network, fisher_violation(fisher, threshold=0.5),
                                factors=(2, 4))
    assert all(c.violation is not None for c in choice.tried)
    if choice.best is not None:
        assert choice.best.legal and choice.best.violation == 0.0
