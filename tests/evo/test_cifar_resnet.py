"""The CIFAR ResNets resnet20/resnet56 (option-A shortcuts): size, slots, genomes, TVM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import fx, nn

from evo.networks import ZOO, load_network, transform_network
from evo.networks.cifar_resnet import ShortcutA
from evo.tvm_runtime import compile_plan, run_plan
from genomes.genes import Bottleneck, Depthwise, Group, SplitRows, Tile, Vectorize
from genomes.genome import LayerGenome, NetworkGenome

BLOCKS = {"resnet20": 3, "resnet56": 9}


def genome(**layers) -> NetworkGenome:
    return NetworkGenome({k.replace("__", "."): LayerGenome(tuple(v)) for k, v in layers.items()})


@pytest.mark.parametrize("name, params, macs", [("resnet20", 269_722, 40_551_040),
                                                ("resnet56", 853_018, 125_485_696)])
def test_size_matches_the_paper(name, params, macs):
    network = load_network(name)
    assert sum(p.numel() for p in network.module.parameters()) == params
    assert round(params / 1e6, 2) == {"resnet20": 0.27, "resnet56": 0.85}[name]
    # every conv is a slot; the linear layer adds 64x10 multiply-adds
    assert sum(s.spec.flops for s in network.slots) // 2 + 64 * 10 == macs
    x = torch.randn(2, 3, 32, 32)
    assert network.module.eval()(x).shape == (2, 10) and network.output_shape == (1, 10)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_slots_and_where_bottleneck_is_allowed(name):
    n = BLOCKS[name]
    network = load_network(name)
    blocks = [f"layer{stage}.{b}" for stage in (1, 2, 3) for b in range(n)]
    assert [s.id for s in network.slots] == ["conv1"] + [f"{blk}.conv{i}" for blk in blocks
                                                         for i in (1, 2)]
    assert len(network.slots) == 6 * n + 1
    for slot in network.slots:
        assert slot.spec.kernel == 3 and slot.spec.groups == 1
        block = slot.id.rsplit(".", 1)[0]
        if slot.id.endswith(".conv1") and slot.id != "conv1":  # feeds conv2 via BN, ReLU
            assert "bottleneck" in slot.allowed, slot.id
            assert slot.feeds == (f"{block}.conv2",) and slot.shrinks == (f"{block}.bn1",)
            assert slot.measure_at == f"{block}.bn1"
        else:  # the stem and every conv2 reach a residual add
            assert "bottleneck" not in slot.allowed, slot.id
            assert slot.feeds == () and slot.shrinks == ()
    strided = {s.id for s in network.slots if s.spec.stride == 2}
    assert strided == {"layer2.0.conv1", "layer3.0.conv1"}
    assert network.slot("layer3.0.conv1").spec.short() == "32->64 3x3/s2 on 16x16"


def test_option_a_shortcut_subsamples_and_zero_pads():
    shortcut = ShortcutA(16, 32, 2)
    x = torch.randn(2, 16, 32, 32)
    out = shortcut(x)
    assert out.shape == (2, 32, 16, 16)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert not out[:, :8].any() and not out[:, 24:].any()
    module = ZOO["resnet20"]()
    assert not [m for m in module.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (3, 3)]
    graph = fx.symbolic_trace(module).graph  # the shortcut is traced, not a leaf
    assert sum(n.target is torch.nn.functional.pad for n in graph.nodes) == 2


@pytest.mark.parametrize("name", list(BLOCKS))
def test_neural_genome_applies_and_runs(name):
    network = load_network(name, (2, 3, 32, 32))
    g = genome(conv1=[SplitRows(parts=2)], layer1__0__conv2=[Depthwise()],
               layer2__0__conv1=[Bottleneck(factor=2)], layer2__0__conv2=[Group(groups=2)],
               layer3__1__conv1=[Group(groups=2), Bottleneck(factor=4)])
    result = transform_network(network, g, seed=1)
    assert result.error is None
    module = result.module
    assert module.layer2[0].bn1.num_features == 16
    assert result.plans["layer2.0.conv2"].spec.in_channels == 16
    assert module.layer3[1].bn1.num_features == 16
    assert result.plans["layer3.1.conv2"].spec.in_channels == 16
    assert module.layer2[0].bn2.num_features == 32  # before the add: unchanged
    out = module(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    bad = transform_network(network, genome(layer2__0__conv2=[Bottleneck(factor=2)]))
    assert bad.error == "slot layer2.0.conv2: gene 'bottleneck' not allowed here"


def test_tvm_matches_torch_on_a_transformed_resnet20_slot(target):
    """layer2.0.conv2 reads the halved channels of the bottlenecked conv1 and is grouped:
    TVM run on the input PyTorch saw inside the network gives the slot's output."""
    network = load_network("resnet20")
    g = genome(layer2__0__conv1=[Bottleneck(factor=2)],
               layer2__0__conv2=[Group(groups=2), Tile(axis="co", factor=8), Vectorize("ow")])
    result = transform_network(network, g, seed=4)
    assert result.error is None
    module = result.module.eval()
    conv = module.get_submodule("layer2.0.conv2")
    seen = {}
    conv.register_forward_hook(lambda _m, args, out: seen.update(x=args[0], y=out))
    with torch.no_grad():
        module(torch.randn(1, 3, 32, 32))
    plan = result.plans["layer2.0.conv2"]
    assert tuple(seen["x"].shape) == (1, 16, 16, 16) and plan.spec.groups == 1
    lib = compile_plan(plan, target)
    got = run_plan(lib, plan, seen["x"].numpy(), [w.detach().numpy() for w in conv.weights()])
    np.testing.assert_allclose(got, seen["y"].numpy(), rtol=1e-4, atol=1e-4)
