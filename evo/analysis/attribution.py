"""Which genes made the Pareto set fast: attribution of latency changes to gene kinds.

The baseline is the template schedule (`initial:template`, the same fixed schedule
on every conv) when the run measured it, else the original network. The template
is not a discovery: the unscheduled original is tens of times slower than any
scheduled program, so crediting that step to the template's genes would give each
of them the same large share and hide what the search found.

For each member of the Pareto set, walk its line of first parents. A step from
the original is compared with the template (its genes and latency), so the
template's own step counts for nothing; every later measured step's latency
change (since the last measured ancestor) is split evenly between the gene kinds
edited since then. Summed over a line the changes telescope to `baseline -
member`, so per member the shares add up to its saving over the baseline; the
summary adds the members' lines together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evo.analysis.changes import changed_names, gene_title, genome_changes
from evo.analysis.lineage import ancestry
from evo.analysis.snapshot import ORIGINAL_ID, RunSnapshot
from genomes.sampling import NEURAL_GENE_NAMES


@dataclass
class GeneShare:
    """The latency saved (ms, positive = faster) credited to one gene kind."""

    name: str
    saved_ms: float = 0.0
    steps: int = 0

    @property
    def title(self) -> str:
        return gene_title(self.name)

    @property
    def kind(self) -> str:
        return "neural" if self.name in NEURAL_GENE_NAMES else "program"


@dataclass
class Attribution:
    """The attribution summed over the lines of `members`."""

    members: list[int]
    original_ms: float | None
    shares: dict[str, GeneShare] = field(default_factory=dict)
    note: str | None = None
    baseline: str = "original"
    baseline_ms: float | None = None

    @property
    def total_saved_ms(self) -> float:
        return sum(s.saved_ms for s in self.shares.values())

    def by_kind(self) -> dict[str, float]:
        out = {"neural": 0.0, "program": 0.0}
        for share in self.shares.values():
            out[share.kind] += share.saved_ms
        return out

    def ranked(self) -> list[GeneShare]:
        return sorted(self.shares.values(), key=lambda s: (-s.saved_ms, s.name))

    def to_json(self) -> dict[str, Any]:
        total = self.total_saved_ms
        return {
            "members": self.members,
            "original_ms": self.original_ms,
            "baseline": self.baseline,
            "baseline_ms": self.baseline_ms,
            "total_saved_ms": total,
            "by_kind_ms": self.by_kind(),
            "genes": [{"gene": s.name, "title": s.title, "kind": s.kind,
                       "saved_ms": s.saved_ms, "share": s.saved_ms / total if total else None,
                       "steps": s.steps} for s in self.ranked()],
            "note": self.note,
        }


def attribute(snap: RunSnapshot, members: list[int] | None = None) -> Attribution:
    """Attribute the latency saved on the lines of `members` (default: the Pareto set)."""
    members = list(snap.front if members is None else members)
    template = snap.template if snap.template_ms is not None else None
    result = Attribution(members, snap.original_ms,
                         baseline="template" if template is not None else "original",
                         baseline_ms=snap.template_ms if template is not None
                         else snap.original_ms)
    if result.baseline_ms is None:
        result.note = "the original network has no measured latency"
        return result
    for member in members:
        anchor = result.baseline_ms
        pending: set[str] = set()
        for step in ancestry(snap, member)[1:]:
            if step.id == template:
                continue
            if template is not None and step.parent == ORIGINAL_ID:
                changes = genome_changes(snap.individuals[template].genome,
                                         step.individual.genome)
            else:
                changes = list(step.changes)
            pending |= set(changed_names(changes))
            evaluation = step.evaluation
            if evaluation is None or not evaluation.feasible:
                continue
            delta = anchor - evaluation.latency_ms
            names = sorted(pending) or ["(no gene edit)"]
            for name in names:
                share = result.shares.setdefault(name, GeneShare(name))
                share.saved_ms += delta / len(names)
                share.steps += 1
            anchor, pending = evaluation.latency_ms, set()
    return result


def format_attribution(result: Attribution) -> str:
    """A table: gene, ms saved, share of the total, steps credited."""
    members = ", ".join(f"#{m}" for m in result.members[:12])
    if len(result.members) > 12:
        members += ", ..."
    head = (f"Attribution over the Pareto set ({len(result.members)} individual(s): "
            f"{members}):\n  latency saved {baseline_text(result)},\n  along their "
            "lineages, each step's change split evenly between the gene kinds it edited")
    if result.note:
        return f"{head}\n  {result.note}"
    if not result.shares:
        return f"{head}\n  nothing to attribute (the Pareto set holds only the " \
               f"{'template schedule' if result.baseline == 'template' else 'original'})"
    total = result.total_saved_ms
    rows = [(s.title, f"{s.saved_ms:+.4f}", f"{s.saved_ms / total:.1%}" if total else "-",
             str(s.steps)) for s in result.ranked()]
    kinds = result.by_kind()
    rows += [(f"all {k} genes", f"{v:+.4f}", f"{v / total:.1%}" if total else "-", "")
             for k, v in kinds.items()]
    rows.append(("total", f"{total:+.4f}", "100.0%" if total else "-", ""))
    header = ("gene", "ms saved", "share", "steps")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [head, "  " + _row(header, widths)]
    lines += ["  " + _row(r, widths) for r in rows]
    return "\n".join(lines)


def baseline_text(result: Attribution) -> str:
    """What the savings are measured from: `over the template schedule (0.1526 ms;
    itself 41.04x faster than the unscheduled original, not credited to genes)`."""
    if result.baseline_ms is None:
        return "over the original network"
    if result.baseline != "template":
        return f"over the original network ({result.baseline_ms:.4f} ms)"
    faster = f", itself {result.original_ms / result.baseline_ms:.2f}x faster than the " \
             "unscheduled original" if result.original_ms else ""
    return (f"over the template schedule ({result.baseline_ms:.4f} ms{faster}, not credited "
            "to genes)")


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    first = f"{cells[0]:<{widths[0]}}"
    return "  ".join([first, *(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True))])
