"""Variation operators: every child decodes, draws are reproducible, lineage is recorded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from genomes.genome import LayerGenome, NetworkGenome, decode_layer
from genomes.sampling import ALL_GENE_NAMES, PROGRAM_GENE_NAMES, random_layer_genome
from genomes.spec import LayerSpec
from operators import LAYER_MUTATIONS, crossover_one_point, crossover_slots, mutate, share
from operators.network import allowed_genes, with_layer


@dataclass(frozen=True)
class Slot:
    id: str
    spec: LayerSpec
    allowed: tuple[str, ...]


class IndependentSlots:
    """A network whose slots do not feed each other: each decodes on its own spec."""

    def __init__(self, slots):
        self.slots = tuple(slots)

    def spec_of(self, genome, slot_id):
        return next(s.spec for s in self.slots if s.id == slot_id)

    def check(self, genome):
        for slot_id, layer in genome.layers.items():
            result = decode_layer(self.spec_of(genome, slot_id), layer)
            if not result.ok:
                return f"{slot_id}: {result.error}"
        return None


VIEW = IndependentSlots([
    Slot("a", LayerSpec(16, 32, 16, 16, 3, 1), ALL_GENE_NAMES),
    Slot("b", LayerSpec(32, 32, 8, 8, 3, 2), ALL_GENE_NAMES),
    Slot("c", LayerSpec(32, 64, 8, 8, 1, 1), PROGRAM_GENE_NAMES),
])


def _random_genome(rng: np.random.Generator) -> NetworkGenome:
    genome = NetworkGenome()
    for slot in VIEW.slots:
        if rng.random() < 0.7:
            layer = random_layer_genome(rng, slot.spec, int(rng.integers(0, 6)), slot.allowed)
            genome = with_layer(genome, slot.id, layer)
    return genome


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), neural=st.booleans())
def test_every_mutant_decodes_and_respects_allowed_genes(seed: int, neural: bool) -> None:
    rng = np.random.default_rng(seed)
    parent = _random_genome(rng)
    assert VIEW.check(parent) is None
    child = mutate(rng, parent, VIEW, neural=neural)
    if child is None:
        return
    assert VIEW.check(child.genome) is None
    assert child.genome != parent
    slot = next(s for s in VIEW.slots if s.id == child.detail["slot"])
    # only the mutated slot changed
    for other in VIEW.slots:
        if other.id != slot.id:
            assert child.genome.layer(other.id) == parent.layer(other.id)
    added = child.detail.get("added")
    if added is not None:
        assert added["gene"] in allowed_genes(slot, neural)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_crossovers_take_layers_from_parents_and_decode(seed: int) -> None:
    rng = np.random.default_rng(seed)
    first, second = _random_genome(rng), _random_genome(rng)
    whole = crossover_slots(rng, first, second, VIEW)
    if whole is not None:
        assert VIEW.check(whole.genome) is None
        for slot in VIEW.slots:
            expected = second if slot.id in whole.detail["from_second"] else first
            assert whole.genome.layer(slot.id) == expected.layer(slot.id)
    point = crossover_one_point(rng, first, second, VIEW)
    if point is not None:
        sid = point.detail["slot"]
        a, b = first.layer(sid).genes, second.layer(sid).genes
        assert point.genome.layer(sid).genes == (a[:point.detail["cut_first"]]
                                                 + b[point.detail["cut_second"]:])
        assert VIEW.check(point.genome) is None


def test_same_seed_same_children() -> None:
    def children(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        genome, out = NetworkGenome(), []
        for _ in range(30):
            change = mutate(rng, genome, VIEW)
            if change is not None:
                genome = change.genome
                out.append(genome.canonical())
        return out

    assert children(7) == children(7)
    assert children(7) != children(8)


def test_layer_mutations_record_what_they_changed() -> None:
    spec = LayerSpec(32, 32, 16, 16, 3, 1)
    rng = np.random.default_rng(0)
    genome = random_layer_genome(rng, spec, 5)
    seen = set()
    for _ in range(300):
        name = list(LAYER_MUTATIONS)[int(rng.integers(len(LAYER_MUTATIONS)))]
        change = LAYER_MUTATIONS[name](rng, spec, genome, ALL_GENE_NAMES)
        if change is None:
            continue
        seen.add(name)
        assert decode_layer(spec, change.genome).ok
        detail = change.detail
        if name == "insert":
            assert change.genome.genes[detail["position"]].to_json() == detail["added"]
            assert len(change.genome) == len(genome) + 1
        elif name == "delete":
            assert genome.genes[detail["position"]].to_json() == detail["removed"]
            assert len(change.genome) == len(genome) - 1
        elif name in ("replace", "perturb"):
            assert genome.genes[detail["position"]].to_json() == detail["removed"]
            assert change.genome.genes[detail["position"]].to_json() == detail["added"]
        elif name == "swap":
            i, j = detail["positions"]
            assert change.genome.genes[i] == genome.genes[j]
        genome = change.genome if len(change.genome) < 10 else LayerGenome()
    assert seen == set(LAYER_MUTATIONS)


def test_program_only_mutation_never_adds_neural_genes() -> None:
    rng = np.random.default_rng(3)
    genome = NetworkGenome()
    for _ in range(200):
        change = mutate(rng, genome, VIEW, neural=False)
        if change is not None:
            genome = change.genome
            assert not genome.neural.layers


SAME_SHAPE = LayerSpec(32, 32, 16, 16, 3, 1)
SHAPES_VIEW = IndependentSlots([
    Slot("a", SAME_SHAPE, ALL_GENE_NAMES),
    Slot("b", SAME_SHAPE, ALL_GENE_NAMES),
    Slot("c", LayerSpec(32, 64, 16, 16, 3, 1), ALL_GENE_NAMES),
    Slot("d", SAME_SHAPE, PROGRAM_GENE_NAMES),
])


def _layer(*genes: dict) -> LayerGenome:
    return LayerGenome.from_json(list(genes))


def test_share_copies_a_sequence_to_the_slots_of_the_same_shape_that_allow_it() -> None:
    program = _layer({"gene": "tile", "axis": "ow", "factor": 8}, {"gene": "vectorize",
                                                                   "axis": "ow"})
    neural = _layer({"gene": "group", "groups": 2}, {"gene": "parallel"})
    rng = np.random.default_rng(0)
    change = share(rng, NetworkGenome({"a": program}), SHAPES_VIEW)
    assert change.operator == "share" and change.detail == {"slot": "a", "to": ["b", "d"]}
    assert change.genome == NetworkGenome({"a": program, "b": program, "d": program})
    # a neural gene is not allowed at d; c has another shape; b already holds it
    change = share(rng, NetworkGenome({"a": neural}), SHAPES_VIEW)
    assert change.detail == {"slot": "a", "to": ["b"]}
    assert share(rng, NetworkGenome({"a": neural, "b": neural}), SHAPES_VIEW) is None
    assert share(rng, NetworkGenome({"c": program}), SHAPES_VIEW) is None  # no twin
    assert share(rng, NetworkGenome(), SHAPES_VIEW) is None  # nothing to share


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), neural=st.booleans())
def test_every_shared_child_decodes_and_copies_only_the_donor(seed: int, neural: bool) -> None:
    rng = np.random.default_rng(seed)
    parent = NetworkGenome()
    for slot in SHAPES_VIEW.slots:
        allowed = allowed_genes(slot, neural)
        layer = random_layer_genome(rng, slot.spec, int(rng.integers(0, 5)), allowed)
        parent = with_layer(parent, slot.id, layer)
    change = share(rng, parent, SHAPES_VIEW, neural=neural)
    if change is None:
        return
    assert SHAPES_VIEW.check(change.genome) is None
    donor = change.detail["slot"]
    for slot in SHAPES_VIEW.slots:
        if slot.id in change.detail["to"]:
            assert slot.spec == SHAPES_VIEW.spec_of(parent, donor)
            assert change.genome.layer(slot.id) == parent.layer(donor)
            assert {g.name for g in parent.layer(donor).genes} <= set(allowed_genes(slot,
                                                                                    neural))
        else:
            assert change.genome.layer(slot.id) == parent.layer(slot.id)
