"""Networks: the zoo and user models list their slots; genomes transform them."""

from __future__ import annotations

import math
import textwrap

import pytest
import torch
from torch import nn

from evo.errors import UsageError
from evo.networks import ZOO, load_network, transform_network
from genomes.genes import Bottleneck, Depthwise, Group, SplitChannels, SplitRows, Tile
from genomes.genome import LayerGenome, NetworkGenome
from genomes.torch_decoder import TransformedConv

EXPECTED_SLOTS = {"tiny": 5, "resnet18": 20, "resnet34": 36, "resnet20": 19, "resnet56": 55,
                  "resnext29_2x64d": 31, "densenet161": 160}


def genome(**layers) -> NetworkGenome:
    return NetworkGenome({k.replace("__", "."): LayerGenome(tuple(v)) for k, v in layers.items()})


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_network_lists_every_conv_as_a_slot(name):
    network = load_network(name)
    convs = {k: m for k, m in network.module.named_modules() if isinstance(m, nn.Conv2d)}
    assert len(network.slots) == EXPECTED_SLOTS[name] == len(convs)
    assert network.output_shape == (1, 10)
    for slot in network.slots:
        conv = convs[slot.id]
        assert (slot.spec.in_channels, slot.spec.out_channels) == (conv.in_channels,
                                                                    conv.out_channels)
        assert (slot.spec.kernel, slot.spec.stride, slot.spec.groups) == (
            conv.kernel_size[0], conv.stride[0], conv.groups)
        assert slot.spec.batch == 1
        assert "tile" in slot.allowed
        # group(g) needs g x groups to divide both channel counts
        divisible = math.gcd(conv.in_channels, conv.out_channels) // conv.groups > 1
        assert ("group" in slot.allowed) == divisible, slot.id
    assert network.slots[0].spec.height == 32


def test_bottleneck_allowed_only_where_channels_reach_no_add_or_concat():
    tiny = load_network("tiny")
    allowed = {s.id for s in tiny.slots if "bottleneck" in s.allowed}
    assert allowed == {"conv1", "layer1.conv1"}
    assert tiny.slot("conv1").feeds == ("layer1.conv1", "layer1.shortcut.0")
    assert tiny.slot("conv1").shrinks == ("bn1",)
    resnet = load_network("resnet18")
    for slot in resnet.slots:
        assert ("bottleneck" in slot.allowed) == slot.id.endswith(".conv1"), slot.id
    dense = load_network("densenet161")
    for slot in dense.slots:
        assert ("bottleneck" in slot.allowed) == slot.id.endswith(".conv1"), slot.id
        assert slot.measure_at == (slot.id.replace("conv1", "bn2")
                                   if slot.id.endswith(".conv1") else slot.id)


def test_input_shape_sets_the_specs_and_batch():
    network = load_network("tiny", (4, 3, 64, 48))
    assert network.slot("conv1").spec.batch == 4
    assert (network.slot("conv2").spec.height, network.slot("conv2").spec.width) == (32, 24)


USER_MODEL = textwrap.dedent("""
    import torch
    from torch import nn

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=True)
            self.a = nn.Conv2d(8, 16, 3, padding=1)
            self.bn_a = nn.BatchNorm2d(16)
            self.b = nn.Conv2d(16, 16, 3, padding=1, groups=4)
            self.c = nn.Conv2d(16, 8, 1)
            self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
            self.head = nn.Linear(16, 5)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            y = torch.relu(self.bn_a(self.a(x)))
            y = self.b(y)
            z = torch.cat([self.c(y), self.dilated(x)], 1)
            return self.head(z.mean((2, 3)))

    def build():
        return Branchy()

    def not_a_module():
        return 42

    def broken():
        raise RuntimeError("no weights here")

    def no_conv():
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))

    def bad_forward():
        return nn.Conv2d(7, 8, 3)

    NOT_CALLABLE = 3
""")


@pytest.fixture()
def user_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(USER_MODEL)
    return path


def test_user_file_lists_its_slots(user_file):
    network = load_network(f"{user_file}:build", (2, 3, 16, 16))
    assert [s.id for s in network.slots] == ["stem", "a", "b", "c"]  # dilated is no slot
    assert network.output_shape == (2, 5)
    bottleneck = {s.id for s in network.slots if "bottleneck" in s.allowed}
    # stem feeds the dilated conv (no slot); c feeds a concatenation
    assert bottleneck == {"a", "b"}
    assert network.slot("a").feeds == ("b",) and network.slot("a").shrinks == ("bn_a",)
    assert network.slot("b").feeds == ("c",) and network.slot("b").shrinks == ()
    assert network.slot("a").measure_at == "bn_a" and network.slot("c").measure_at == "c"
    assert network.slot("b").spec.groups == 4
    assert network.identity.startswith("file:") and network.identity.endswith(":build")


def test_package_module_factory():
    network = load_network("evo.networks.tiny:tiny")
    assert [s.id for s in network.slots] == [s.id for s in load_network("tiny").slots]


