"""Inherited weights: a transformed conv keeps the original conv's initial weight on every
connection it keeps (`transform_network(..., inherit=True)`)."""

from __future__ import annotations

import pytest
import torch

from evo.networks import load_network, transform_network
from genomes.genes import Bottleneck, Depthwise, Group, SplitChannels, SplitRows
from genomes.genome import LayerGenome, NetworkGenome


def genome(layers: dict) -> NetworkGenome:
    return NetworkGenome({k: LayerGenome(tuple(v)) for k, v in layers.items()})


def weights(module, slot: str) -> list[torch.Tensor]:
    return [w.detach() for w in module.get_submodule(slot).weights()]


@pytest.fixture(scope="module")
def tiny():
    return load_network("tiny")


def test_grouping_depthwise_and_bottleneck_keep_the_original_weights(tiny):
    original = transform_network(tiny, NetworkGenome(), seed=3).module
    changed = transform_network(tiny, genome({
        "conv1": [Bottleneck(factor=2)], "layer1.conv1": [Group(groups=2)],
        "layer1.conv2": [Depthwise()]}), seed=3, inherit=True).module
    (w1,), (b1,) = weights(original, "conv1"), weights(changed, "conv1")
    assert torch.equal(b1, w1[:8])  # a bottleneck keeps the first output channels
    (w,), (g,) = weights(original, "layer1.conv1"), weights(changed, "layer1.conv1")
    assert g.shape == (32, 4, 3, 3)  # 8 input channels after the bottleneck, 2 groups
    assert torch.equal(g[:16], w[:16, 0:4]) and torch.equal(g[16:], w[16:, 4:8])
    (w,), (d,) = weights(original, "layer1.conv2"), weights(changed, "layer1.conv2")
    assert torch.equal(d[:, 0], w[torch.arange(32), torch.arange(32)])
    (w,), (s,) = weights(original, "layer1.shortcut.0"), weights(changed, "layer1.shortcut.0")
    assert torch.equal(s, w[:, :8])  # reads the bottleneck's 8 channels: the first 8


def test_without_inherit_transformed_convs_are_fresh(tiny):
    original = transform_network(tiny, NetworkGenome(), seed=3).module
    fresh = transform_network(tiny, genome({"layer1.conv1": [Group(groups=2)]}), seed=3).module
    (w,), (g,) = weights(original, "layer1.conv1"), weights(fresh, "layer1.conv1")
    assert not torch.equal(g[:16], w[:16, 0:8])


def test_row_strips_keep_every_weight(tiny):
    original = transform_network(tiny, NetworkGenome(), seed=1).module
    split = transform_network(tiny, genome({"layer1.conv2": [SplitRows(parts=2)]}), seed=1,
                              inherit=True).module
    (w,) = weights(original, "layer1.conv2")
    pieces = weights(split, "layer1.conv2")
    assert len(pieces) == 2 and all(torch.equal(p, w) for p in pieces)


def test_connections_the_original_lacked_keep_their_own_initialisation():
    network = load_network("resnext29_2x64d")
    slot = "layer1.0.conv2"  # 128 -> 128, 3x3, 2 groups
    assert network.slot(slot).spec.groups == 2
    original = transform_network(network, NetworkGenome(), seed=0).module
    split = transform_network(network, genome({slot: [SplitChannels(groups=(1, 2))]}), seed=0,
                              inherit=True).module
    fresh = transform_network(network, genome({slot: [SplitChannels(groups=(1, 2))]}), seed=0
                              ).module
    (w,) = weights(original, slot)  # (128, 64, 3, 3)
    (f0, f1) = weights(fresh, slot)
    # Seq1 groups are relative: part 0 (outputs 0-63) has 2 groups, part 1 (64-127) 4
    part0, part1 = weights(split, slot)  # (64, 64, 3, 3) and (64, 32, 3, 3)
    assert torch.equal(part0[:32], w[:32])  # outputs 0-31 read inputs 0-63 in both
    assert torch.equal(part0[32:], f0[32:])  # 32-63 read 64-127 here, 0-63 in the original
    assert torch.equal(part1[:32], f1[:32])  # 64-95 read 0-63 here, 64-127 in the original
    assert torch.equal(part1[32:48], w[96:112, :32])  # 96-111 read 64-95 in both
    assert torch.equal(part1[48:], w[112:, 32:])  # 112-127 read 96-127 in both
