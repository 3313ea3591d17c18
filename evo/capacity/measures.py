"""Capacity measures a search can check a candidate against, besides the Fisher Potential.

Each measure has the shape of `FisherPotential`: `original()` and `of(genome)` give a
`FisherResult` (a total, per-slot shares where the measure has them, or an error),
cached in memory by the genome's neural part, so `evo.capacity.violation` turns any
of them into a legality rule "measure >= threshold x the original's".

    params      parameters of the slot convs (after every neural gene, including the
                channels a bottleneck takes from the convs it feeds); per slot
    flops       multiply-adds of the slot convs; per slot
    synflow, snip, grad_norm, naswot, jacob_cov   a zero-cost proxy of the transformed
                network at initialisation (`evo.capacity.proxies`; network only), as
                its oriented total (`oriented`): synflow's logarithm (its values span
                many orders of magnitude), jacob_cov's inverse magnitude (it is always
                negative, and less negative is better); the others as they are

`make_measure(name, ...)` builds one; "fisher" is `FisherPotential`. `search_measure`
is the check a search (and `evo bench`) uses for a run config: its `capacity` spec
(`evo.capacity.check`: one measure or several with thresholds), except
that a program-only search of a network without classifier logits gets `Unchanged`
(program genes never change what a network computes, so there is nothing to measure,
and the logit-based measures could not run).
"""

from __future__ import annotations

import math

from evo.capacity.data import load_batch, parse_data
from evo.capacity.fisher import FisherResult
from evo.capacity.proxies import ZERO_COST, all_proxies
from evo.errors import UsageError
from evo.networks import Network, transform_network
from genomes.genome import NetworkGenome

PLAN_MEASURES = ("params", "flops")
PROXY_MEASURES = tuple(ZERO_COST)
MEASURES = ("fisher", *PLAN_MEASURES, *PROXY_MEASURES)
# How a measure's raw value becomes a total compared as a ratio (default: as it is).
ORIENTATION = {"synflow": "log", "jacob_cov": "inverse"}


def oriented(how: str, value: float | None) -> float | None:
    """`value` turned so that its ratio to the original's says how much capacity is kept
    (1.0 = as much): "ratio" as it is, "log" its logarithm (None unless positive),
    "inverse" one over its magnitude (for measures of one sign where smaller means more:
    a loss, jacob_cov). None for None, zero or a non-finite value where it matters."""
    if value is None or not math.isfinite(value):
        return None
    if how == "log":
        return math.log(value) if value > 0 else None
    if how == "inverse":
        return 1.0 / abs(value) if value != 0 else None
    if how == "ratio":
        return value
    raise ValueError(f"orientation {how!r}: expected ratio, log or inverse")


class _Cached:
    """Memoises `_compute` by the genome's neural part."""

    def __init__(self) -> None:
        self._memory: dict[str, FisherResult] = {}
        self.computed = 0

    def of(self, genome: NetworkGenome) -> FisherResult:
        neural = genome.neural
        key = neural.hash()
        if key not in self._memory:
            self.computed += 1
            self._memory[key] = self._compute(neural)
        return self._memory[key]

    def original(self) -> FisherResult:
        return self.of(NetworkGenome())

    def _compute(self, neural: NetworkGenome) -> FisherResult:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release (the interface of `FisherPotential`)."""


class PlanMeasure(_Cached):
    """Parameters or multiply-adds of the slot convs, read off the decoded plans."""

    def __init__(self, network: Network, name: str) -> None:
        super().__init__()
        if name not in PLAN_MEASURES:
            raise UsageError(f"capacity measure {name!r}: expected one of "
                             f"{', '.join(PLAN_MEASURES)}")
        self.network, self.name = network, name

    def _compute(self, neural: NetworkGenome) -> FisherResult:
        transform = transform_network(self.network, neural, plans_only=True)
        if transform.error is not None:
            return FisherResult(None, {}, transform.error)
        per_slot = {slot: float(getattr(plan, self.name))
                    for slot, plan in transform.plans.items()}
        return FisherResult(sum(per_slot.values()), per_slot)


class Unchanged(_Cached):
    """Every program-only genome keeps the original's capacity: total 1.0. A genome with
    neural genes is an error value (a program-only search never makes one)."""

    def _compute(self, neural: NetworkGenome) -> FisherResult:
        if neural.layers:
            return FisherResult(None, {}, "neural genes in a program-only search")
        return FisherResult(1.0, {})


class ProxyMeasure(_Cached):
    """A zero-cost proxy of the transformed network on one seeded minibatch."""

    def __init__(self, network: Network, name: str, data: str = "synthetic", seed: int = 0,
                 batch: int = 64, threads: int = 1) -> None:
        super().__init__()
        if name not in PROXY_MEASURES:
            raise UsageError(f"capacity measure {name!r}: expected one of "
                             f"{', '.join(PROXY_MEASURES)}")
        if len(network.output_shape) != 2:
            raise UsageError(f"model {network.name}: output shape {network.output_shape} is "
                             f"not (batch, classes) logits; {name} needs them "
                             f"(--program-only or --capacity params/flops do not)")
        self.network, self.name, self.seed, self.threads = network, name, seed, threads
        self.x, self.y = load_batch(parse_data(data), network.input_shape[1:], batch,
                                    network.output_shape[1], seed)

    def _compute(self, neural: NetworkGenome) -> FisherResult:
        transform = transform_network(self.network, neural, seed=self.seed, plans_only=True)
        if transform.error is not None:
            return FisherResult(None, {}, transform.error)
        values = all_proxies(lambda: transform_network(self.network, neural,
                                                       seed=self.seed).module,
                             self.x, self.y, names=(self.name,), threads=self.threads)
        value = oriented(ORIENTATION.get(self.name, "ratio"), values[self.name])
        if value is None:
            return FisherResult(None, {}, f"{self.name}: could not be computed")
        return FisherResult(float(value), {})


def make_measure(name: str, network: Network, data: str = "synthetic", seed: int = 0,
                 batch: int = 16, bn: str = "running", threads: int = 1, cache_path=None):
    """The capacity measure `name` of `network` (see the module docstring)."""
    from evo.capacity.potential import FisherPotential

    if name == "fisher":
        return FisherPotential(network, data=data, seed=seed, batch=batch, bn=bn,
                               threads=threads, cache_path=cache_path)
    if name in PLAN_MEASURES:
        return PlanMeasure(network, name)
    if name in PROXY_MEASURES:
        return ProxyMeasure(network, name, data=data, seed=seed, batch=batch, threads=threads)
    raise UsageError(f"capacity measure {name!r}: choose one of {', '.join(MEASURES)}")


def search_measure(config, network: Network, threads: int = 1):
    """The capacity check of a search with `config` (an `evo.search.config.RunConfig`)
    on `network`; see the module docstring."""
    from evo.capacity.check import make_check

    if not config.neural and len(network.output_shape) != 2:
        return Unchanged()
    return make_check(config.capacity, network, data=config.data, seed=config.seed,
                      batch=config.fisher_batch, bn=config.fisher_bn, threads=threads)
