"""CIFAR DenseNet-161: growth rate 48, dense blocks of 6, 12, 36, 24 layers, 3x3 stem.

Pre-activation layers (BN, ReLU, 1x1 conv to 4 x growth, BN, ReLU, 3x3 conv to
growth, concatenated onto the input); transitions halve the channels (BN, ReLU,
1x1 conv) and average-pool by 2. Names: `conv1`, `dense1.0.conv1`, `trans1.conv`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DenseLayer(nn.Module):
    def __init__(self, in_planes: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    def __init__(self, num_blocks: tuple[int, int, int, int], growth: int,
                 reduction: float = 0.5, num_classes: int = 10) -> None:
        super().__init__()
        planes = 2 * growth
        self.conv1 = nn.Conv2d(3, planes, 3, padding=1, bias=False)
        for index, blocks in enumerate(num_blocks, start=1):
            layers = []
            for _ in range(blocks):
                layers.append(DenseLayer(planes, growth))
                planes += growth
            setattr(self, f"dense{index}", nn.Sequential(*layers))
            if index < len(num_blocks):
                out_planes = int(math.floor(planes * reduction))
                setattr(self, f"trans{index}", Transition(planes, out_planes))
                planes = out_planes
        self.bn = nn.BatchNorm2d(planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        out = self.trans1(self.dense1(out))
        out = self.trans2(self.dense2(out))
        out = self.trans3(self.dense3(out))
        out = self.dense4(out)
        out = F.relu(self.bn(out))
        return self.linear(self.pool(out).flatten(1))


def densenet161() -> nn.Module:
    return DenseNet((6, 12, 36, 24), growth=48)
