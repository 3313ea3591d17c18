"""Transformed convs that start from the original conv's initial weights.

A neural gene removes connections from a conv (grouping, depthwise, a bottleneck's
dropped output channels) or splits it into pieces (Seq1/Seq2/Seq3). With inherited
weights, every connection a piece keeps has the weight the original conv had there
at initialisation, so the transformed network is the original with connections
removed, not a fresh random draw: a transformation that removes nothing (Seq3 row
strips) computes exactly what the original computes. A connection the original did
not have (a piece that crosses the original's own groups) keeps the piece's own
seeded initialisation.
"""

from __future__ import annotations

import torch

from genomes.torch_decoder import TransformedConv


def inherit_weights(conv: TransformedConv, original: TransformedConv,
                    original_groups: int) -> None:
    """Overwrite `conv`'s weights (and bias) in place from `original`, the untransformed
    one-piece conv of the same slot and seed (weights `(C_out, C_in / original_groups,
    k, k)`)."""
    (weight,) = original.weights()
    per_group_out0 = weight.shape[0] // original_groups
    inputs0 = weight.shape[1]
    with torch.no_grad():
        for piece, module in zip(conv.plan.pieces, conv.convs, strict=True):
            per_group_in = piece.in_channels // piece.groups
            local_out = torch.arange(piece.out_channels)
            group = local_out // (piece.out_channels // piece.groups)
            out = piece.out_start + local_out
            inp = piece.in_start + group[:, None] * per_group_in + torch.arange(per_group_in)
            local_in = inp - (out // per_group_out0)[:, None] * inputs0
            connected = (local_in >= 0) & (local_in < inputs0)
            taken = weight[out[:, None], local_in.clamp(0, inputs0 - 1)]
            module.weight.copy_(torch.where(connected[..., None, None], taken, module.weight))
        bias = getattr(conv, "bias", None)
        if isinstance(bias, torch.Tensor):
            bias.copy_(original.bias[:bias.shape[0]])
