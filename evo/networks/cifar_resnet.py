"""CIFAR ResNet-20 and ResNet-56 (He et al. 2016, "Deep Residual Learning", section 4.2).

    conv1 3->16 3x3, bn1, relu
      -> layer1: n BasicBlocks 16->16 on 32x32
      -> layer2: n BasicBlocks 16->32, the first with stride 2 (16x16)
      -> layer3: n BasicBlocks 32->64, the first with stride 2 (8x8)
      -> global average pool -> linear 64->10

n = 3 for resnet20 (19 convs), n = 9 for resnet56 (55 convs). Shortcuts are option A:
parameter-free, the identity, or where the shape changes `ShortcutA` (take every second
row and column, zero-pad the channels), so every conv is a 3x3 slot.

    network   parameters        multiply-adds (convs + linear)   `evo slots` (2 a MAC)
    resnet20  269,722 (0.27 M)  40.6 M                           81.1 MFLOPs in slots
    resnet56  853,018 (0.85 M)  125.5 M                          251.0 MFLOPs in slots

(parameters include BatchNorm and the linear bias; the paper gives 0.27 M and 0.85 M).

A bottleneck is legal on every `layerX.Y.conv1` (it feeds `conv2` through BN and ReLU
only); `conv1` and every `conv2` feed a residual add.

Weights keep PyTorch's default initialisation, as in the other zoo networks, from the
seed `load_network` sets; `transform_network` re-initialises every layer that way anyway
(`evo.networks.rebuild`), so the kaiming-normal init of common implementations would
not reach the networks that are searched or trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ShortcutA(nn.Module):
    """Option A shortcut: `x[:, :, ::stride, ::stride]`, then `planes - in_planes` zero
    channels, half before and half after the input's (traceable with `torch.fx`)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.before = (planes - in_planes) // 2
        self.after = planes - in_planes - self.before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))


class BasicBlockA(nn.Module):
    """Two 3x3 convs with BN; the identity shortcut, or `ShortcutA` where the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = ShortcutA(in_planes, planes, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The 6n+2-layer CIFAR ResNet: a 16-channel stem, 3 stages of `n` blocks, a linear head."""

    def __init__(self, n: int, num_classes: int = 10) -> None:
        super().__init__()
        self.in_planes = 16
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, n, 1)
        self.layer2 = self._make_layer(32, n, 2)
        self.layer3 = self._make_layer(64, n, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(64, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlockA(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(self.pool(out).flatten(1))


def resnet20() -> nn.Module:
    """ResNet-20: 3 blocks a stage, 0.27 M parameters."""
    return CifarResNet(3)


def resnet56() -> nn.Module:
    """ResNet-56: 9 blocks a stage, 0.85 M parameters."""
    return CifarResNet(9)
