"""Zero-cost proxies: each checked against a value derived by hand or computed another way,
the ReLU recording of NASWOT, the caller's module left alone, failures as None, and the
short-training and size baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evo.capacity.counts import flops, params
from evo.capacity.naswot import naswot, naswot_kernel
from evo.capacity.proxies import ZERO_COST, all_proxies, grad_norm, jacob_cov, snip, synflow
from evo.capacity.short_training import short_training
from evo.networks import load_network, transform_network
from evo.networks.threads import torch_threads
from genomes.genes import Bottleneck, Depthwise, Group, SplitRows
from genomes.genome import LayerGenome, NetworkGenome

GENOME = NetworkGenome({
    "conv1": LayerGenome((Bottleneck(factor=2),)),
    "layer1.conv2": LayerGenome((Depthwise(),)),
    "conv2": LayerGenome((Group(groups=4), SplitRows(parts=2))),
})
# ReLU units per image in `tiny`: relu(bn1) 16x32x32, the BasicBlock's two F.relu
# 32x16x16 each, relu(bn2) 64x8x8.
TINY_UNITS = 16 * 32 * 32 + 2 * 32 * 16 * 16 + 64 * 8 * 8
TINY_MODULE_RELU_UNITS = 16 * 32 * 32 + 64 * 8 * 8  # what nn.ReLU hooks alone would see


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def tiny():
    return load_network("tiny")


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)


def tiny_module(tiny, transformed: bool) -> nn.Module:
    module = transform_network(tiny, GENOME if transformed else NetworkGenome(), seed=3).module
    assert module is not None
    return module


def weight_layers(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def test_synflow_is_twice_the_output_of_a_positive_two_layer_net():
    # conv (no padding) -> BN -> ReLU -> average pool -> linear, no biases. With |weights|,
    # BN off and an all-ones input every activation is positive and the net is linear:
    # R = sum_m A_m S_m, with S_m = sum|W_m| and A_m = sum_o |L_om|; both layers carry
    # sum |w dR/dw| = R (synaptic flow is conserved), so synflow = 2R.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 5, 3, bias=False), nn.BatchNorm2d(5), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4, bias=False))
    conv, linear = net[0].weight.detach().double(), net[5].weight.detach().double()
    s = conv.abs().sum(dim=(1, 2, 3))
    a = linear.abs().sum(dim=0)
    expected = 2 * float((a * s).sum())
    x = torch.randn(2, 3, 6, 6)
    assert synflow(net, x, torch.zeros(2, dtype=torch.long)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("transformed", [False, True])
def test_synflow_matches_an_independent_recomputation(tiny, batch, transformed):
    module = tiny_module(tiny, transformed)
    value = synflow(module, *batch)
    other = tiny_module(tiny, transformed)
    for name, m in list(other.named_modules()):
        if isinstance(m, nn.BatchNorm2d):
            other.set_submodule(name, nn.Identity())
    for p in other.parameters():
        p.data = p.data.abs().double()
    other.double().train()
    other(torch.ones(1, 3, 32, 32, dtype=torch.float64)).sum().backward()
    expected = sum(float((m.weight.detach() * m.weight.grad).abs().sum())
                   for m in weight_layers(other))
    assert value == pytest.approx(expected, rel=1e-9)
    assert value > 0


@pytest.mark.parametrize("transformed", [False, True])
def test_snip_and_grad_norm_match_a_manual_backward(tiny, batch, transformed):
    x, y = batch
    module = tiny_module(tiny, transformed)
    other = tiny_module(tiny, transformed).train()
    F.cross_entropy(other(x), y).backward()
    layers = weight_layers(other)
    assert len(layers) == (7 if transformed else 6)  # conv2 split in two row pieces
    expected_snip = sum(float((m.weight.detach() * m.weight.grad).abs().sum()) for m in layers)
    expected_norm = sum(float(m.weight.grad.norm()) for m in layers)
    assert snip(module, x, y) == pytest.approx(expected_snip, rel=1e-5)
    assert grad_norm(module, x, y) == pytest.approx(expected_norm, rel=1e-5)


def test_jacob_cov_matches_an_independent_computation(tiny, batch):
    x, y = batch
    module = tiny_module(tiny, True)
    other = tiny_module(tiny, True).train()
    inputs = x.clone().requires_grad_(True)
    out = other(inputs)
    out.backward(torch.ones_like(out))
    corr = np.corrcoef(inputs.grad.reshape(8, -1).numpy())
    v = np.linalg.eig(corr)[0].real  # the reference's eig
    expected = -np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5))
    assert jacob_cov(module, x, y) == pytest.approx(expected, rel=1e-6)
    assert expected <= -8  # at most -n: every eigenvalue 1


@pytest.mark.parametrize("transformed", [False, True])
def test_naswot_records_the_functional_relus_of_the_basic_block(tiny, batch, transformed):
    kernel, units = naswot_kernel(tiny_module(tiny, transformed), batch[0])
    expected = TINY_UNITS - (8 * 32 * 32 if transformed else 0)  # conv1 bottlenecked to 8
    assert units == expected and units > TINY_MODULE_RELU_UNITS
    np.testing.assert_array_equal(kernel, kernel.T)
    np.testing.assert_array_equal(np.diag(kernel), np.full(8, float(expected)))
    assert (kernel >= 0).all() and (kernel <= expected).all()


def test_naswot_covers_every_relu_of_resnet20():
    network = load_network("resnet20")
    _kernel, units = naswot_kernel(network.module, torch.randn(2, 3, 32, 32))
    # the stem, then per stage 3 blocks of 2 relus: 16x32x32, 32x16x16, 64x8x8 units
    assert units == 16 * 32 * 32 * 7 + 32 * 16 * 16 * 6 + 64 * 8 * 8 * 6


class SmallNet(nn.Module):
    """Three kinds of relu: functional, nn.ReLU module and the tensor method."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(5, 16), nn.Linear(16, 12), nn.Linear(12, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.act(self.b(F.relu(self.a(x))))
        return self.c(h).relu()


