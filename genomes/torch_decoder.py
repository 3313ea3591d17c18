"""Decode a `LayerPlan` to a PyTorch module computing the transformed layer."""

from __future__ import annotations

import torch
from torch import nn

from genomes.plan import LayerPlan


class TransformedConv(nn.Module):
    """The pieces of a transformed conv layer, each an `nn.Conv2d` without bias.

    The output is assembled from the pieces' outputs by concatenation when the
    pieces form a grid of row strips by channel ranges, else by slice assignment.
    `convs[i].weight` has the shape `plan.pieces[i].weight_shape(spec)` in the
    standard OIHW layout.
    """

    def __init__(self, plan: LayerPlan) -> None:
        super().__init__()
        self.plan = plan
        spec = plan.spec
        self.convs = nn.ModuleList(
            nn.Conv2d(p.in_channels, p.out_channels, spec.kernel, stride=spec.stride,
                      padding=spec.padding, groups=p.groups, bias=False)
            for p in plan.pieces
        )
        self._grid = _as_grid(plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan = self.plan
        outs = [
            conv(x[:, p.in_start:p.in_stop, p.row_start:p.row_stop])
            for conv, p in zip(self.convs, plan.pieces, strict=True)
        ]
        if len(outs) == 1:
            return outs[0]
        if self._grid is not None:
            strips = [torch.cat([outs[i] for i in row], dim=1) if len(row) > 1 else outs[row[0]]
                      for row in self._grid]
            return torch.cat(strips, dim=2) if len(strips) > 1 else strips[0]
        n = x.shape[0]
        _, co, oh, ow = plan.out_shape
        out = x.new_zeros((n, co, oh, ow))
        for y, p in zip(outs, plan.pieces, strict=True):
            out[:, p.out_start:p.out_stop, p.out_row_start:p.out_row_start + y.shape[2]] = y
        return out

    def weights(self) -> list[torch.Tensor]:
        return [conv.weight for conv in self.convs]

    def extra_repr(self) -> str:
        return f"{self.plan.spec.short()}, {len(self.plan.pieces)} piece(s)"


def _as_grid(plan: LayerPlan) -> list[list[int]] | None:
    """Piece indices grouped into row strips (each strip's pieces sorted by channel),
    or None when some strip mixes pieces of different heights."""
    by_row: dict[int, list[int]] = {}
    for i, p in enumerate(plan.pieces):
        by_row.setdefault(p.out_row_start, []).append(i)
    grid = []
    for row in sorted(by_row):
        members = sorted(by_row[row], key=lambda i: plan.pieces[i].out_start)
        if len({plan.pieces[i].rows for i in members}) != 1:
            return None
        grid.append(members)
    return grid


def to_torch(plan: LayerPlan) -> TransformedConv:
    """A fresh module (default PyTorch init) computing the plan."""
    return TransformedConv(plan)
