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

    `feeds` are the slot ids whose input channels shrink with this conv's output
    (non-empty only where `bottleneck` is allowed), `shrinks` the BatchNorm module
    names on the way that shrink too, and `measure_at` the module whose output is
    this slot's activation for the Fisher Potential: the BatchNorm2d that is the
    conv's only consumer, else the conv itself.
    """

    id: str
    spec: LayerSpec
    allowed: tuple[str, ...]
    feeds: tuple[str, ...] = ()
    shrinks: tuple[str, ...] = ()
    measure_at: str | None = None


@dataclass(frozen=True)
class Network:
    """A CNN to search: a name, a module (fresh, seeded), its input shape, its slots.

    `identity` names the model exactly (zoo name, or file path and content hash)
    for caches; `output_shape` is the module's output shape at `input_shape`.
    """

    name: str
    input_shape: tuple[int, ...]
    slots: tuple[Slot, ...]
    module: nn.Module
    identity: str = ""
    output_shape: tuple[int, ...] = ()

    def slot(self, slot_id: str) -> Slot:
        for slot in self.slots:
            if slot.id == slot_id:
                return slot
        raise KeyError(slot_id)
