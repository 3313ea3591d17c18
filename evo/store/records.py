"""Immutable records a run is made of: individuals, their evaluations, checkpoints."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from genomes.genome import NetworkGenome


@dataclass(frozen=True)
class Evaluation:
    """What evaluating one network genome gave, as values.

    `latency_ms` is None when the candidate was not measured (illegal, or an error);
    `violation` is how far the capacity constraint is violated (0.0 = legal; see
    `evo.capacity`); `error` says why decoding, capacity or measurement failed.
    """

    latency_ms: float | None
    fisher: float | None
    violation: float | None
    error: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)

    @property
    def legal(self) -> bool:
        return self.error is None and self.violation == 0.0

    @property
    def feasible(self) -> bool:
        """Legal and measured: may compete on latency."""
        return self.legal and self.latency_ms is not None and math.isfinite(self.latency_ms)

    @property
    def penalty(self) -> float:
        """How bad an infeasible candidate is: its violation, or infinity on error."""
        if self.error is not None or self.violation is None:
            return math.inf
        return self.violation


@dataclass(frozen=True)
class Individual:
    """A candidate as it was made: its genome, its parents and the operator that made it.

    Lineage is recorded here, when the individual is created: `operator` names the
    variation ("original", "initial:program", "crossover_slots+insert", ...) and
    `detail` holds what it changed (the genes added, removed or changed).
    """

    id: int
    genome: NetworkGenome
    generation: int
    parents: tuple[int, ...] = ()
    operator: str = "original"
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return self.genome.hash()


@dataclass(frozen=True)
class Checkpoint:
    """The state after a finished generation: everything a resume needs."""

    generation: int
    population: tuple[int, ...]
    front: tuple[int, ...]
    best: int | None
    rng_state: dict[str, Any]
    next_id: int
    evaluations: int
    elapsed_s: float
    logbook: dict[str, Any]
