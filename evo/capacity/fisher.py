"""Fisher Potential (BlockSwap, Turner et al., ICLR 2020) of a (transformed) network.

On one minibatch at random initialisation, in training mode (BatchNorm as `bn`
says, below), with L the mean cross-entropy over the batch: for every slot,
take its measured activation `a` (N, C, H, W) and `g = dL/da`, and per channel

    delta_c = 0.5 * mean_n( (sum_{h,w} a[n,c,h,w] * g[n,c,h,w])^2 )

The slot's potential is `sum_c delta_c`; the network's is the sum over its slots.
The measured activation of a slot is the output of its conv block: the output of
the BatchNorm2d that is the conv's only consumer (before any ReLU), or the conv's
own output when it is not followed by exactly one BatchNorm (e.g. DenseNet's 3x3
convs, whose output is concatenated). `Slot.measure_at` names that module.

How BatchNorm normalises while the potential is measured (`bn`):

- "batch" (BlockSwap's and the paper's code): with the minibatch's
  statistics. Each transformed conv gets fresh weights (PyTorch's default
  initialisation, seeded by its name). BatchNorm then cancels a conv's weight
  scale, and in post-activation networks (conv -> BN -> ReLU, every zoo ResNet)
  the potential *rises* when convs are made depthwise: fewer redundant paths make
  each remaining channel more salient.
- "running" (default): with its running statistics, which at initialisation are mean 0 and
  variance 1, so every BatchNorm is the identity; transformed convs inherit the
  original conv's initial weights (`evo.networks.inherit`). A transformed network
  is then the original with connections removed: removing connections lowers the
  potential (every conv depthwise: to ~0), removing none keeps it. At threshold 1
  about one single neural change in six stays legal on resnet18.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from evo.networks.base import Slot

BN_MODES = ("batch", "running")


@dataclass(frozen=True)
class FisherResult:
    """A network's Fisher Potential: the total, each slot's share, or why there is none."""

    total: float | None
    per_slot: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict:
        return {"total": self.total, "per_slot": self.per_slot, "error": self.error}


def fisher_potential(module: nn.Module, slots: tuple[Slot, ...], x: torch.Tensor,
                     y: torch.Tensor, bn: str = "running") -> FisherResult:
    """Measure the Fisher Potential of `module` (modified: its parameters stop requiring
    grad and it is put in training mode, its BatchNorms in eval mode when `bn` is
    "running") on the minibatch (x, y)."""
    captured: dict[str, list[torch.Tensor]] = {slot.id: [] for slot in slots}
    handles = []
    for slot in slots:
        target = module.get_submodule(slot.measure_at or slot.id)

        def keep(_m, _args, output, slot_id=slot.id):
            if not output.requires_grad:  # the first measured activation: start the graph
                output.requires_grad_(True)
            captured[slot_id].append(output)
            return output.clone()  # an in-place ReLU downstream must not overwrite `a`

        handles.append(target.register_forward_hook(keep))
    for p in module.parameters():
        p.requires_grad_(False)
    module.train()
    if bn == "running":
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    try:
        with torch.enable_grad():
            logits = module(x)
            loss = F.cross_entropy(logits, y)
            order = [(slot_id, a) for slot_id, acts in captured.items() for a in acts]
            grads = torch.autograd.grad(loss, [a for _, a in order], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    per_slot = dict.fromkeys(captured, 0.0)
    with torch.no_grad():
        for (slot_id, a), g in zip(order, grads, strict=True):
            if g is not None:
                per_channel = (a * g).sum(dim=(2, 3)).double()
                per_slot[slot_id] += float(0.5 * per_channel.pow(2).mean(dim=0).sum())
    return FisherResult(sum(per_slot.values()), per_slot)
