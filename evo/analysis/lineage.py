"""The ancestry of an individual: the chain of first parents back to the original
network, each step with its operator, what it changed and the latency and Fisher
Potential before and after. Text, JSON and Graphviz DOT forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evo.analysis.changes import GeneChange, genome_changes
from evo.analysis.snapshot import RunSnapshot
from evo.store.records import Evaluation, Individual


@dataclass(frozen=True)
class Step:
    """One individual on the line, compared with its first parent (`parent`).

    A crossover child's other parent is in `others`; `changes` are the edits from
    the first parent's genome to this one (empty for the original)."""

    individual: Individual
    evaluation: Evaluation | None
    parent: int | None
    others: tuple[int, ...]
    before: Evaluation | None
    changes: tuple[GeneChange, ...]

    @property
    def id(self) -> int:
        return self.individual.id


def ancestry(snap: RunSnapshot, ident: int) -> list[Step]:
    """The line from the original (first) to `ident` (last), following first parents."""
    chain: list[int] = []
    seen: set[int] = set()
    current: int | None = snap.individual(ident).id
    while current is not None and current not in seen and current in snap.individuals:
        seen.add(current)
        chain.append(current)
        parents = snap.individuals[current].parents
        current = parents[0] if parents else None
    steps = []
    for ident in reversed(chain):
        individual = snap.individuals[ident]
        parent = individual.parents[0] if individual.parents else None
        before = snap.individuals.get(parent) if parent is not None else None
        changes = genome_changes(before.genome, individual.genome, snap.slot_order) \
            if before else []
        steps.append(Step(individual, snap.evaluations.get(ident), parent,
                          tuple(individual.parents[1:]), snap.evaluations.get(parent),
                          tuple(changes)))
    return steps


def latency_text(evaluation: Evaluation | None) -> str:
    """`0.1234 ms`, or why there is no latency (illegal, error, unmeasured)."""
    if evaluation is None:
        return "unevaluated"
    if evaluation.error is not None:
        return "error"
    if not evaluation.legal:
        return f"illegal (violation {evaluation.violation:.3g})" \
            if evaluation.violation is not None else "illegal"
    if evaluation.latency_ms is None:
        return "unmeasured"
    return f"{evaluation.latency_ms:.4f} ms"


MEASURE_NAMES = {"fisher": "Fisher Potential", "params": "Parameters of the slot convs",
                 "flops": "FLOPs of the slot convs", "synflow": "SynFlow", "snip": "SNIP",
                 "grad_norm": "gradient norm", "naswot": "NASWOT score",
                 "jacob_cov": "Jacobian covariance (1/|score|)"}
SHORT_NAMES = {"fisher": "Fisher", "params": "params", "flops": "FLOPs", "synflow": "SynFlow",
               "snip": "SNIP", "grad_norm": "grad norm", "naswot": "NASWOT",
               "jacob_cov": "jacob_cov"}


def is_margin(capacity: str) -> bool:
    """Whether a run's capacity values are a check's margin (a spec of several terms or
    with thresholds of its own) rather than one measure's values."""
    return capacity not in MEASURE_NAMES


def measure_name(capacity: str) -> str:
    """What a run's capacity values are, for its `--capacity` spec: a measure's name, or
    for a check of several terms its margin (the smallest share of a term's threshold
    kept; `evo.capacity.check`)."""
    return MEASURE_NAMES.get(capacity, f"margin of {capacity}")


def capacity_label(snap: RunSnapshot) -> str:
    """The short name of the capacity measure the run judged legality with."""
    return SHORT_NAMES.get(snap.config.capacity, "margin")


def fisher_text(evaluation: Evaluation | None) -> str:
    if evaluation is None or evaluation.fisher is None:
        return "-"
    return f"{evaluation.fisher:.4g}"


def format_lineage(snap: RunSnapshot, steps: list[Step]) -> str:
    """The line as text: one header per step, then its gene edits indented."""
    last = steps[-1]
    lines = [f"Lineage of #{last.id} (generation {last.individual.generation}) back to the "
             f"original network: {len(steps) - 1} step(s)"]
    for step in steps:
        ind = step.individual
        origin = ""
        if step.parent is not None:
            origin = f" from #{step.parent}" + "".join(f" x #{o}" for o in step.others)
        head = f"#{ind.id:<5} gen {ind.generation:<3} {ind.operator}{origin}"
        measure = capacity_label(snap)
        if step.parent is None:
            values = f"latency {latency_text(step.evaluation)}, {measure} " \
                     f"{fisher_text(step.evaluation)}"
        else:
            values = (f"latency {latency_text(step.before)} -> {latency_text(step.evaluation)}"
                      f", {measure} {fisher_text(step.before)} -> "
                      f"{fisher_text(step.evaluation)}")
        lines.append(f"{head}\n        {values}")
        if step.evaluation is not None and step.evaluation.error:
            lines.append(f"        error: {step.evaluation.error.splitlines()[0][:200]}")
        lines += [f"        {text}" for text in grouped_edits(step.changes)]
    return "\n".join(lines)


