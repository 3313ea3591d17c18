"""Run folders written through the real run store from a plan whose answers are
known exactly, for the analysis tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evo.search.config import RunConfig
from evo.search.selection import best_feasible, pareto_front
from evo.store.records import Checkpoint, Evaluation, Individual
from evo.store.run_store import RunStore
from genomes.genome import NetworkGenome

RNG_STATE = np.random.default_rng(0).bit_generator.state  # a store must hold a real one


@dataclass(frozen=True)
class Planned:
    """One individual: its genome's layers, latency (None: not measured), capacity."""

    id: int
    generation: int
    parents: tuple[int, ...]
    operator: str
    layers: dict[str, list[dict]]
    ms: float | None
    fisher: float = 10.0
    violation: float = 0.0
    slots: dict[str, float] = field(default_factory=dict)  # per-slot ms
    detail: dict = field(default_factory=dict)


def write_run(folder: Path, plan: list[Planned], **config) -> Path:
    """A finished run of `plan`, one checkpoint per generation (population: all)."""
    folder.mkdir(parents=True)
    RunConfig(**{"model": "tiny", "population": 4, "generations": 1, "evaluator": "analytic",
                 "capacity": "fisher",  # the planned capacities are Fisher Potentials
                 **config}).save(folder)
    store = RunStore.create(folder)
    session = store.start_session(os.getpid(), "evo run")
    individuals: dict[int, Individual] = {}
    evaluations: dict[int, Evaluation] = {}
    for generation in sorted({p.generation for p in plan}):
        new = []
        for p in plan:
            if p.generation != generation:
                continue
            genome = NetworkGenome.from_json({"schema": 1, "layers": p.layers})
            individuals[p.id] = Individual(p.id, genome, generation, p.parents, p.operator,
                                           p.detail)
            slots = {slot: {"ms": ms} for slot, ms in p.slots.items()}
            evaluations[p.id] = Evaluation(p.ms, p.fisher, p.violation, None, slots)
            new.append(individuals[p.id])
        everyone = list(individuals)
        front = pareto_front(everyone, evaluations)
        best = best_feasible(everyone, evaluations)
        log = {"generation": generation, "best_id": best,
               "best_ms": evaluations[best].latency_ms if best else None}
        store.commit_generation(new, {i.id: evaluations[i.id] for i in new},
                                Checkpoint(generation, tuple(everyone), tuple(front), best,
                                           RNG_STATE, max(individuals) + 1, len(everyone),
                                           10.0 * (generation + 1), log))
    store.end_session(session, "completed")
    store.close()
    return folder
