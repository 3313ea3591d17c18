"""Evaluating network genomes for the search: decode, capacity first, then latency.

For a batch of genomes: decode each on the network (an undecodable genome is an
error value); compute its capacity measure (`RunConfig.capacity`: the Fisher
Potential by default, or another of `evo.capacity.measures`; cached by the genome's neural part;
torch on every local core, as no build or timing of ours runs meanwhile) and its
violation of the capacity constraint; measure only the legal ones, every
slot of every legal genome in one batch through the layer evaluator (parallel
builds, serial timing, persistent cache). A network's latency is the sum of its
slots' measured conv latencies.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path

from evo.capacity import FisherPotential, violation
from evo.capacity.measures import search_measure
from evo.measure import LayerEvaluator, LayerJob, default_measurement_cache, make_evaluator
from evo.measure.evaluator import available_cores
from evo.networks import Network, load_network, transform_network
from evo.search.config import RunConfig
from evo.search.variation import CachedView, Variation
from evo.store.records import Evaluation
from genomes.genome import NetworkGenome
from genomes.plan import LayerPlan
from genomes.spec import LayerSpec


class NetworkEvaluator:
    """Turns network genomes into `Evaluation` values; never raises for a bad genome.

    `progress`, when set, is told how many of the genomes given are evaluated as
    it goes: 1 for each one refused before measuring, and for the measured ones
    their share of each slot measurement that comes back (the shares of a call add
    up to the number of genomes given)."""

    progress: Callable[[float], None] | None = None

    def __init__(self, network: Network, fisher: FisherPotential, layers: LayerEvaluator,
                 threshold: float = 1.0, scope: str = "network") -> None:
        self.network = network
        self.fisher = fisher
        self.layers = layers
        self.threshold = threshold
        self.scope = scope
        self.original_fisher = fisher.original()

    def __call__(self, genomes: list[NetworkGenome]) -> list[Evaluation]:
        results: list[Evaluation | None] = []
        pending: list[tuple[int, dict[str, LayerPlan], float, float]] = []
        for index, genome in enumerate(genomes):
            transform = transform_network(self.network, genome, plans_only=True)
            if transform.error is not None:
                results.append(Evaluation(None, None, None, transform.error))
                self._report(1)
                continue
            fisher = self.fisher.of(genome)
            if fisher.error is not None or fisher.total is None:
                results.append(Evaluation(None, None, None, f"fisher: {fisher.error}"))
                self._report(1)
                continue
            amount = violation(self.original_fisher, fisher, self.threshold, self.scope)
            if amount is None or amount > 0:
                results.append(Evaluation(None, fisher.total, amount))
                self._report(1)
                continue
            results.append(None)
            pending.append((index, transform.plans, fisher.total, amount))
        jobs = [LayerJob(plan.spec, genomes[index].layer(slot_id))
                for index, plans, _, _ in pending for slot_id, plan in plans.items()]
        share = len(pending) / len(jobs) if jobs else 0.0
        measured = iter(self.layers.measure(
            jobs, progress=(lambda n: self._report(n * share)) if self.progress else None))
        for index, plans, fisher_total, amount in pending:
            slots, total, errors = {}, 0.0, []
            for slot_id in plans:
                m = next(measured)
                slots[slot_id] = {"ms": m.median_ms, "spread": m.spread, "cached": m.cached,
                                  "threads": m.threads, "flagged": m.flagged}
                if m.error is not None or m.median_ms is None:
                    errors.append(f"slot {slot_id}: {m.error}")
                else:
                    total += m.median_ms
            if errors:
                results[index] = Evaluation(None, fisher_total, amount, "; ".join(errors)[:2000],
                                            slots)
            else:
                results[index] = Evaluation(total, fisher_total, amount, None, slots)
        return [r for r in results if r is not None]

    def _report(self, genomes: float) -> None:
        if self.progress is not None:
            self.progress(genomes)

    def close(self) -> None:
        self.layers.close()


@dataclass
class SearchContext:
    """What a run needs besides its store: the network, variation and evaluation."""

    network: Network
    variation: Variation
    evaluate: NetworkEvaluator
    chunk: int

    def close(self) -> None:
        self.evaluate.close()


def network_view(network: Network, without_genes: Collection[str] = ()) -> CachedView:
    """The operators' view of `network`: slots (each allowing its gene kinds but those in
    `without_genes`, which no mutation then draws), effective specs, validity."""

    def decode(genome: NetworkGenome) -> tuple[dict[str, LayerSpec], str | None]:
        transform = transform_network(network, genome, plans_only=True)
        return {k: p.spec for k, p in transform.plans.items()}, transform.error

    slots = [replace(slot, allowed=tuple(g for g in slot.allowed if g not in without_genes))
             for slot in network.slots]
    return CachedView(slots, decode)


def build_context(config: RunConfig, folder: Path | None = None) -> SearchContext:
    """Load the network, its capacity reference and the layer evaluator for `config`
    (measuring into the cache of the run in `folder`, see `RunConfig.cache_path`), the
    evaluator's machinery checked first (`LayerEvaluator.preflight`: UsageError)."""
    network = load_network(config.model, config.input_shape, seed=config.seed)
    # Capacity is computed between measurement batches, when the builders and the timing
    # process are idle: on every local core (on 2 cores, 1.7x faster than on one).
    fisher = search_measure(config, network, threads=available_cores())
    cache = (config.cache_path(folder) if folder is not None else config.cache) or \
        default_measurement_cache()
    layers = make_evaluator(config.evaluator, target=config.target, jobs=config.jobs,
                            cache_path=cache, runner=config.runner, backend=config.backend,
                            scheduler=config.scheduler, build_timeout_s=config.build_timeout_s,
                            preflight=True)
    evaluate = NetworkEvaluator(network, fisher, layers, config.threshold, config.scope)
    variation = Variation(network_view(network, config.without_genes), config.neural,
                          config.initial_genes, config.max_attempts)
    jobs = config.jobs or 2
    return SearchContext(network, variation, evaluate, chunk=max(4, 4 * jobs))
