"""Variation operators: every child decodes, draws are reproducible, lineage is recorded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from genomes.genome import LayerGenome, NetworkGenome, decode_layer
from genomes.sampling import ALL_GENE_NAMES, PROGRAM_GENE_NAMES, random_layer_genome
from genomes.spec import LayerSpec
from operators import (
    LAYER_MUTATIONS,
    crossover_one_point,
    crossover_slots,
    mutate,
    share,
    spread,
)
from operators.layer import FITTABLE, fit_genes
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


KINDS_VIEW = IndependentSlots([
    Slot("a", LayerSpec(32, 32, 16, 16, 3, 1), ALL_GENE_NAMES),
    Slot("b", LayerSpec(64, 32, 16, 16, 3, 1), ALL_GENE_NAMES),  # same kind and stage
    Slot("c", LayerSpec(32, 32, 8, 8, 3, 1), ALL_GENE_NAMES),  # same kind, next stage
    Slot("d", LayerSpec(32, 32, 16, 16, 1, 1), ALL_GENE_NAMES),  # 1x1: another kind
    Slot("e", LayerSpec(32, 32, 16, 16, 3, 1), PROGRAM_GENE_NAMES),
    Slot("f", LayerSpec(32, 32, 16, 16, 3, 2), ALL_GENE_NAMES),  # stride 2: another kind
    Slot("g", LayerSpec(3, 32, 16, 16, 3, 1), ALL_GENE_NAMES),  # group(2) cannot split 3
])


def test_spread_gives_the_neural_genes_to_the_slots_of_the_kind_keeping_their_programs():
    donor = _layer({"gene": "group", "groups": 2}, {"gene": "tile", "axis": "ow", "factor": 8})
    own = _layer({"gene": "parallel"})
    parent = NetworkGenome({"a": donor, "b": own, "c": own})
    seen = {}
    for seed in range(20):
        change = spread(np.random.default_rng(seed), parent, KINDS_VIEW)
        assert change.operator == "spread" and change.detail["slot"] == "a"
        seen[change.detail["scope"]] = change
    assert seen["stage"].detail["to"] == ["b"]
    assert seen["network"].detail["to"] == ["b", "c"]
    grouped = _layer({"gene": "group", "groups": 2}, {"gene": "parallel"})
    assert seen["network"].genome == NetworkGenome({"a": donor, "b": grouped, "c": grouped})
    assert spread(np.random.default_rng(0), NetworkGenome({"a": own}), KINDS_VIEW) is None
    assert spread(np.random.default_rng(0), NetworkGenome(), KINDS_VIEW) is None
    lone = NetworkGenome({"d": _layer({"gene": "group", "groups": 2})})
    assert spread(np.random.default_rng(0), lone, KINDS_VIEW) is None  # the only 1x1


def test_spread_falls_back_to_the_donors_sequence_when_the_receivers_programs_break():
    donor = _layer({"gene": "split_channels", "groups": [1, 1]},
                   {"gene": "tile", "axis": "ow", "factor": 8, "piece": 1})
    own = _layer({"gene": "split_channels", "groups": [1, 1, 1, 1]},
                 {"gene": "unroll", "max_step": 16, "piece": 3})  # two pieces: no piece 3
    parent = NetworkGenome({"a": donor, "b": own})
    assert KINDS_VIEW.check(parent) is None
    changes = [spread(np.random.default_rng(seed), parent, KINDS_VIEW) for seed in range(20)]
    from_a = [c for c in changes if c.detail["slot"] == "a"]
    assert from_a and all(c.genome.layer("b") == donor for c in from_a)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_spread_child_decodes_and_changes_only_neural_genes_of_its_kind(seed: int):
    rng = np.random.default_rng(seed)
    parent = NetworkGenome()
    for slot in KINDS_VIEW.slots:
        layer = random_layer_genome(rng, slot.spec, int(rng.integers(0, 5)), slot.allowed)
        parent = with_layer(parent, slot.id, layer)
    change = spread(rng, parent, KINDS_VIEW)
    if change is None:
        return
    assert KINDS_VIEW.check(change.genome) is None
    donor = change.detail["slot"]
    donor_spec = KINDS_VIEW.spec_of(parent, donor)
    assert parent.layer(donor).neural.genes
    for slot in KINDS_VIEW.slots:
        child, before = change.genome.layer(slot.id), parent.layer(slot.id)
        if slot.id not in change.detail["to"]:
            assert child == before
            continue
        assert (slot.spec.kernel, slot.spec.stride) == (donor_spec.kernel, donor_spec.stride)
        if change.detail["scope"] == "stage":
            assert slot.spec.height == donor_spec.height
        assert child != before
        assert child.program in (before.program, parent.layer(donor).program)
        if slot.id in change.detail.get("fitted", ()):
            _assert_fitted(child.neural.genes, parent.layer(donor).neural.genes)
        else:
            assert child.neural == parent.layer(donor).neural


def _assert_fitted(fitted, donor) -> None:
    """`fitted` is `donor` with genes left out and FITTABLE parameters divided by powers
    of two, in the donor's order, and differs from it."""
    assert fitted and fitted != donor
    position = 0
    for gene in fitted:
        while not _fits_from(gene, donor[position]):
            position += 1
        position += 1


