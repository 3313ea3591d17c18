"""Variation of network genomes: mutate one slot's sequence, share it with the slots
of the same shape, spread its neural genes to the slots of its kind, or cross two
parents.

Operators see a network only through a `NetworkView`: its slots (id, spec and the
gene kinds structurally allowed there), each slot's *effective* spec under a
genome (an upstream bottleneck shrinks a slot's input channels) and a validity
check of a whole genome. They never measure or select anything. Every draw
comes from the explicit `numpy.random.Generator`; an operator whose child is
invalid returns `None` and the caller draws again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from genomes.genome import LayerGenome, NetworkGenome
from genomes.sampling import PROGRAM_GENE_NAMES
from genomes.spec import LayerSpec
from operators.layer import LAYER_MUTATIONS, fit_genes

# How often each layer mutation is tried (insert dominates so genomes grow).
MUTATION_RATES: dict[str, float] = {
    "insert": 0.35, "delete": 0.15, "replace": 0.2, "perturb": 0.2, "swap": 0.1,
}
# Share of mutations that are `share` instead (when it applies).
SHARE_RATE = 0.1
# Share of a neural search's mutations that are `spread` instead (when it applies).
SPREAD_RATE = 0.05


class SlotLike(Protocol):
    id: str
    spec: LayerSpec
    allowed: tuple[str, ...]


class NetworkView(Protocol):
    """What the operators need to know about the network a genome transforms."""

    @property
    def slots(self) -> Sequence[SlotLike]: ...

    def spec_of(self, genome: NetworkGenome, slot_id: str) -> LayerSpec | None:
        """The slot's spec under `genome`, or None if an upstream slot fails to decode."""

    def check(self, genome: NetworkGenome) -> str | None:
        """None if the whole genome decodes on this network, else why not."""


@dataclass(frozen=True)
class Change:
    """A child genome, the operator that made it and what it changed (JSON-ready)."""

    genome: NetworkGenome
    operator: str
    detail: dict[str, Any] = field(default_factory=dict)


def slot_weights(view: NetworkView, by_flops: float = 0.5) -> np.ndarray:
    """Probability of mutating each slot: a mix of uniform and share of the FLOPs,
    so the layers that dominate latency are changed more often."""
    flops = np.array([max(s.spec.flops, 1) for s in view.slots], dtype=float)
    uniform = np.full(len(flops), 1.0 / len(flops))
    return (1 - by_flops) * uniform + by_flops * flops / flops.sum()


def mutate(rng: np.random.Generator, genome: NetworkGenome, view: NetworkView,
           neural: bool = True, weights: np.ndarray | None = None,
           rates: dict[str, float] | None = None) -> Change | None:
    """Apply one layer mutation to one slot; None if this draw gave no valid child."""
    slots = list(view.slots)
    weights = slot_weights(view) if weights is None else weights
    slot = slots[int(rng.choice(len(slots), p=weights))]
    rates = rates or MUTATION_RATES
    names = list(rates)
    probs = np.array([rates[n] for n in names], dtype=float)
    name = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    spec = view.spec_of(genome, slot.id)
    if spec is None:
        return None
    change = LAYER_MUTATIONS[name](rng, spec, genome.layer(slot.id), allowed_genes(slot, neural))
    if change is None:
        return None
    child = with_layer(genome, slot.id, change.genome)
    if child == genome or view.check(child) is not None:
        return None
    return Change(child, change.operator, {"slot": slot.id, **change.detail})


def share(rng: np.random.Generator, genome: NetworkGenome, view: NetworkView,
          neural: bool = True, weights: np.ndarray | None = None) -> Change | None:
    """Copy one slot's sequence to every other slot with the same effective spec that
    allows all its genes and holds a different sequence; None if there is none.

    Deep networks repeat layer shapes (the 3x3 convs of a DenseNet block, the blocks
    of a ResNet stage), and a program found for one of them usually suits the others:
    a single-slot mutation would have to rediscover it slot by slot. The donor is drawn
    among the slots with genes, weighted like `mutate`'s slots."""
    slots = list(view.slots)
    weights = slot_weights(view) if weights is None else weights
    donors = [i for i, slot in enumerate(slots) if genome.layer(slot.id).genes]
    if not donors:
        return None
    donor_weights = weights[donors] / weights[donors].sum()
    donor = slots[donors[int(rng.choice(len(donors), p=donor_weights))]]
    layer, spec = genome.layer(donor.id), view.spec_of(genome, donor.id)
    if spec is None:
        return None
    names = {gene.name for gene in layer.genes}
    receivers = [slot.id for slot in slots
                 if slot.id != donor.id and genome.layer(slot.id) != layer
                 and names <= set(allowed_genes(slot, neural))
                 and view.spec_of(genome, slot.id) == spec]
    if not receivers:
        return None
    child = genome
    for slot_id in receivers:
        child = with_layer(child, slot_id, layer)
    if view.check(child) is not None:
        return None
    return Change(child, "share", {"slot": donor.id, "to": receivers})


