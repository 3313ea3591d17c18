"""Build the transformed `nn.Module`: slot convs replaced, BatchNorms shrunk, weights seeded.

Every layer is initialised with PyTorch's default initialisation (its
`reset_parameters`) from its own seed, derived from the transform seed and the
layer's module name. So two genomes that differ in one slot give networks whose
other layers have identical weights, and a Fisher Potential comparison sees the
transformation rather than a reshuffled random stream. The weights of untouched
slots are computed once per network and seed, then copied (or, with
`share_weights`, shared read-only) after that.
"""

from __future__ import annotations

import copy
import hashlib
import weakref

import torch
from torch import nn

from evo.networks.base import Network
from evo.networks.inherit import inherit_weights
from genomes.plan import LayerPlan, initial_plan
from genomes.torch_decoder import TransformedConv

_UNTOUCHED: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()
_MAX_CACHED_SEEDS = 4


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


def layer_seed(seed: int, name: str) -> int:
    """The seed of the layer called `name` in a network built from `seed`."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def build_module(network: Network, plans: dict[str, LayerPlan], bn_sizes: dict[str, int],
                 seed: int, share_weights: bool = False, inherit: bool = False) -> nn.Module:
    """A copy of `network.module` with each slot conv replaced by its plan's module and the
    BatchNorms in `bn_sizes` rebuilt at their new size; every layer re-initialised.

    With `share_weights`, untouched slots use the cached weight tensors themselves: the
    module must then not be trained or changed in place. With `inherit`, transformed
    slots start from their original conv's weights (`evo.networks.inherit`).
    """
    skip = {id(network.module.get_submodule(slot_id)): nn.Identity() for slot_id in plans}
    module = copy.deepcopy(network.module, memo=skip)
    for slot_id, plan in plans.items():
        biased = network.module.get_submodule(slot_id).bias is not None
        conv = _slot_conv(network, slot_id, plan, biased, seed, share_weights)
        original = network.slot(slot_id).spec
        if inherit and conv.plan.pieces != initial_plan(original).pieces:
            untouched = _slot_conv(network, slot_id, initial_plan(original), biased, seed, True)
            inherit_weights(conv, untouched, original.groups)
        module.set_submodule(slot_id, conv)
    for name, size in bn_sizes.items():
        old = module.get_submodule(name)
        module.set_submodule(name, nn.BatchNorm2d(size, old.eps, old.momentum, old.affine,
                                                  old.track_running_stats))
    fresh = {id(m) for slot_id in plans for m in module.get_submodule(slot_id).modules()}
    for name, m in module.named_modules():
        reset = getattr(m, "reset_parameters", None)
        if id(m) not in fresh and callable(reset):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(layer_seed(seed, name))
                reset()
    module.train(network.module.training)
    return module


def _slot_conv(network: Network, slot_id: str, plan: LayerPlan, biased: bool, seed: int,
               share: bool) -> TransformedConv:
    """The slot's new conv, seeded by its name; an untouched slot's weights come from a
    per-network cache (a few seeds at most) once they were computed."""
    cls = BiasedTransformedConv if biased else TransformedConv
    original = network.slot(slot_id).spec
    untouched = plan.spec == original and plan.pieces == initial_plan(original).pieces
    by_seed = _UNTOUCHED.setdefault(network.module, {})
    cached = by_seed.get(seed, {})
    if untouched and slot_id in cached:
        with torch.device("meta"):
            conv = cls(plan)
        if not share:
            conv.to_empty(device="cpu")
        conv.load_state_dict(cached[slot_id], assign=share)
        return conv
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(layer_seed(seed, slot_id))
        conv = cls(plan)
    if untouched:
        if seed not in by_seed and len(by_seed) >= _MAX_CACHED_SEEDS:
            by_seed.clear()
        by_seed.setdefault(seed, {})[slot_id] = {k: v.detach().clone()
                                                 for k, v in conv.state_dict().items()}
    return conv
