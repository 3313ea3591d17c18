"""Kernels matched to conv workloads: TVM's own conv2d PrimFuncs (as the MetaSchedule
row compiles them) and ONNX Runtime's profiled conv nodes against the slots of the
same network."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

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
    assert profile.convs[0].shape == ConvShape(3, 16, 32, 32, 3, 1, 1)  # the stem
    tiny = load_network("tiny")
    assert match_slots(tiny, profile) is None  # another network's convs do not pair


def test_onnxruntime_nodes_pair_by_workload_not_by_order() -> None:
    """All three convs of a resnet18 downsampling block have the same output shape (and
    ORT 1.32 runs the 1x1 shortcut before the second 3x3 conv); an 8-channel conv is
    padded to a block of 16 in NCHWc."""
    pytest.importorskip("onnxruntime")
    network = load_network("resnet18")
    profile = ort_conv_times(network.module, network.input_shape, threads=1, runs=1)
    assert match_slots(network, profile) is not None
    # whatever order ORT runs them in: each slot gets the time of a node of its workload
    numbered = [replace(c, ms=float(i)) for i, c in enumerate(reversed(profile.convs))]
    by_slot = match_slots(network, replace(profile, convs=tuple(numbered)))
    for slot in network.slots:
        assert numbered[int(by_slot[slot.id])].shape == slot_shape(slot.spec)
    small = load_network(f"{Path(__file__).with_name('bench_nets.py')}:conv_net", (1, 3, 8, 8))
    profile = ort_conv_times(small.module, small.input_shape, threads=1, runs=1)
    assert profile.convs[0].shape.out_channels in (8, 16)
    assert match_slots(small, profile) is not None


def test_per_conv_template_against_onnxruntime(capsys) -> None:
    """benchmarks.per_conv --template: every workload timed in our compilation and in
    ORT, no MetaSchedule column; a missing or doubled source is one line."""
    import json

    from benchmarks import per_conv

    pytest.importorskip("onnxruntime")
    assert per_conv.main(["--template", "tiny", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    network = load_network("tiny")
    assert len(result["convs"]) == len({slot_shape(s.spec) for s in network.slots})
    for row in result["convs"]:
        assert row["program_only_ms"] > 0 and row["onnxruntime_ms"] > 0
        assert row["metaschedule_ms"] is None
    assert result["latency_ms"]["onnxruntime"] > 0 and result["metaschedule"] is None
    assert per_conv.main(["--template", "tiny", "--schedule", "channels", "--threads", "1",
                          "--json"]) == 0
    channels = json.loads(capsys.readouterr().out)
    assert channels["program_only"] == "channels schedule"
    assert all(row["program_only_ms"] > 0 for row in channels["convs"])
    assert per_conv.main([]) == 2
    assert per_conv.main(["somewhere", "--template", "tiny"]) == 2
    assert capsys.readouterr().err.count("give a BENCH folder or --template MODEL") == 2


def test_seed_schedules_combines_the_fastest_seed_per_conv(capsys) -> None:
    """benchmarks.seed_schedules: every seed that applies timed on every conv shape (the
    Winograd seeds only on 3x3 convs at stride 1), the fastest taken per conv, and the
    combined network, the template, ONNX Runtime and (`--without rows`) the combined
    network without the `rows` seed raced; bad input is one line."""
    import json

    from benchmarks import seed_schedules
    from evo.search.variation import SEED_SCHEDULES

    pytest.importorskip("onnxruntime")
    assert seed_schedules.main(["tiny", "--rounds", "2", "--json", "--without", "rows"]) == 0
    result = json.loads(capsys.readouterr().out)
    network = load_network("tiny")
    assert len(result["convs"]) == len({s.spec for s in network.slots})
    for row in result["convs"]:
        winograd_fits = row["spec"]["kernel"] == 3 and row["spec"]["stride"] == 1
        expected = {n for n in SEED_SCHEDULES if winograd_fits or "winograd" not in n}
        assert set(row["ms"]) == expected and all(ms > 0 for ms in row["ms"].values())
        assert row["fastest"] == min(row["ms"], key=row["ms"].get)
    names = {c["name"] for c in result["race"]["contenders"]}
    assert names == {"template", "seeds_fastest", "onnxruntime", "seeds_fastest_without"}
    assert not result["errors"]
    assert set(result["ratios"]) == {"template/seeds_fastest", "onnxruntime/seeds_fastest",
                                     "seeds_fastest_without/seeds_fastest"}
    assert seed_schedules.main(["nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert seed_schedules.main(["tiny", "--rounds", "0"]) == 2
    assert "--rounds must be at least 1" in capsys.readouterr().err


def test_seed_schedules_fastest_network_without_a_seed() -> None:
    """Each conv takes its fastest seed but the one left out; a conv with no other seed
    leaves no network (the script reports it as an error row)."""
    from benchmarks.seed_schedules import fastest_network
    from evo.search.variation import SEED_SCHEDULES

    network = load_network("tiny")
    times = {s.spec: {"rows": 1.0, "template": 2.0, "channels": 3.0} for s in network.slots}
    picked = fastest_network(network, times, "rows")
    assert all(picked.layer(s.id) == SEED_SCHEDULES["template"] for s in network.slots)
    assert fastest_network(network, times).layer(network.slots[0].id) == SEED_SCHEDULES["rows"]
    only_rows = {spec: {"rows": 1.0} for spec in times}
    assert fastest_network(network, only_rows, "rows") is None
