"""The built-in networks, all CIFAR-sized (3x32x32 input, 10 classes)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from evo.networks.cifar_resnet import resnet20, resnet56
from evo.networks.densenet import densenet161
from evo.networks.resnet import resnet18, resnet34
from evo.networks.resnext import resnext29_2x64d
from evo.networks.tiny import tiny

ZOO: dict[str, Callable[[], nn.Module]] = {
    "tiny": tiny,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet20": resnet20,
    "resnet56": resnet56,
    "resnext29_2x64d": resnext29_2x64d,
    "densenet161": densenet161,
}

DEFAULT_INPUT_SHAPE = (1, 3, 32, 32)
