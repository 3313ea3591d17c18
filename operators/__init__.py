"""DEAP-compatible variation over genomes, with an explicit numpy RNG.

`operators.layer` mutates one layer's gene sequence (insert, delete, replace,
perturb, swap); `operators.network` picks the slot, applies a layer mutation and
crosses parents (whole slots, or one point inside a slot's sequence). Operators
return `None` when a draw gives no valid child; lineage (operator + detail) is
part of every result.
"""

from operators.layer import LAYER_MUTATIONS, LayerChange
from operators.network import (
    MUTATION_RATES,
    Change,
    NetworkView,
    crossover,
    crossover_one_point,
    crossover_slots,
    mutate,
    slot_weights,
)

__all__ = [
    "LAYER_MUTATIONS", "MUTATION_RATES", "Change", "LayerChange", "NetworkView", "crossover",
    "crossover_one_point", "crossover_slots", "mutate", "slot_weights",
]
