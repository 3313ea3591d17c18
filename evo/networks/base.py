"""What the search sees of a network: its conv layers (slots) and how to rebuild it."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from genomes.spec import LayerSpec


@dataclass(frozen=True)
class Slot:
    """One `nn.Conv2d` of a network that a layer genome may transform.

    `id` is the conv's qualified module name (e.g. `layer1.0.conv1`); `spec` its
    shape at the network's input shape; `allowed` the gene names that are
    structurally legal here (channel-changing genes only where the conv's output
    channels reach no residual add or concatenation before the next conv).
    """

    id: str
    spec: LayerSpec
    allowed: tuple[str, ...]


@dataclass(frozen=True)
class Network:
    """A CNN to search: a name, a factory for fresh modules, its input shape, its slots."""

    name: str
    input_shape: tuple[int, ...]
    slots: tuple[Slot, ...]
    module: nn.Module

    def slot(self, slot_id: str) -> Slot:
        for slot in self.slots:
            if slot.id == slot_id:
                return slot
        raise KeyError(slot_id)
