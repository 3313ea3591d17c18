"""`transform_network`: apply a network genome to a network, as plans and as a module.

Slots are decoded in the network's call order. A slot's *effective* spec is its
original spec with `in_channels` reduced when an upstream bottleneck shrank the
channels it reads. In the module, every slot conv becomes the `TransformedConv` of
its plan (untouched slots too, as a one-piece plan), the BatchNorms after a
bottleneck shrink with it, and every layer is re-initialised with PyTorch's default
initialisation under `torch.manual_seed(seed)` (in a forked RNG), so the result
depends only on the network, the genome and the seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from evo.networks.base import Network
from genomes.genome import NetworkGenome, decode_layer
from genomes.plan import LayerPlan
from genomes.spec import SpecError
from genomes.torch_decoder import TransformedConv, to_torch


@dataclass(frozen=True)
class NetworkTransform:
    """The transformed network, or why the genome does not apply (`error`)."""

    module: nn.Module | None
    plans: dict[str, LayerPlan] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class BiasedTransformedConv(TransformedConv):
    """A `TransformedConv` plus the per-output-channel bias the original conv had."""

    def __init__(self, plan: LayerPlan) -> None:
        super().__init__(plan)
        self.bias = nn.Parameter(torch.empty(plan.out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = max(p.in_channels // p.groups for p in self.plan.pieces) * self.plan.spec.kernel**2
        bound = fan_in ** -0.5
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.bias.view(1, -1, 1, 1)


def transform_network(network: Network, genome: NetworkGenome, seed: int = 0,
                      plans_only: bool = False) -> NetworkTransform:
    """Plans for every slot (in slot order) and, unless `plans_only`, the new module.

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
            if gene.name not in slot.allowed:
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
    return NetworkTransform(build_module(network, plans, bn_sizes, seed), plans)


def build_module(network: Network, plans: dict[str, LayerPlan], bn_sizes: dict[str, int],
                 seed: int) -> nn.Module:
    """A copy of the network with slot convs and shrunk BatchNorms replaced, re-initialised.

    The slot convs are not copied (they are replaced anyway); every other layer is copied
    and reset with its `reset_parameters`, the new convs are initialised as they are
    built, all in module order under `torch.manual_seed(seed)`.
    """
    skip = {id(network.module.get_submodule(slot_id)): nn.Identity() for slot_id in plans}
    module = copy.deepcopy(network.module, memo=skip)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for slot_id, plan in plans.items():
            old = network.module.get_submodule(slot_id)
            new = BiasedTransformedConv(plan) if old.bias is not None else to_torch(plan)
            module.set_submodule(slot_id, new)
        for name, size in bn_sizes.items():
            old = module.get_submodule(name)
            module.set_submodule(name, nn.BatchNorm2d(size, old.eps, old.momentum, old.affine,
                                                      old.track_running_stats))
        fresh = {id(m) for slot_id in plans for m in module.get_submodule(slot_id).modules()}
        for m in module.modules():
            reset = getattr(m, "reset_parameters", None)
            if id(m) not in fresh and callable(reset):
                reset()
    module.train(network.module.training)
    return module
