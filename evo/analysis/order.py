"""Slots in the order the network runs them, for every analysis output.

A run records its network's slot ids in call order (the original individual's
`detail["slots"]`, from `evo.networks.slots.find_slots`); `in_order` sorts slot
ids by that order. Ids it does not hold (a run from before the order was
recorded) follow by name with numbers compared as numbers, so `denselayer2`
comes before `denselayer10`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key reading the digit runs of `name` as numbers (`dense2.10` after `dense2.9`)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.split(r"(\d+)", name) if part)


def in_order(ids: Iterable[str], order: Sequence[str] = ()) -> list[str]:
    """`ids` (distinct) in the order of `order`, then the ones it lacks by `natural_key`."""
    position = {slot: index for index, slot in enumerate(order)}
    return sorted(set(ids), key=lambda slot: (position.get(slot, len(position)),
                                              natural_key(slot)))