@pytest.mark.parametrize("model, message", [
    ("nonsense", "unknown model 'nonsense'"),
    ("{dir}/missing.py:build", "no such file"),
    ("{file}:nothing_here", "has no function 'nothing_here'"),
    ("{file}:NOT_CALLABLE", "not callable"),
    ("{file}:not_a_module", "returned int, not a torch.nn.Module"),
    ("{file}:broken", "the factory raised RuntimeError: no weights here"),
    ("{file}:no_conv", "has no nn.Conv2d layer"),
    ("{file}:bad_forward", "forward pass on input shape 1,3,32,32 failed"),
    ("no_such_package.models:build", "model module no_such_package.models: not found"),
])
def test_bad_models_raise_one_line_usage_errors(user_file, model, message):
    model = model.format(dir=user_file.parent, file=user_file)
    with pytest.raises(UsageError) as info:
        load_network(model)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_input_shape():
    with pytest.raises(UsageError, match="4 positive integers"):
        load_network("tiny", (3, 32, 32))


def test_transform_decodes_slots_and_keeps_other_layers():
    network = load_network("tiny", (2, 3, 32, 32))
    g = genome(layer1__conv1=[Group(groups=2), Tile(axis="co", factor=4)],
               layer1__conv2=[SplitChannels(groups=(1, 4))],
               conv2=[Depthwise(), SplitRows(parts=2)])
    result = transform_network(network, g, seed=3)
    assert result.error is None
    assert list(result.plans) == [s.id for s in network.slots]
    module = result.module
    for slot_id, plan in result.plans.items():
        conv = module.get_submodule(slot_id)
        assert isinstance(conv, TransformedConv)
        assert conv.plan == plan
        assert [tuple(w.shape) for w in conv.weights()] == [
            p.weight_shape(plan.spec) for p in plan.pieces]
    assert len(module.get_submodule("conv2").convs) == 2
    assert module.get_submodule("layer1.conv2").convs[1].groups == 4
    assert isinstance(module.linear, nn.Linear) and module.linear is not network.module.linear
    assert module(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert isinstance(network.module.get_submodule("conv2"), nn.Conv2d)  # original untouched


def test_bottleneck_shrinks_following_batchnorm_and_convs():
    network = load_network("tiny")
    result = transform_network(network, genome(conv1=[Bottleneck(factor=4)],
                                               layer1__conv1=[Bottleneck(factor=2)]))
    assert result.error is None
    module = result.module
    assert module.bn1.num_features == 4
    assert result.plans["layer1.conv1"].spec.in_channels == 4
    assert result.plans["layer1.shortcut.0"].spec.in_channels == 4
    assert module.layer1.bn1.num_features == 16
    assert result.plans["layer1.conv2"].spec.in_channels == 16
    assert module.layer1.conv2.convs[0].in_channels == 16
    assert module.layer1.bn2.num_features == 32  # after the add: unchanged
    assert module(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_bottleneck_in_user_model_and_grouped_consumer(user_file):
    network = load_network(f"{user_file}:build", (2, 3, 16, 16))
    ok = transform_network(network, genome(a=[Bottleneck(factor=2)]))
    assert ok.error is None and ok.module.bn_a.num_features == 8
    assert ok.module(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    assert ok.module.stem.bias is not None  # the original conv had a bias
    bad = transform_network(network, genome(a=[Bottleneck(factor=8)]))
    assert bad.module is None and bad.error.startswith("slot b: after an upstream bottleneck")


@pytest.mark.parametrize("layers, error", [
    ({"foo": [Group(groups=2)]}, "unknown slot 'foo'"),
    ({"layer1.conv2": [Bottleneck(factor=2)]},
     "slot layer1.conv2: gene 'bottleneck' not allowed here"),
    ({"layer1.conv1": [Group(groups=3)]},
     "slot layer1.conv1: gene 0: group(3): piece 0 has 16 input channels, "
     "not divisible by 3 groups"),
])
def test_bad_genomes_are_errors_not_exceptions(layers, error):
    network = load_network("tiny")
    g = NetworkGenome({k: LayerGenome(tuple(v)) for k, v in layers.items()})
    for plans_only in (False, True):
        result = transform_network(network, g, plans_only=plans_only)
        assert result.error == error
        assert result.module is None and result.plans == {}


def test_plans_only_and_deterministic_weights():
    network = load_network("tiny")
    g = genome(conv1=[Bottleneck(factor=2)], conv2=[Group(groups=2)])
    fast = transform_network(network, g, plans_only=True)
    full = transform_network(network, g, seed=5)
    again = transform_network(network, g, seed=5)
    other = transform_network(network, g, seed=6)
    assert fast.module is None and fast.plans == full.plans
    state, same, different = (t.module.state_dict() for t in (full, again, other))
    assert all(torch.equal(state[k], same[k]) for k in state)
    assert not torch.equal(state["conv2.convs.0.weight"], different["conv2.convs.0.weight"])


def test_layers_keep_their_weights_when_another_slot_changes():
    network = load_network("tiny")
    base = transform_network(network, NetworkGenome(), seed=2).module.state_dict()
    changed = transform_network(network, genome(layer1__conv1=[Group(groups=2)]),
                                seed=2).module.state_dict()
    shared = transform_network(network, NetworkGenome(), seed=2,
                               share_weights=True).module.state_dict()
    differ = {k for k in base if base[k].shape != changed[k].shape
              or not torch.equal(base[k], changed[k])}
    assert differ == {"layer1.conv1.convs.0.weight"}
    assert all(torch.equal(base[k], shared[k]) for k in base)
