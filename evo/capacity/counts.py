"""Size baselines for the proxy study: trainable parameters and conv + linear multiply-adds.

The code base counts FLOPs per slot (`Slot.spec.flops`, 2 per multiply-add, slot convs
only); these count a whole module, its linear layers included, by running it.
"""

from __future__ import annotations

import torch
from torch import nn


def params(module: nn.Module) -> int:
    """The number of trainable parameters (those requiring grad; shared ones once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def flops(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of every `nn.Conv2d` and `nn.Linear` call in one forward pass of
    `module` on zeros of `input_shape` (batch included, so the count is for that batch).

    A conv output element costs `in_channels / groups * kernel_h * kernel_w`
    multiply-adds, a linear output element `in_features`; biases, BatchNorm, activations,
    pooling and additions are not counted. The pass runs in eval mode without gradients
    (BatchNorm statistics untouched); each submodule's mode is restored afterwards.
    """
    total = 0

    def conv(m: nn.Conv2d, _args, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear(m: nn.Linear, _args, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    modes = {m: m.training for m in module.modules()}
    handles = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear))
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return total
