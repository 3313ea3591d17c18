"""DEAP-compatible variation over genomes, with an explicit numpy RNG.

`operators.layer` mutates one layer's gene sequence (insert, delete, replace,
perturb, swap); `operators.network` picks the slot, applies a layer mutation,
shares a slot's sequence with the slots of the same shape, spreads its neural
genes to the slots of its kind, and crosses parents
(whole slots, or one point inside a slot's sequence). Operators
return `None` when a draw gives no valid child; lineage (operator + detail) is
part of every result.
"""

from operators.layer import LAYER_MUTATIONS, LayerChange
from operators.network import (
    MUTATION_RATES,
    SHARE_RATE,
    SPREAD_RATE,
    Change,
    NetworkView,
    crossover,
    crossover_one_point,
    crossover_slots,
    mutate,
    share,
    slot_weights,
    spread,
)

__all__ = [
    "LAYER_MUTATIONS", "MUTATION_RATES", "SHARE_RATE", "SPREAD_RATE", "Change", "LayerChange",
    "NetworkView", "crossover", "crossover_one_point", "crossover_slots", "mutate", "share",
    "slot_weights", "spread",
]
