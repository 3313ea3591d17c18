"""CIFAR ResNeXt-29 (2x64d): three stages of three bottleneck blocks, cardinality 2.

Each block: 1x1 conv to the group width, 3x3 grouped conv (groups = cardinality),
1x1 conv to twice the group width, each with BN; the width doubles per stage
(128, 256, 512 group width). Names: `conv1`, `layer1.0.conv2`, `layer2.0.shortcut.0`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class ResNeXtBlock(nn.Module):
    expansion = 2

    def __init__(self, in_planes: int, cardinality: int, width: int, stride: int = 1) -> None:
        super().__init__()
        group_width = cardinality * width
        out_planes = self.expansion * group_width
        self.conv1 = nn.Conv2d(in_planes, group_width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(group_width)
        self.conv2 = nn.Conv2d(group_width, group_width, 3, stride=stride, padding=1,
                               groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(group_width)
        self.conv3 = nn.Conv2d(group_width, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNeXt(nn.Module):
    def __init__(self, num_blocks: tuple[int, int, int], cardinality: int, width: int,
                 num_classes: int = 10) -> None:
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages = []
        for index, (blocks, stride) in enumerate(zip(num_blocks, (1, 2, 2), strict=True)):
            layers = []
            for s in [stride] + [1] * (blocks - 1):
                layers.append(ResNeXtBlock(self.in_planes, cardinality, width, s))
                self.in_planes = ResNeXtBlock.expansion * cardinality * width
            stages.append(nn.Sequential(*layers))
            setattr(self, f"layer{index + 1}", stages[-1])
            width *= 2
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(self.in_planes, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(self.pool(out).flatten(1))


def resnext29_2x64d() -> nn.Module:
    return ResNeXt((3, 3, 3), cardinality=2, width=64)
