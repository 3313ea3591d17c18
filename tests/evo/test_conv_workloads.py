"""Kernels matched to conv workloads: TVM's own conv2d PrimFuncs (as the MetaSchedule
row compiles them) and ONNX Runtime's profiled conv nodes against the slots of the
same network."""

from __future__ import annotations

import pytest

from evo.bench.conv_workloads import ConvShape, slot_shape, tvm_conv_workloads, tvm_kernel_conv
from evo.bench.ort_profile import match_slots, ort_conv_times
from evo.networks import load_network


@pytest.mark.parametrize("model, expected", [("resnet20", 6), ("resnext29_2x64d", 18)])
def test_every_slot_workload_is_a_tvm_conv(target, model: str, expected: int) -> None:
    network = load_network(model)
    workloads = tvm_conv_workloads(network.module, network.input_shape, target)
    assert len(workloads) == expected  # one PrimFunc per distinct workload
    assert len(set(workloads.values())) == expected
    assert {slot_shape(slot.spec) for slot in network.slots} <= set(workloads.values())
    if model == "resnext29_2x64d":  # grouped, strided and 1x1 convs are told apart
        assert ConvShape(128, 128, 32, 32, 3, 1, 2) in workloads.values()
        assert ConvShape(512, 512, 16, 16, 3, 2, 2) in workloads.values()
        assert ConvShape(1024, 512, 8, 8, 1, 1, 1) in workloads.values()


def test_kernel_symbols_name_the_conv_they_fuse() -> None:
    assert tvm_kernel_conv("fused_conv2d1_multiply_add_add1_relu") == "conv2d1"
    assert tvm_kernel_conv("fused_conv2d_multiply_add_relu") == "conv2d"
    assert tvm_kernel_conv("conv2d12") == "conv2d12"
    assert tvm_kernel_conv("conv_layer1_0_conv2") is None  # ours: named by slot
    assert tvm_kernel_conv("fused_multiply2_add4_relu2") is None


def test_onnxruntime_conv_nodes_pair_with_the_slots_in_order() -> None:
    pytest.importorskip("onnxruntime")
    network = load_network("resnet20")
    profile = ort_conv_times(network.module, network.input_shape, threads=1, runs=2)
    by_slot = match_slots(network, profile)
    assert by_slot is not None and list(by_slot) == [slot.id for slot in network.slots]
    assert all(ms > 0 for ms in by_slot.values()) and profile.other_ms > 0
    assert profile.convs[0].computes(16, 32, 32)  # the stem, padded to a block or not
    assert not profile.convs[0].computes(16, 16, 16)
    tiny = load_network("tiny")
    assert match_slots(tiny, profile) is None  # another network's convs do not pair
