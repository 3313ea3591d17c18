"""Mutations of one layer genome: insert, delete, replace, perturb and swap genes.

Each takes an explicit `numpy.random.Generator`, the layer's spec and the gene
kinds it may add, remove or change (genes of other kinds stay as they are), and
returns a `LayerChange` (the new genome, the operator's name and what it changed)
or `None` when no valid child came out of this draw. A child is valid when every
gene still applies in order (`genomes.genome.decode_layer`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from genomes.genes import Gene, GeneError, gene_fields
from genomes.genome import LayerGenome, decode_layer
from genomes.plan import LayerPlan, initial_plan
from genomes.sampling import random_gene
from genomes.spec import LayerSpec


@dataclass(frozen=True)
class LayerChange:
    """A layer genome made by one operator, with what the operator did (JSON-ready)."""

    genome: LayerGenome
    operator: str
    detail: dict[str, Any]


LayerMutation = Callable[[np.random.Generator, LayerSpec, LayerGenome, Collection[str]],
                         "LayerChange | None"]


def plan_before(spec: LayerSpec, genome: LayerGenome, position: int) -> LayerPlan | None:
    """The plan after the first `position` genes, or None if one of them fails."""
    plan = initial_plan(spec)
    for gene in genome.genes[:position]:
        try:
            plan = gene.apply(plan)
        except GeneError:
            return None
    return plan


def insert_gene(rng: np.random.Generator, spec: LayerSpec, genome: LayerGenome,
                allowed: Collection[str]) -> LayerChange | None:
    """Insert a random gene of an allowed kind at a random position."""
    if not allowed:
        return None
    position = int(rng.integers(len(genome) + 1))
    plan = plan_before(spec, genome, position)
    if plan is None:
        return None
    gene = random_gene(rng, plan, allowed)
    genes = genome.genes[:position] + (gene,) + genome.genes[position:]
    return _valid(spec, genes, "insert", {"position": position, "added": gene.to_json()})


def delete_gene(rng: np.random.Generator, spec: LayerSpec, genome: LayerGenome,
                allowed: Collection[str]) -> LayerChange | None:
    """Remove one gene of an allowed kind."""
    position = _pick(rng, genome, allowed)
    if position is None:
        return None
    removed = genome.genes[position]
    genes = genome.genes[:position] + genome.genes[position + 1:]
    return _valid(spec, genes, "delete", {"position": position, "removed": removed.to_json()})


def replace_gene(rng: np.random.Generator, spec: LayerSpec, genome: LayerGenome,
                 allowed: Collection[str]) -> LayerChange | None:
    """Replace one gene of an allowed kind by a random gene of an allowed kind."""
    position = _pick(rng, genome, allowed)
    if position is None:
        return None
    plan = plan_before(spec, genome, position)
    if plan is None:
        return None
    gene = random_gene(rng, plan, allowed)
    old = genome.genes[position]
    genes = genome.genes[:position] + (gene,) + genome.genes[position + 1:]
    return _valid(spec, genes, "replace",
                  {"position": position, "removed": old.to_json(), "added": gene.to_json()})


def perturb_gene(rng: np.random.Generator, spec: LayerSpec, genome: LayerGenome,
                 allowed: Collection[str]) -> LayerChange | None:
    """Change one parameter of one gene of an allowed kind (or the piece it targets) to a
    freshly drawn value."""
    position = _pick(rng, genome, allowed)
    if position is None:
        return None
    old = genome.genes[position]
    plan = plan_before(spec, genome, position)
    if plan is None:
        return None
    names = [f.name for f in gene_fields(type(old))]
    if len(plan.pieces) > 1:
        names.append("piece")
    if not names:
        return None
    name = names[int(rng.integers(len(names)))]
    if name == "piece":
        choices = [None, *range(len(plan.pieces))]
        value = choices[int(rng.integers(len(choices)))]
    else:
        value = getattr(_draw_same_kind(rng, plan, type(old)), name, None)
    if value is None and name != "piece" or value == getattr(old, name):
        return None
    try:
        new = replace(old, **{name: value})
    except (ValueError, TypeError):
        return None
    genes = genome.genes[:position] + (new,) + genome.genes[position + 1:]
    return _valid(spec, genes, "perturb",
                  {"position": position, "removed": old.to_json(), "added": new.to_json(),
                   "parameter": name})


def swap_genes(rng: np.random.Generator, spec: LayerSpec, genome: LayerGenome,
               allowed: Collection[str]) -> LayerChange | None:
    """Exchange the positions of two genes of allowed kinds."""
    positions = [i for i, g in enumerate(genome.genes) if g.name in allowed]
    if len(positions) < 2:
        return None
    i, j = sorted(int(positions[x]) for x in rng.choice(len(positions), size=2, replace=False))
    genes = list(genome.genes)
    genes[i], genes[j] = genes[j], genes[i]
    if genes[i] == genes[j]:
        return None
    return _valid(spec, tuple(genes), "swap",
                  {"positions": [i, j], "genes": [genes[j].to_json(), genes[i].to_json()]})


# The parameter `fit_genes` may lower, and its smallest value, per gene kind.
FITTABLE: dict[str, tuple[str, int]] = {
    "group": ("groups", 2), "bottleneck": ("factor", 2), "unroll_channels": ("groups", 1),
}


def fit_genes(spec: LayerSpec, genes: tuple[Gene, ...]) -> tuple[Gene, ...]:
    """`genes` made to apply on `spec`, in order: a gene that fails is retried with its
    group count or bottleneck factor (`FITTABLE`) halved, down to the smallest value,
    and left out if none applies. `group(16)` then `group(2)` on a conv of 144 input
    channels becomes `group(16)`: 32 groups do not divide 144."""
    plan, fitted = initial_plan(spec), []
    for gene in genes:
        for candidate in _smaller(gene):
            try:
                plan = candidate.apply(plan)
            except GeneError:
                continue
            fitted.append(candidate)
            break
    return tuple(fitted)


def _smaller(gene: Gene) -> Iterator[Gene]:
    """`gene`, then copies with its `FITTABLE` parameter halved while at least its floor."""
    yield gene
    name, floor = FITTABLE.get(gene.name, ("", 0))
    value = getattr(gene, name, None)
    while isinstance(value, int) and value // 2 >= floor:
        value //= 2
        yield replace(gene, **{name: value})


LAYER_MUTATIONS: dict[str, LayerMutation] = {
    "insert": insert_gene,
    "delete": delete_gene,
    "replace": replace_gene,
    "perturb": perturb_gene,
    "swap": swap_genes,
}


def _pick(rng: np.random.Generator, genome: LayerGenome, allowed: Collection[str]) -> int | None:
    """A random position holding a gene of an allowed kind, or None."""
    positions = [i for i, g in enumerate(genome.genes) if g.name in allowed]
    if not positions:
        return None
    return positions[int(rng.integers(len(positions)))]


def _draw_same_kind(rng: np.random.Generator, plan: LayerPlan, cls: type[Gene]) -> Gene:
    return random_gene(rng, plan, (cls.name,))


def _valid(spec: LayerSpec, genes: tuple[Gene, ...], operator: str,
           detail: dict[str, Any]) -> LayerChange | None:
    genome = LayerGenome(genes)
    if not decode_layer(spec, genome).ok:
        return None
    return LayerChange(genome, operator, detail)
