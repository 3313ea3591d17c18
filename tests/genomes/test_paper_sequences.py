"""The paper's three new convolutions (Seq1, Seq2, Seq3) are genomes here, checked
against independent plain-PyTorch references written in this file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evo.tvm_runtime import compile_plan, run_plan
from genomes.genes import SplitChannels, SplitRows, Tile, UnrollChannels, Vectorize
from genomes.genome import LayerGenome, decode_layer
from genomes.spec import LayerSpec
from genomes.torch_decoder import to_torch


def _decode(spec, *genes):
    result = decode_layer(spec, LayerGenome(tuple(genes)))
    assert result.ok, result.error
    module = to_torch(result.plan)
    torch.manual_seed(0)
    with torch.no_grad():
        for w in module.weights():
            w.normal_(0, 0.1)
    return result.plan, module


def _check_all_three(plan, module, x, reference, target):
    with torch.no_grad():
        got_torch = module(x)
    assert got_torch.shape == reference.shape
    torch.testing.assert_close(got_torch, reference, rtol=1e-4, atol=1e-4)
    lib = compile_plan(plan, target)
    got_tvm = run_plan(lib, plan, x.numpy(), [w.detach().numpy() for w in module.weights()])
    np.testing.assert_allclose(got_tvm, reference.detach().numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("groups", [(1, 2), (2, 4, 1, 8), (4, 4)])
def test_seq1_splits_output_channels_with_own_group_counts(target, groups):
    spec = LayerSpec(32, 64, 8, 8, 3, 1)
    plan, module = _decode(spec, SplitChannels(groups), Tile("co", 8), Vectorize("co"))
    x = torch.randn(1, 32, 8, 8)
    size = 64 // len(groups)
    ws = module.weights()
    reference = torch.cat([F.conv2d(x, ws[i], padding=1, groups=g) for i, g in enumerate(groups)],
                          dim=1)
    assert [p.out_channels for p in plan.pieces] == [size] * len(groups)
    assert all(p.in_channels == 32 for p in plan.pieces)
    _check_all_three(plan, module, x, reference, target)


@pytest.mark.parametrize("u,groups,stride", [(16, 4, 1), (8, 2, 2), (32, 1, 1)])
def test_seq2_unrolls_the_first_u_channels(target, u, groups, stride):
    spec = LayerSpec(48, 64, 8, 8, 3, stride)
    plan, module = _decode(spec, UnrollChannels(u, groups), Tile("ow", 4), Vectorize("ow"))
    x = torch.randn(1, 48, 8, 8)
    head, tail = module.weights()
    assert head.shape == (u, 48, 3, 3)
    assert tail.shape == (64 - u, (48 - u) // groups, 3, 3)
    reference = torch.cat([F.conv2d(x, head, stride=stride, padding=1),
                           F.conv2d(x[:, u:], tail, stride=stride, padding=1, groups=groups)],
                          dim=1)
    _check_all_three(plan, module, x, reference, target)


@pytest.mark.parametrize("parts,kernel,stride", [(2, 3, 1), (4, 3, 1), (2, 3, 2), (4, 1, 2)])
def test_seq3_splits_rows_into_independently_padded_strips(target, parts, kernel, stride):
    spec = LayerSpec(16, 24, 16, 12, kernel, stride)
    plan, module = _decode(spec, SplitRows(parts))
    x = torch.randn(1, 16, 16, 12)
    strip = 16 // parts
    reference = torch.cat(
        [F.conv2d(x[:, :, i * strip:(i + 1) * strip], w, stride=stride, padding=kernel // 2)
         for i, w in enumerate(module.weights())],
        dim=2,
    )
    assert reference.shape == (1, 24, spec.out_height, spec.out_width)
    _check_all_three(plan, module, x, reference, target)


def test_seq3_differs_from_the_unsplit_conv_at_strip_borders():
    """Zero padding at strip borders really changes the function (rows next to a border)."""
    spec = LayerSpec(4, 4, 8, 8, 3, 1)
    plan, module = _decode(spec, SplitRows(2))
    x = torch.randn(1, 4, 8, 8)
    full = torch.cat([F.conv2d(x, w, padding=1)[:, :, i * 4:(i + 1) * 4]
                      for i, w in enumerate(module.weights())], dim=2)
    with torch.no_grad():
        split = module(x)
    assert not torch.allclose(split[:, :, 3], full[:, :, 3])
    torch.testing.assert_close(split[:, :, 1], full[:, :, 1])
