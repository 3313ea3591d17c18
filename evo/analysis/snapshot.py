"""A consistent, read-only picture of a run folder, safe while the run is going.

The store is opened read-only (SQLite WAL: readers never block the writer) and read
with `RunStore.load`: generations first, then what they name, anything newer than
the last checkpoint dropped, so the picture is one finished generation, never half
of one; a damaged store is refused in one line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from evo.analysis.order import in_order
from evo.errors import UsageError
from evo.search.config import CONFIG_NAME, RunConfig
from evo.store.lock import holder_pid
from evo.store.records import Checkpoint, Evaluation, Individual
from evo.store.run_store import DB_NAME, RunStore

ORIGINAL_ID = 1


@dataclass(frozen=True)
class RunSnapshot:
    """What a run folder held when it was read."""

    folder: Path
    config: RunConfig
    individuals: dict[int, Individual] = field(default_factory=dict)
    evaluations: dict[int, Evaluation] = field(default_factory=dict)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    finished_at: dict[int, float] = field(default_factory=dict)
    holder: int | None = None

    @property
    def last(self) -> Checkpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None

    @property
    def best(self) -> int | None:
        return self.last.best if self.last else None

    @property
    def front(self) -> tuple[int, ...]:
        return self.last.front if self.last else ()

    @property
    def original(self) -> Evaluation | None:
        return self.evaluations.get(ORIGINAL_ID)

    @property
    def original_ms(self) -> float | None:
        original = self.original
        return original.latency_ms if original is not None and original.feasible else None

    @property
    def template(self) -> int | None:
        """The generation-0 individual with the template schedule on every conv, if any."""
        return next((i for i, ind in self.individuals.items()
                     if ind.operator == "initial:template"), None)

    @property
    def template_ms(self) -> float | None:
        template = self.template
        evaluation = self.evaluations.get(template) if template is not None else None
        return evaluation.latency_ms if evaluation is not None and evaluation.feasible else None

    @cached_property
    def slot_order(self) -> list[str]:
        """Every slot id the run knows, in the order the network runs its convs: as
        the run recorded it with its original network, then (a run from before the
        order was recorded) the others by name, numbers read as numbers."""
        original = self.individuals.get(ORIGINAL_ID)
        recorded = original.detail.get("slots") if original is not None else None
        recorded = [s for s in recorded if isinstance(s, str)] \
            if isinstance(recorded, list) else []
        known = set(recorded)
        for evaluation in self.evaluations.values():
            known.update(evaluation.slots)
        for individual in self.individuals.values():
            known.update(individual.genome.layers)
        return in_order(known, recorded)

    def ordered(self, slots: Iterable[str]) -> list[str]:
        """`slots` in the network's order (see `slot_order`)."""
        return in_order(slots, self.slot_order)

    def individual(self, ident: int) -> Individual:
        """The individual `ident`, or a UsageError naming the ids this run has."""
        if ident not in self.individuals:
            known = (f"ids 1..{max(self.individuals)}" if self.individuals
                     else "no individuals yet")
            raise UsageError(f"{self.folder}: no individual {ident} ({known})")
        return self.individuals[ident]

    def resolve(self, ident: int | None) -> int:
        """`ident`, or the best legal individual when None."""
        if ident is not None:
            self.individual(ident)
            return ident
        if self.best is None:
            raise UsageError(f"{self.folder}: no legal individual yet; pass --id")
        return self.best


def load_run(folder: str | Path) -> RunSnapshot:
    """Read a run folder (finished, running or interrupted) without writing to it.

    Raises UsageError for a path that is not a run folder, a `lock` that is not a
    regular file, a store that is not an evo run store or one that is damaged
    (`RunStore.open` and `RunStore.load` check it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such run folder")
    if not (folder / CONFIG_NAME).exists() and not (folder / DB_NAME).exists():
        raise UsageError(f"{folder}: not a run folder (no {CONFIG_NAME} or {DB_NAME})")
    config = RunConfig.load(folder)
    holder = holder_pid(folder)
    if not (folder / DB_NAME).exists():  # killed before its store was created
        return RunSnapshot(folder, config, holder=holder)
    store = RunStore.open(folder, readonly=True)
    try:
        stored = store.load()
    finally:
        store.close()
    return RunSnapshot(folder, config, stored.individuals, stored.evaluations,
                       stored.checkpoints, stored.sessions, stored.finished_at, holder)