def spread(rng: np.random.Generator, genome: NetworkGenome, view: NetworkView,
           weights: np.ndarray | None = None) -> Change | None:
    """Give one slot's neural genes to the slots of its kind (same kernel and stride),
    in its stage (same input resolution) or, one time in two, in the whole network;
    None if no slot took them.

    Each receiver's neural genes are replaced by the donor's and its program genes
    kept; where that does not decode on the receiver's effective spec, it takes the
    donor's whole sequence; where neither decodes, it takes the neural genes fitted to
    its spec (`fit_genes`: a group count or bottleneck factor halved until it divides,
    a gene that fits nowhere left out; the slot is listed under `fitted`) with its own
    program genes or else the donor's; where none of that decodes, or the network no
    longer decodes after it, the receiver is skipped. `share` copies a sequence only
    to slots of the same effective shape, so a neural change reaches the 1x1 convs of
    a DenseNet (whose input width grows layer by layer) one slot at a time; `spread`
    takes the search in one step to what a BlockSwap-style uniform change would be,
    from where single-slot mutations refine it. The donor is drawn among the slots with
    neural genes, weighted like `mutate`'s slots."""
    slots = list(view.slots)
    weights = slot_weights(view) if weights is None else weights
    donors = [i for i, slot in enumerate(slots) if genome.layer(slot.id).neural.genes]
    if not donors:
        return None
    donor_weights = weights[donors] / weights[donors].sum()
    donor = slots[donors[int(rng.choice(len(donors), p=donor_weights))]]
    scope = "network" if rng.random() < 0.5 else "stage"
    sequence = genome.layer(donor.id)
    neural = sequence.neural.genes
    names = {gene.name for gene in sequence.genes}
    child, receivers, fitted = genome, [], []
    for slot in slots:
        if slot.id == donor.id or not _same_kind(slot.spec, donor.spec, scope) \
                or not {g.name for g in neural} <= set(slot.allowed):
            continue
        own = genome.layer(slot.id).program.genes
        options = [LayerGenome(neural + own)]
        if names <= set(slot.allowed):
            options.append(sequence)
        spec = view.spec_of(child, slot.id)
        fit = fit_genes(spec, neural) if spec is not None else neural
        if fit and fit != neural:
            options.append(LayerGenome(fit + own))
            if names <= set(slot.allowed):
                options.append(LayerGenome(fit + sequence.program.genes))
        for layer in options:
            if layer == child.layer(slot.id):
                break
            attempt = with_layer(child, slot.id, layer)
            if view.check(attempt) is None:
                child = attempt
                receivers.append(slot.id)
                if layer.neural.genes != neural:
                    fitted.append(slot.id)
                break
    if not receivers:
        return None
    detail = {"slot": donor.id, "scope": scope, "to": receivers}
    if fitted:
        detail["fitted"] = fitted
    return Change(child, "spread", detail)


def _same_kind(spec: LayerSpec, other: LayerSpec, scope: str) -> bool:
    """Same kernel and stride (and depthwise or not); `stage`: also the same input size."""
    same = (spec.kernel, spec.stride, spec.groups > 1) == (other.kernel, other.stride,
                                                         other.groups > 1)
    return same and (scope == "network" or (spec.height, spec.width) == (other.height,
                                                                          other.width))


def crossover_slots(rng: np.random.Generator, first: NetworkGenome, second: NetworkGenome,
                    view: NetworkView) -> Change | None:
    """Uniform crossover of whole layer genomes: each slot from either parent."""
    differing = [s.id for s in view.slots if first.layer(s.id) != second.layer(s.id)]
    if len(differing) < 1:
        return None
    taken = [sid for sid in differing if rng.random() < 0.5]
    if not taken or len(taken) == len(differing) and len(differing) > 1:
        taken = [differing[int(rng.integers(len(differing)))]]
    layers = dict(first.layers)
    for sid in taken:
        layers[sid] = second.layer(sid)
    child = NetworkGenome({k: v for k, v in layers.items() if v.genes})
    if view.check(child) is not None:
        return None
    return Change(child, "crossover_slots", {"from_second": taken})


def crossover_one_point(rng: np.random.Generator, first: NetworkGenome,
                        second: NetworkGenome, view: NetworkView) -> Change | None:
    """One-point crossover inside one slot: the first parent's genes up to a cut,
    then the second parent's genes from its own cut."""
    candidates = [s.id for s in view.slots if first.layer(s.id) != second.layer(s.id)]
    if not candidates:
        return None
    sid = candidates[int(rng.integers(len(candidates)))]
    a, b = first.layer(sid).genes, second.layer(sid).genes
    cut_a, cut_b = int(rng.integers(len(a) + 1)), int(rng.integers(len(b) + 1))
    layer = LayerGenome(a[:cut_a] + b[cut_b:])
    child = with_layer(first, sid, layer)
    if child == first or view.check(child) is not None:
        return None
    return Change(child, "crossover_one_point", {"slot": sid, "cut_first": cut_a,
                                                 "cut_second": cut_b})


def crossover(rng: np.random.Generator, first: NetworkGenome, second: NetworkGenome,
              view: NetworkView) -> Change | None:
    """Either crossover, chosen with equal probability."""
    operator = crossover_slots if rng.random() < 0.5 else crossover_one_point
    return operator(rng, first, second, view)


def allowed_genes(slot: SlotLike, neural: bool = True) -> Collection[str]:
    """The gene kinds a mutation may draw at `slot`; program genes only if not `neural`."""
    if neural:
        return slot.allowed
    return tuple(g for g in slot.allowed if g in PROGRAM_GENE_NAMES)


def with_layer(genome: NetworkGenome, slot_id: str, layer: LayerGenome) -> NetworkGenome:
    """`genome` with `slot_id`'s sequence replaced (an empty sequence drops the slot)."""
    layers = dict(genome.layers)
    if layer.genes:
        layers[slot_id] = layer
    else:
        layers.pop(slot_id, None)
    return NetworkGenome(layers)

