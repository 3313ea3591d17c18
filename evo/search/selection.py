"""Constrained selection: feasibility rules on top of DEAP's NSGA-II machinery.

Deb's feasibility rules: a feasible candidate (legal and measured) beats an
infeasible one; among infeasible candidates the smaller violation wins (an error
counts as an infinite violation); among feasible candidates NSGA-II ranks by
non-domination on (latency: minimise, Fisher Potential: maximise) and breaks
ties by crowding distance. All orderings are deterministic for a given input
order, so a resumed run selects exactly what an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from deap import base, tools

from evo.store.records import Evaluation


class LatencyFisherFitness(base.Fitness):
    """DEAP fitness: minimise latency, maximise Fisher Potential."""

    weights = (-1.0, 1.0)


@dataclass
class _Candidate:
    id: int
    fitness: LatencyFisherFitness


@dataclass(frozen=True)
class Standing:
    """Where a candidate stands: lower `rank` is better, then higher `crowding`,
    then lower `penalty` (infeasible candidates only)."""

    rank: int
    crowding: float
    penalty: float

    def key(self) -> tuple[float, float, float]:
        return (self.rank, -self.crowding, self.penalty)


def standings(ids: list[int], evaluations: dict[int, Evaluation]) -> dict[int, Standing]:
    """Rank `ids`: feasible ones by non-dominated fronts with crowding distance,
    then infeasible ones, all in one rank after the last front, by penalty."""
    feasible = [i for i in ids if evaluations[i].feasible]
    candidates = []
    for ident in feasible:
        e = evaluations[ident]
        fitness = LatencyFisherFitness()
        fitness.values = (e.latency_ms, e.fisher if e.fisher is not None else 0.0)
        candidates.append(_Candidate(ident, fitness))
    out: dict[int, Standing] = {}
    fronts = tools.sortNondominated(candidates, len(candidates)) if candidates else []
    for rank, front in enumerate(fronts):
        tools.emo.assignCrowdingDist(front)
        for c in front:
            out[c.id] = Standing(rank, c.fitness.crowding_dist, 0.0)
    last = len(fronts)
    for ident in ids:
        if ident not in out:
            out[ident] = Standing(last, 0.0, evaluations[ident].penalty)
    return out


def select_nsga2(ids: list[int], evaluations: dict[int, Evaluation], k: int) -> list[int]:
    """The `k` best of `ids` by feasibility rules, front and crowding distance."""
    ranks = standings(ids, evaluations)
    order = sorted(range(len(ids)), key=lambda pos: (*ranks[ids[pos]].key(), pos))
    return [ids[pos] for pos in order[:k]]


def latency_key(evaluation: Evaluation) -> tuple[int, float]:
    """Single-objective feasibility rules: feasible by latency, then infeasible by penalty."""
    if evaluation.feasible:
        return (0, evaluation.latency_ms)
    return (1, evaluation.penalty)


def select_best_latency(ids: list[int], evaluations: dict[int, Evaluation], k: int) -> list[int]:
    order = sorted(range(len(ids)), key=lambda pos: (*latency_key(evaluations[ids[pos]]), pos))
    return [ids[pos] for pos in order[:k]]


def tournament(rng: np.random.Generator, ids: list[int], key, size: int = 2) -> int:
    """The best (lowest `key(id)`) of `size` ids drawn with replacement."""
    drawn = [ids[int(rng.integers(len(ids)))] for _ in range(size)]
    return min(drawn, key=key)


def pareto_front(ids: list[int], evaluations: dict[int, Evaluation]) -> list[int]:
    """The feasible, non-dominated ids (latency vs Fisher Potential), by latency."""
    ranks = standings(ids, evaluations)
    front = [i for i in ids if evaluations[i].feasible and ranks[i].rank == 0]
    return sorted(front, key=lambda i: (evaluations[i].latency_ms, i))


def best_feasible(ids: list[int], evaluations: dict[int, Evaluation]) -> int | None:
    feasible = [i for i in ids if evaluations[i].feasible]
    if not feasible:
        return None
    return min(feasible, key=lambda i: (evaluations[i].latency_ms, i))


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