def _fits_from(gene, original) -> bool:
    if (gene.name, gene.piece) != (original.name, original.piece):
        return False
    name, _ = FITTABLE.get(gene.name, ("", 0))
    if not name:
        return gene == original
    ratio, rest = divmod(getattr(original, name), getattr(gene, name))
    return rest == 0 and ratio & (ratio - 1) == 0 and gene.to_json() | {name: 0} \
        == original.to_json() | {name: 0}


def test_fit_genes_halves_group_counts_and_factors_until_they_divide_and_drops_the_rest():
    densenet_1x1 = LayerSpec(144, 192, 8, 8, 1, 1)  # 48 x 3 input channels
    donor = _layer({"gene": "group", "groups": 16, "piece": 0}, {"gene": "group", "groups": 2})
    assert fit_genes(densenet_1x1, donor.genes) == donor.genes[:1]  # 32 groups do not divide
    wide = _layer({"gene": "group", "groups": 64}, {"gene": "bottleneck", "factor": 32},
                  {"gene": "depthwise"})
    assert fit_genes(densenet_1x1, wide.genes) == _layer(
        {"gene": "group", "groups": 16}, {"gene": "bottleneck", "factor": 4}).genes
    assert fit_genes(LayerSpec(3, 32, 8, 8, 3, 1), donor.genes) == ()  # 3 has no group
    assert fit_genes(LayerSpec(192, 192, 8, 8, 1, 1), donor.genes) == donor.genes


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_fitted_genes_decode_on_the_new_spec_and_keep_genes_that_already_apply(seed: int):
    rng = np.random.default_rng(seed)
    source, target = (LayerSpec(*(int(rng.choice(c)) for c in (
        (3, 16, 24, 48, 64, 96, 144), (16, 32, 48, 64, 192), (8, 16), (8, 16), (1, 3), (1,))))
        for _ in range(2))
    genes = random_layer_genome(rng, source, int(rng.integers(1, 6)), ALL_GENE_NAMES).genes
    fitted = fit_genes(target, genes)
    assert decode_layer(target, LayerGenome(fitted)).ok
    if decode_layer(target, LayerGenome(genes)).ok:
        assert fitted == genes
    elif fitted:
        _assert_fitted(fitted, genes)


def test_spread_fits_the_neural_genes_to_receivers_they_do_not_divide():
    fitting = IndependentSlots([
        Slot("a", LayerSpec(192, 192, 8, 8, 1, 1), ALL_GENE_NAMES),
        Slot("b", LayerSpec(144, 192, 8, 8, 1, 1), ALL_GENE_NAMES),
        Slot("c", LayerSpec(240, 192, 8, 8, 1, 1), ALL_GENE_NAMES),
        Slot("d", LayerSpec(288, 192, 8, 8, 1, 1), ALL_GENE_NAMES),
    ])
    donor = _layer({"gene": "group", "groups": 16, "piece": 0}, {"gene": "group", "groups": 2},
                   {"gene": "parallel"})
    own = _layer({"gene": "unroll", "max_step": 16})
    change = spread(np.random.default_rng(0), NetworkGenome(
        {"a": donor, "b": own, "c": own, "d": own}), fitting)
    assert change.detail == {"slot": "a", "scope": change.detail["scope"],
                             "to": ["b", "c", "d"], "fitted": ["b", "c"]}
    grouped = _layer({"gene": "group", "groups": 16, "piece": 0}, {"gene": "unroll",
                                                                    "max_step": 16})
    assert change.genome.layer("b") == change.genome.layer("c") == grouped
    assert change.genome.layer("d") == LayerGenome(donor.neural.genes + own.genes)
