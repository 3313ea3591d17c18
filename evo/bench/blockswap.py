"""The BlockSwap-style baseline: one uniform neural change to every conv, as large as legal.

For each gene kind (`group(G)` and `bottleneck(B)`) and each factor (2, 4, 8, ...),
the candidate genome applies that gene to every slot that allows it and where it
applies (channels divisible, still consistent with the slots changed before it),
followed by the same program genes on every slot (e.g. the template schedule).
Candidates are judged by a capacity check, `violation(genome) -> float | None`
(0 = legal, as `evo.capacity.violation` gives). Per gene kind the largest legal
factor is kept; of those, the baseline is the one with the fewest FLOPs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evo.networks import Network, transform_network
from genomes.genes import Bottleneck, Gene, Group
from genomes.genome import LayerGenome, NetworkGenome

GENES: dict[str, Callable[[int], Gene]] = {"group": Group, "bottleneck": Bottleneck}
FACTORS = (2, 4, 8, 16, 32, 64)

Violation = Callable[[NetworkGenome], float | None]


@dataclass(frozen=True)
class Candidate:
    """One uniform genome and what the capacity check said (None: it failed)."""

    gene: str
    factor: int
    genome: NetworkGenome
    slots: tuple[str, ...]
    flops: int
    violation: float | None

    @property
    def legal(self) -> bool:
        return self.violation is not None and self.violation <= 0.0

    def to_json(self) -> dict:
        return {"gene": self.gene, "factor": self.factor, "slots": len(self.slots),
                "flops": self.flops, "violation": self.violation, "legal": self.legal}


@dataclass(frozen=True)
class BlockSwapChoice:
    """The chosen baseline (None if no factor of any gene was legal) and every try."""

    best: Candidate | None
    tried: tuple[Candidate, ...]


def uniform_genome(network: Network, gene: str, factor: int,
                   program: LayerGenome | None = None) -> tuple[NetworkGenome, tuple[str, ...]]:
    """`gene(factor)` on every slot where it is allowed and applies, then `program`'s
    genes on every slot that allows them; also returns the slots that got the gene."""
    make = GENES[gene]
    program = program or LayerGenome()
    layers: dict[str, LayerGenome] = {}
    changed: list[str] = []
    for slot in network.slots:
        tail = tuple(g for g in program.genes if g.name in slot.allowed)
        if gene in slot.allowed:
            attempt = {**layers, slot.id: LayerGenome((make(factor), *tail))}
            if transform_network(network, NetworkGenome(attempt), plans_only=True).ok:
                layers, changed = attempt, [*changed, slot.id]
                continue
        if tail:
            layers[slot.id] = LayerGenome(tail)
    return NetworkGenome(layers), tuple(changed)


def blockswap_baseline(network: Network, violation: Violation,
                       genes: Sequence[str] = ("group", "bottleneck"),
                       factors: Sequence[int] = FACTORS,
                       program: LayerGenome | None = None) -> BlockSwapChoice:
    """Try every gene and factor; keep per gene the largest legal factor, and of those
    the candidate with the fewest FLOPs."""
    tried: list[Candidate] = []
    best_per_gene: list[Candidate] = []
    for gene in genes:
        legal: list[Candidate] = []
        for factor in sorted(factors):
            genome, slots = uniform_genome(network, gene, factor, program)
            if not slots:
                continue
            transform = transform_network(network, genome, plans_only=True)
            flops = sum(plan.flops for plan in transform.plans.values())
            candidate = Candidate(gene, factor, genome, slots, flops, violation(genome))
            tried.append(candidate)
            if candidate.legal:
                legal.append(candidate)
        if legal:
            best_per_gene.append(max(legal, key=lambda c: c.factor))
    best = min(best_per_gene, key=lambda c: c.flops) if best_per_gene else None
    return BlockSwapChoice(best, tuple(tried))


def fisher_violation(fisher, threshold: float = 1.0, scope: str = "network") -> Violation:
    """`violation(genome)` from an `evo.capacity.FisherPotential` of the network."""
    from evo.capacity import violation

    original = fisher.original()
    return lambda genome: violation(original, fisher.of(genome), threshold, scope)