def grouped_edits(changes: tuple[GeneChange, ...]) -> list[str]:
    """One line per slot and kind of edit, in the changes' (network) order: `conv1: +
    tile(co, 8) ; vectorize(ow)`; three or more slots in a row with the same edit
    share one line: `conv1 .. layer3.conv2 (9 slots): + tile(co, 8)`."""
    groups: dict[tuple[str, str], list[GeneChange]] = {}
    for change in changes:
        groups.setdefault((change.slot, change.action), []).append(change)
    edits: list[tuple[str, str]] = []  # (slot, what was done to it)
    for (slot, action), members in groups.items():
        if action == "changed":
            edits += [(slot, f"~ {c.old.label()} -> {c.gene.label()}") for c in members
                      if c.old is not None]
            continue
        sign = {"added": "+", "removed": "-", "moved": "<>"}[action]
        edits.append((slot, f"{sign} " + " ; ".join(c.gene.label() for c in members)))
    lines, start = [], 0
    while start < len(edits):
        end = start + 1
        while end < len(edits) and edits[end][1] == edits[start][1] \
                and edits[end][0] != edits[end - 1][0]:
            end += 1
        if end - start >= 3:
            lines.append(f"{edits[start][0]} .. {edits[end - 1][0]} ({end - start} slots): "
                         f"{edits[start][1]}")
        else:
            lines += [f"{slot}: {text}" for slot, text in edits[start:end]]
        start = end
    return lines


def lineage_json(steps: list[Step]) -> list[dict[str, Any]]:
    """The line as JSON-ready dicts, original first."""
    return [{
        "id": s.id,
        "generation": s.individual.generation,
        "operator": s.individual.operator,
        "parents": list(s.individual.parents),
        "latency_ms": s.evaluation.latency_ms if s.evaluation else None,
        "fisher": s.evaluation.fisher if s.evaluation else None,
        "legal": s.evaluation.legal if s.evaluation else None,
        "error": s.evaluation.error if s.evaluation else None,
        "before": None if s.parent is None else {
            "id": s.parent,
            "latency_ms": s.before.latency_ms if s.before else None,
            "fisher": s.before.fisher if s.before else None,
        },
        "changes": [c.to_json() for c in s.changes],
        "detail": s.individual.detail,
    } for s in steps]


def lineage_dot(snap: RunSnapshot, steps: list[Step]) -> str:
    """A Graphviz digraph of the line: one box per individual, edges labelled with the
    gene edits; other (crossover) parents as dashed side nodes."""
    best = snap.best
    out = ["digraph lineage {",
           '  graph [rankdir=TB, fontname="Helvetica", labelloc=t, '
           f'label={_quote(f"Lineage of #{steps[-1].id}")}];',
           '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", '
           'fontname="Helvetica", fontsize=10];',
           '  edge [fontname="Helvetica", fontsize=9];']
    on_line = {s.id for s in steps}
    for step in steps:
        out.append(f"  n{step.id} [label={_quote(_node_label(snap, step.id))}"
                   + (', fillcolor="#ffd27f"' if step.id == best else "") + "];")
    sides = sorted({o for s in steps for o in s.others} - on_line)
    for ident in sides:
        out.append(f'  n{ident} [label={_quote(_node_label(snap, ident))}, '
                   'style="rounded,dashed"];')
    for step in steps:
        if step.parent is None:
            continue
        edits = grouped_edits(step.changes)
        if len(edits) > 6:
            edits = edits[:6] + [f"... {len(edits) - 6} more slots"]
        label = step.individual.operator + "\\l" + "".join(_escape(e) + "\\l" for e in edits)
        out.append(f'  n{step.parent} -> n{step.id} [label="{label}"];')
        for other in step.others:
            out.append(f'  n{other} -> n{step.id} [style=dashed, label="crossover"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _node_label(snap: RunSnapshot, ident: int) -> str:
    individual = snap.individuals.get(ident)
    evaluation = snap.evaluations.get(ident)
    operator = individual.operator if individual else "?"
    generation = individual.generation if individual else "?"
    return (f"#{ident} (gen {generation})\n{operator}\n{latency_text(evaluation)}\n"
            f"{capacity_label(snap)} {fisher_text(evaluation)}")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _quote(text: str) -> str:
    """A DOT string literal (newlines as centred line breaks)."""
    return '"' + _escape(text).replace("\n", "\\n") + '"'

