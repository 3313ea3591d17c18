"""Small networks for the bench tests: every operator kind the zoo uses, in one module."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SHAPE = (1, 3, 16, 16)


class SmallNet(nn.Module):
    """conv-bn-relu, a residual add, a concat, a biased 1x1 conv, a dilated conv (which
    our programs cannot describe), average pooling and a linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.body = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.mix = nn.Conv2d(32, 24, 1, stride=2, bias=True)
        self.dilated = nn.Conv2d(24, 24, 3, padding=2, dilation=2, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(24, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(self.stem(x)))
        b = F.relu(self.bn2(self.body(a)) + a)
        c = F.relu(self.mix(torch.cat([a, b], 1)))
        c = F.avg_pool2d(self.dilated(c), 2)
        return self.linear(self.pool(c).flatten(1))


def small_net(seed: int = 0) -> nn.Module:
    """A SmallNet with random weights and non-trivial BatchNorm statistics, eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallNet()
        randomize_batch_norms(net)
    return net.eval()


def randomize_batch_norms(module: nn.Module) -> None:
    """Running statistics and affine parameters away from their identity defaults, so a
    converter that ignores them (or uses batch statistics) gives a different output."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)


class ConvNet(nn.Module):
    """The smallest classifier: conv-relu, global average pool, linear (four TVM tasks)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.pool(F.relu(self.conv(x))).flatten(1))


def conv_net() -> nn.Module:
    return ConvNet()


def one_conv() -> nn.Module:
    """One conv-relu: a single TVM task."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU())
