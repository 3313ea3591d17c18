"""`transform_network`: apply a network genome to a network, as plans and as a module.

Slots are decoded in the network's call order. A slot's *effective* spec is its
original spec with `in_channels` reduced when an upstream bottleneck shrank the
channels it reads. In the module, every slot conv becomes the `TransformedConv` of
its plan (untouched slots too, as a one-piece plan), the BatchNorms after a
bottleneck shrink with it, and every layer is re-initialised with PyTorch's default
initialisation from a seed derived from `seed` and its name (`evo.networks.rebuild`),
so the result depends only on the network, the genome and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from torch import nn

from evo.networks.base import Network
from evo.networks.rebuild import build_module
from genomes.genes import admitted
from genomes.genome import NetworkGenome, decode_layer
from genomes.plan import LayerPlan
from genomes.spec import SpecError


@dataclass(frozen=True)
class NetworkTransform:
    """The transformed network, or why the genome does not apply (`error`)."""

    module: nn.Module | None
    plans: dict[str, LayerPlan] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def transform_network(network: Network, genome: NetworkGenome, seed: int = 0,
                      plans_only: bool = False, share_weights: bool = False,
                      inherit: bool = False) -> NetworkTransform:
    """Plans for every slot (in slot order) and, unless `plans_only`, the new module.

    `share_weights` lets untouched slots share cached weight tensors (faster; the module
    must then be used read-only, as the Fisher Potential does). `inherit` starts every
    transformed conv from its original conv's initial weights (`evo.networks.inherit`).

    Never raises for a bad genome: an unknown slot, a gene not allowed at a slot, a
    gene whose precondition fails, or a grouped conv that cannot take the reduced
    channels of an upstream bottleneck give `NetworkTransform(None, {}, error)`.
    """
    ids = {slot.id for slot in network.slots}
    unknown = sorted(set(genome.layers) - ids)
    if unknown:
        return NetworkTransform(None, {}, f"unknown slot {unknown[0]!r}")
    plans: dict[str, LayerPlan] = {}
    reduced: dict[str, int] = {}
    bn_sizes: dict[str, int] = {}
    for slot in network.slots:
        layer = genome.layer(slot.id)
        for gene in layer.genes:
            if not admitted(gene, slot.allowed, slot.spec):
                return NetworkTransform(None, {}, f"slot {slot.id}: gene {gene.name!r} "
                                                  f"not allowed here")
        spec = slot.spec
        if slot.id in reduced:
            try:
                spec = replace(spec, in_channels=reduced[slot.id])
            except SpecError as exc:
                return NetworkTransform(None, {}, f"slot {slot.id}: after an upstream "
                                                  f"bottleneck: {exc}")
        decoded = decode_layer(spec, layer)
        if decoded.plan is None:
            return NetworkTransform(None, {}, f"slot {slot.id}: {decoded.error}")
        plans[slot.id] = decoded.plan
        out = decoded.plan.out_channels
        if out != slot.spec.out_channels:
            reduced.update(dict.fromkeys(slot.feeds, out))
            bn_sizes.update(dict.fromkeys(slot.shrinks, out))
    if plans_only:
        return NetworkTransform(None, plans)
    module = build_module(network, plans, bn_sizes, seed, share_weights, inherit)
    return NetworkTransform(module, plans)
