"""The evolutionary loop: make offspring, evaluate them, select survivors, checkpoint.

A generation is all-or-nothing: its new individuals, their evaluations and the
checkpoint (population, Pareto set, best, RNG state, logbook) are committed in one
transaction. A run stopped anywhere resumes from the last committed generation
and, given the same evaluations, makes exactly the same choices as a run that was
never stopped: every random draw comes from one `numpy.random.Generator` whose
state is part of the checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from deap import base

from evo.search.config import RunConfig
from evo.search.selection import (
    best_feasible,
    latency_key,
    pareto_front,
    select_best_latency,
    select_nsga2,
    standings,
    tournament,
)
from evo.search.variation import SEED_SCHEDULES, Proposal, Variation, fastest_per_slot
from evo.store.records import Checkpoint, Evaluation, Individual
from evo.store.run_store import RunStore
from genomes.genome import NetworkGenome

EvaluateBatch = Callable[[list[NetworkGenome]], list[Evaluation]]


@dataclass
class SearchState:
    """Everything the loop needs, rebuilt from the store on resume."""

    rng: np.random.Generator
    individuals: dict[int, Individual] = field(default_factory=dict)
    evaluations: dict[int, Evaluation] = field(default_factory=dict)
    population: list[int] = field(default_factory=list)
    generation: int = -1
    next_id: int = 1
    evaluation_count: int = 0
    elapsed_s: float = 0.0
    by_hash: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_store(cls, store: RunStore, seed: int) -> SearchState:
        checkpoint = store.last_checkpoint()
        if checkpoint is None:
            return cls(np.random.default_rng(seed))
        rng = np.random.default_rng()
        rng.bit_generator.state = checkpoint.rng_state
        state = cls(rng, store.individuals(), store.evaluations(), list(checkpoint.population),
                    checkpoint.generation, checkpoint.next_id, checkpoint.evaluations,
                    checkpoint.elapsed_s)
        for ident, individual in state.individuals.items():
            state.by_hash.setdefault(individual.hash, ident)
        return state

    @property
    def template_latency(self) -> float | None:
        """Latency of the template-schedule individual of generation 0, if it was measured."""
        template = next((i for i, ind in self.individuals.items()
                         if ind.operator == "initial:template"), None)
        evaluation = self.evaluations.get(template) if template is not None else None
        return evaluation.latency_ms if evaluation is not None and evaluation.feasible else None

    @property
    def original_latency(self) -> float | None:
        original = self.evaluations.get(1)
        return original.latency_ms if original is not None and original.feasible else None


@dataclass(frozen=True)
class Budget:
    """Stop before generation `until_generation` or once `seconds` have passed here."""

    until_generation: int
    seconds: float | None = None


class Search:
    """One run's loop. `evaluate` is the only place candidates are measured; it is
    registered as the DEAP toolbox's `map` target so parallelism enters there."""

    def __init__(self, config: RunConfig, store: RunStore, variation: Variation,
                 evaluate: EvaluateBatch, chunk: int = 8,
                 on_generation: Callable[[SearchState, dict], None] | None = None,
                 on_evaluated: Callable[[int], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.variation = variation
        self.chunk = max(1, chunk)
        self.on_generation = on_generation
        self.on_evaluated = on_evaluated
        self.toolbox = base.Toolbox()
        self.toolbox.register("map", lambda fn, genomes: fn(list(genomes)))
        self.toolbox.register("evaluate", evaluate)
        self.toolbox.register("mate", variation.crossover)
        self.toolbox.register("mutate", variation.mutate)
        select = {"nsga2": select_nsga2, "aging": _select_aging, "ga": select_best_latency}
        self.toolbox.register("select", select[config.strategy])
        self.state = SearchState.from_store(store, config.seed)

    # ------------------------------------------------------------------ loop
    def run(self, budget: Budget, stop_requested: Callable[[], str | None]) -> str:
        """Run generations until the budget or a stop request; returns why it stopped."""
        started = time.monotonic()
        base_elapsed = self.state.elapsed_s
        while True:
            reason = stop_requested()
            if reason:
                return reason
            if self.state.generation + 1 >= budget.until_generation:
                return "completed"
            if budget.seconds is not None and time.monotonic() - started >= budget.seconds:
                return "time budget"
            if not self._generation(lambda: base_elapsed + time.monotonic() - started,
                                    stop_requested):
                return stop_requested() or "interrupted"

    def _generation(self, elapsed: Callable[[], float],
                    stop_requested: Callable[[], str | None]) -> bool:
        state, config = self.state, self.config
        generation = state.generation + 1
        if generation == 0:
            proposals = self._initial_proposals()
        else:
            proposals = self._offspring(config.population)
        new = []
        for proposal in proposals:
            new.append(Individual(state.next_id, proposal.genome, generation, proposal.parents,
                                  proposal.operator, proposal.detail))
            state.next_id += 1
        counted = state.evaluation_count
        try:
            evaluations = self._evaluate(new, stop_requested)
        except BaseException:  # e.g. InfrastructureError: the generation is not stored
            state.next_id, state.evaluation_count = state.next_id - len(new), counted
            raise
        if evaluations is None:  # stopped: the generation is dropped, and so is its count
            state.next_id, state.evaluation_count = state.next_id - len(new), counted
            return False
        for individual in new:
            state.individuals[individual.id] = individual
            state.evaluations[individual.id] = evaluations[individual.id]
            state.by_hash.setdefault(individual.hash, individual.id)
        pool = state.population + [i.id for i in new]
        if generation == 0:
            state.population = pool
        else:
            state.population = self.toolbox.select(pool, state.evaluations, config.population)
        state.generation = generation
        state.elapsed_s = elapsed()
        everyone = list(state.individuals)
        front = pareto_front(everyone, state.evaluations)
        best = best_feasible(everyone, state.evaluations)
        logbook = self._logbook(new, best, front)
        checkpoint = Checkpoint(generation, tuple(state.population), tuple(front), best,
                                state.rng.bit_generator.state, state.next_id,
                                state.evaluation_count, state.elapsed_s, logbook)
        self.store.commit_generation(new, {i.id: state.evaluations[i.id] for i in new}, checkpoint)
        if self.on_generation:
            self.on_generation(state, logbook)
        return True

    # ------------------------------------------------------------- proposals
    def _initial_proposals(self) -> list[Proposal]:
        """The original network, then mutants of it, alternately program-only."""
        original = self.state.next_id
        # The slots in the order the network runs them, for the analyses (evo.analysis.order).
        slots = [slot.id for slot in self.variation.view.slots]
        out = [Proposal(NetworkGenome(), (), "original", {"slots": slots})]
        out += [replace(p, parents=(original,)) for p in self.variation.seeds()]
        out = out[:self.config.population]
        # Mutants are built on the template schedule when there is one: it is their parent.
        base = original + 1 if len(out) > 1 and out[1].operator == "initial:template" \
            else original
        seen = {p.genome.hash() for p in out}
        for index in range(len(out), self.config.population):
            program_only = index % 2 == 1 or not self.config.neural
            for _ in range(self.config.max_attempts):
                proposal = self.variation.initial(self.state.rng, program_only)
                if proposal is not None and proposal.genome.hash() not in seen:
                    seen.add(proposal.genome.hash())
                    out.append(replace(proposal, parents=(base,)))
                    break
        return out

    def _offspring(self, count: int) -> list[Proposal]:
        state, config = self.state, self.config
        population = state.population
        seen = {state.individuals[i].hash for i in population}
        out: list[Proposal] = []
        if state.generation == 0:  # generation 1 starts with the seeds' best per slot
            combined = self._fastest_of_seeds()
            if combined is not None and combined.genome.hash() not in state.by_hash:
                seen.add(combined.genome.hash())
                out.append(combined)
        if config.strategy == "nsga2":
            ranks = standings(population, state.evaluations)

            def key(i):
                return ranks[i].key()
        else:
            def key(i):
                return latency_key(state.evaluations[i])
        for _ in range(count - len(out)):
            for _ in range(config.max_attempts):
                proposal = self._child(population, key)
                if proposal is not None and proposal.genome.hash() not in seen:
                    seen.add(proposal.genome.hash())
                    out.append(proposal)
                    break
        return out

    def _fastest_of_seeds(self) -> Proposal | None:
        """The seed schedules of generation 0 combined, each slot taking the schedule
        that measured fastest on it (free: every slot is in the measurement cache);
        None with fewer than two measured, legal seeds or when one is fastest
        everywhere."""
        seeds = [(ident, ind) for ident, ind in self.state.individuals.items()
                 if ind.generation == 0 and ind.operator.removeprefix("initial:")
                 in SEED_SCHEDULES and self.state.evaluations[ident].feasible]
        measured = [(ind.genome, {slot: (value or {}).get("ms") for slot, value in
                                  self.state.evaluations[ident].slots.items()})
                    for ident, ind in seeds]
        combined = fastest_per_slot(measured)
        if combined is None:
            return None
        genome, chosen = combined
        names = [ind.operator.removeprefix("initial:") for _, ind in seeds]
        return Proposal(genome, tuple(ident for ident, _ in seeds), "seeds:fastest",
                        {"slots": {slot: names[i] for slot, i in
                                   zip(sorted(genome.layers), chosen, strict=True)}})

    def _child(self, population: list[int], key) -> Proposal | None:
        state, config = self.state, self.config
        rng = state.rng
        if config.strategy == "aging":
            size = max(2, len(population) // 4)
            sample = [population[int(i)] for i in
                      rng.choice(len(population), size=min(size, len(population)), replace=False)]
            first = min(sample, key=key)
        else:
            first = tournament(rng, population, key)
        genome = state.individuals[first].genome
        parents: tuple[int, ...] = (first,)
        steps: list[str] = []
        detail: dict = {}
        if config.strategy != "aging" and rng.random() < config.crossover_prob:
            second = tournament(rng, population, key)
            crossed = self.toolbox.mate(rng, genome, state.individuals[second].genome)
            if crossed is not None:
                genome, parents = crossed.genome, (first, second)
                steps.append(crossed.operator)
                detail["crossover"] = crossed.detail
        mutated = self.toolbox.mutate(rng, genome)
        if mutated is not None:
            genome = mutated.genome
            steps.append(mutated.operator)
            detail["mutation"] = mutated.detail
        if not steps:
            return None
        return Proposal(genome, parents, "+".join(steps), detail)

    # ------------------------------------------------------------ evaluation
    def _evaluate(self, new: list[Individual],
                  stop_requested: Callable[[], str | None]) -> dict[int, Evaluation] | None:
        """Evaluate in chunks, reusing results for genomes seen before; None if a stop
        was requested before the generation's evaluations were complete."""
        state = self.state
        out: dict[int, Evaluation] = {}
        todo: dict[str, list[Individual]] = {}
        for individual in new:
            known = state.by_hash.get(individual.hash)
            if known is not None and known in state.evaluations:
                out[individual.id] = state.evaluations[known]
            else:
                todo.setdefault(individual.hash, []).append(individual)
        groups = list(todo.values())
        for start in range(0, len(groups), self.chunk):
            if stop_requested():
                return None
            chunk = groups[start:start + self.chunk]
            results = self.toolbox.map(self.toolbox.evaluate, [g[0].genome for g in chunk])
            for group, result in zip(chunk, results, strict=True):
                for individual in group:
                    out[individual.id] = result
            state.evaluation_count += len(chunk)
            if self.on_evaluated:
                self.on_evaluated(len(chunk))
        return out

    def _logbook(self, new: list[Individual], best: int | None, front: list[int]) -> dict:
        state = self.state
        legal = sum(state.evaluations[i.id].legal for i in new)
        best_ms = state.evaluations[best].latency_ms if best is not None else None
        original = state.original_latency
        template_ms = state.template_latency
        return {
            "generation": state.generation,
            "new": len(new),
            "legal_share": legal / len(new) if new else 0.0,
            "evaluations": state.evaluation_count,
            "best_id": best,
            "best_ms": best_ms,
            "original_ms": original,
            "speedup": original / best_ms if original and best_ms else None,
            "template_ms": template_ms,
            "speedup_vs_template": template_ms / best_ms if template_ms and best_ms else None,
            "front_size": len(front),
            "elapsed_s": state.elapsed_s,
        }


def _select_aging(pool: list[int], evaluations: dict[int, Evaluation], k: int) -> list[int]:
    """Regularized evolution: the youngest `k` survive, whatever their fitness."""
    return pool[-k:]
