"""The standard CIFAR augmentation, on a batch with torch ops: a random 32x32 crop of
the image zero-padded by 4 pixels, then a random horizontal flip."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Randomly crop (after `pad` pixels of zero padding) and flip each image of the
    batch `x` (N, C, H, W) of any dtype (uint8 batches stay uint8, so scaling after
    augmenting gives exactly what augmenting scaled images gives); every draw comes
    from `generator`."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]   # (N, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]   # (N, 1, 1, W)
    batch = torch.arange(n)[:, None, None, None]
    channels = torch.arange(x.shape[1])[None, :, None, None]
    cropped = padded[batch, channels, rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(3), cropped)
