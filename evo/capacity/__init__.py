"""Capacity: the Fisher Potential that makes a neural transformation legal.

    fisher = FisherPotential(network, data="synthetic", seed=0, batch=16)
    amount = violation(fisher.original(), fisher.of(genome))   # 0.0 = legal
"""

from evo.capacity.data import DataSpec, load_batch, parse_data
from evo.capacity.fisher import FisherResult, fisher_potential
from evo.capacity.potential import SCOPES, FisherPotential, violation

__all__ = [
    "SCOPES",
    "DataSpec",
    "FisherPotential",
    "FisherResult",
    "fisher_potential",
    "load_batch",
    "parse_data",
    "violation",
]
