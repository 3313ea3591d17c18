"""`tiny`: the small CIFAR-sized demo and test network (5 convs, 16 to 64 channels).

    conv1 3->16, bn1, relu
      -> layer1 (BasicBlock 16->32, stride 2):
           conv1 16->32 3x3/2, bn1, relu, conv2 32->32 3x3, bn2
           + shortcut.0 16->32 1x1/2, shortcut.1 (BN)  -> add, relu
      -> conv2 32->64 3x3/2, bn2, relu -> global average pool -> linear 64->10

A bottleneck is legal on `conv1` (it feeds two convs through BN and ReLU only) and on
`layer1.conv1`; the other three convs feed a residual add or the classifier.
"""

from __future__ import annotations

from torch import nn

from evo.networks.resnet import BasicBlock


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = BasicBlock(16, 32, stride=2)
        self.conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.relu(self.bn2(self.conv2(out)))
        return self.linear(self.pool(out).flatten(1))


def tiny() -> nn.Module:
    return TinyNet()