def test_naswot_kernel_and_logdet_match_numpy_on_a_small_net():
    torch.manual_seed(1)
    net = SmallNet()
    x = torch.randn(6, 5)
    z1 = x.numpy() @ net.a.weight.detach().numpy().T + net.a.bias.detach().numpy()
    z2 = np.maximum(z1, 0) @ net.b.weight.detach().numpy().T + net.b.bias.detach().numpy()
    z3 = np.maximum(z2, 0) @ net.c.weight.detach().numpy().T + net.c.bias.detach().numpy()
    expected = np.zeros((6, 6))
    for z in (z1, z2, z3):
        c = (z > 0).astype(np.float64)
        expected += c @ c.T + (1 - c) @ (1 - c).T
    kernel, units = naswot_kernel(net, x)
    assert units == 16 + 12 + 3
    np.testing.assert_allclose(kernel, expected, rtol=0, atol=1e-9)
    sign, logdet = np.linalg.slogdet(expected)
    assert sign > 0
    assert naswot(net, x, torch.zeros(6, dtype=torch.long)) == pytest.approx(logdet, rel=1e-12)


def test_proxies_leave_the_callers_module_alone(tiny, batch):
    x, y = batch
    module = tiny_module(tiny, True)
    module.layer1.bn1.eval()
    module.linear.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    modes = [m.training for m in module.modules()]
    flags = [p.requires_grad for p in module.parameters()]
    for proxy in ZERO_COST.values():
        proxy(module, x, y)
    short_training(module, x, y, x, y, steps=2, batch=4)
    flops(module, (1, 3, 32, 32))
    after = module.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    assert [m.training for m in module.modules()] == modes
    assert [p.requires_grad for p in module.parameters()] == flags


def test_all_proxies_gives_none_instead_of_raising(tiny, batch):
    x, y = batch
    results = all_proxies(lambda: tiny_module(tiny, False), x, y)
    assert set(results) == set(ZERO_COST)
    assert all(isinstance(v, float) for v in results.values()), results
    assert results["snip"] == pytest.approx(snip(tiny_module(tiny, False), x, y), rel=1e-9)
    # two identical images: the NASWOT kernel is singular (logdet -inf)
    twins = torch.cat([x[:1], x[:1], x[2:]])
    assert all_proxies(lambda: tiny_module(tiny, False), twins, y)["naswot"] is None
    # labels out of range: the cross-entropy raises; the proxies without labels still work
    bad = all_proxies(lambda: tiny_module(tiny, False), x, y + 10)
    assert bad["snip"] is None and bad["grad_norm"] is None
    assert bad["synflow"] == results["synflow"] and bad["naswot"] == results["naswot"]
    # one image: no correlation matrix to take eigenvalues of
    assert all_proxies(lambda: tiny_module(tiny, False), x[:1], y[:1])["jacob_cov"] is None

    def broken():
        raise RuntimeError("no module")

    assert all_proxies(broken, x, y, names=("synflow", "snip")) == {"synflow": None,
                                                                     "snip": None}
    with pytest.raises(ValueError, match="unknown proxy"):
        all_proxies(broken, x, y, names=("zen",))


def separable(n: int, seed: int):
    """Two classes told apart by the sign of the mean of channel 0."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 3, 32, 32, generator=g)
    x[:, 0] += (2.0 * y - 1.0).view(-1, 1, 1) * 0.5
    return x, y


def test_short_training_is_deterministic_and_learns_an_easy_task(tiny):
    x_train, y_train = separable(96, 0)
    x_eval, y_eval = separable(64, 1)
    module = tiny_module(tiny, False)
    first = short_training(module, x_train, y_train, x_eval, y_eval, steps=25, lr=0.05,
                           batch=32, seed=5)
    again = short_training(module, x_train, y_train, x_eval, y_eval, steps=25, lr=0.05,
                           batch=32, seed=5)
    other = short_training(module, x_train, y_train, x_eval, y_eval, steps=25, lr=0.05,
                           batch=32, seed=6)
    untrained = short_training(module, x_train, y_train, x_eval, y_eval, steps=0, seed=5)
    assert first == again
    assert other != first
    assert first[0] >= 0.9 and first[0] > untrained[0]
    assert first[1] < untrained[1]
    assert 0 < first[2] < math.log(2) + 0.5 and math.isnan(untrained[2])


def test_params_and_flops():
    conv = nn.Conv2d(4, 8, 3, padding=1, groups=2)
    assert params(conv) == 8 * 2 * 9 + 8
    assert flops(conv, (1, 4, 5, 5)) == 8 * 25 * 2 * 9
    assert flops(nn.Linear(6, 3), (2, 6)) == 2 * 3 * 6
    resnet20 = load_network("resnet20").module  # the figures in cifar_resnet's docstring
    assert params(resnet20) == 269_722
    assert flops(resnet20, (1, 3, 32, 32)) == pytest.approx(40.6e6, rel=2e-3)
