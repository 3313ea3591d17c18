"""What one step of a lineage changed: the genes added, removed, changed or moved in
each slot, from the parent's genome to the child's (so crossovers are covered too)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from evo.analysis.order import in_order
from genomes.genes import Gene
from genomes.genome import LayerGenome, NetworkGenome

# The paper's names for the three new convolutions, and readable names for the rest.
GENE_TITLES = {
    "bottleneck": "bottleneck",
    "group": "grouping",
    "depthwise": "depthwise",
    "split_channels": "Seq1 split_channels",
    "unroll_channels": "Seq2 unroll_channels",
    "split_rows": "Seq3 split_rows",
}


def gene_title(name: str) -> str:
    """The name a gene kind is reported under (e.g. `Seq1 split_channels`)."""
    return GENE_TITLES.get(name, name)


@dataclass(frozen=True)
class GeneChange:
    """One edit in a slot: `action` is added, removed, changed or moved."""

    slot: str
    action: str
    gene: Gene
    old: Gene | None = None

    @property
    def names(self) -> set[str]:
        """The gene kinds this edit touches."""
        return {self.gene.name} | ({self.old.name} if self.old is not None else set())

    def describe(self) -> str:
        if self.action == "changed" and self.old is not None:
            return f"{self.slot}: ~ {self.old.label()} -> {self.gene.label()}"
        sign = {"added": "+", "removed": "-", "moved": "<>"}[self.action]
        return f"{self.slot}: {sign} {self.gene.label()}"

    def to_json(self) -> dict[str, Any]:
        out = {"slot": self.slot, "action": self.action, "gene": self.gene.to_json()}
        if self.old is not None:
            out["old"] = self.old.to_json()
        return out


def genome_changes(parent: NetworkGenome, child: NetworkGenome,
                   order: Sequence[str] = ()) -> list[GeneChange]:
    """Every edit that turns `parent` into `child`, slot by slot in the network's
    order `order` (slots it lacks after, see `evo.analysis.order.in_order`)."""
    out: list[GeneChange] = []
    for slot in in_order(set(parent.layers) | set(child.layers), order):
        out += layer_changes(slot, parent.layer(slot), child.layer(slot))
    return out


def layer_changes(slot: str, before: LayerGenome, after: LayerGenome) -> list[GeneChange]:
    """The edits from `before` to `after`: a same-kind replacement is `changed` (a
    perturbed parameter), the same genes in another order are `moved`."""
    a, b = list(before.genes), list(after.genes)
    if a == b:
        return []
    keys_a, keys_b = [g.to_json() for g in a], [g.to_json() for g in b]
    if sorted(map(repr, keys_a)) == sorted(map(repr, keys_b)):
        return [GeneChange(slot, "moved", g) for g, h in zip(b, a, strict=True) if g != h]
    matcher = SequenceMatcher(a=[repr(k) for k in keys_a], b=[repr(k) for k in keys_b],
                              autojunk=False)
    removed: list[Gene] = []
    added: list[Gene] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            removed += a[i1:i2]
            added += b[j1:j2]
    moved = [g for g in added if g in removed]
    removed, added = _without(removed, moved), _without(added, moved)
    out = [GeneChange(slot, "moved", g) for g in moved]
    for new in list(added):  # same kind removed and added: a changed parameter
        old = next((g for g in removed if g.name == new.name), None)
        if old is not None:
            removed.remove(old)
            added.remove(new)
            out.append(GeneChange(slot, "changed", new, old))
    out += [GeneChange(slot, "removed", g) for g in removed]
    out += [GeneChange(slot, "added", g) for g in added]
    return out


def _without(genes: list[Gene], drop: list[Gene]) -> list[Gene]:
    """`genes` minus one occurrence of each gene in `drop`."""
    rest, pending = [], list(drop)
    for gene in genes:
        if gene in pending:
            pending.remove(gene)
        else:
            rest.append(gene)
    return rest


def changed_names(changes: list[GeneChange]) -> list[str]:
    """The distinct gene kinds a step touched, in a stable order."""
    names: set[str] = set()
    for change in changes:
        names |= change.names
    return sorted(names)
