"""Whole networks as one compiled TVM module with our conv programs, against PyTorch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evo.bench.compile import check_against_torch, compile_network
from evo.bench.conv_throughput import conv_throughput, total_gflops
from evo.bench.end_to_end import genome_end_to_end, torch_end_to_end, tvm_end_to_end
from evo.bench.op_profile import kind_of, profile_executable
from evo.bench.relax_import import to_relax
from evo.errors import UsageError
from evo.networks import load_network, transform_network
from evo.search.variation import TEMPLATE_SCHEDULE
from genomes.genes import Bottleneck, Group, Pack, SplitChannels, SplitRows, Tile, Vectorize
from genomes.genome import LayerGenome, NetworkGenome
from tests.evo.bench_nets import INPUT_SHAPE, randomize_batch_norms, small_net


def test_small_network_with_template_schedule_matches_torch(target):
    net = small_net()
    network = to_relax(net, INPUT_SHAPE, schedule=TEMPLATE_SCHEDULE)
    assert sorted(network.plans) == ["body", "mix", "stem"]
    assert network.fallback == ("dilated",)
    # conv-bn-relu and conv-bn-add-relu in one kernel each; mix has no BatchNorm
    assert network.fused == {"stem": "bn+relu", "body": "bn+add+relu"}
    assert all(p.schedules[0].parallel for p in network.plans.values())
    funcs = {gv.name_hint for gv in network.mod.get_global_vars()}
    assert {"conv_stem", "conv_body", "conv_mix"} <= funcs
    agreement = check_against_torch(net, compile_network(network, target), INPUT_SHAPE)
    assert agreement.matches, agreement


@pytest.mark.parametrize("genome", ["template", "transformed"])
def test_fused_epilogues_compute_what_separate_kernels_compute(target, genome):
    """tiny: a block whose add takes two conv-bn chains (the first claims the add and
    the ReLU, the shortcut's ends at its BatchNorm), a conv-bn-relu stem, a conv-bn
    without ReLU; fused and unfused agree with PyTorch and with each other, and fusing
    leaves fewer kernels."""
    import numpy as np

    network = load_network("tiny")
    layers = {"conv1": TEMPLATE_SCHEDULE, "layer1.conv1": TEMPLATE_SCHEDULE,
              "layer1.conv2": TEMPLATE_SCHEDULE, "conv2": TEMPLATE_SCHEDULE,
              "layer1.shortcut.0": TEMPLATE_SCHEDULE}
    if genome == "transformed":  # several pieces, packed weights, no register tile
        layers["layer1.conv2"] = LayerGenome((SplitChannels((1, 2)), Pack(4)))
        layers["conv1"] = LayerGenome((Tile("co", 4), Vectorize("ow")))
    transform = transform_network(network, NetworkGenome(layers))
    module = transform.module
    randomize_batch_norms(module)
    module.eval()
    fused = to_relax(module, network.input_shape, plans=transform.plans)
    separate = to_relax(module, network.input_shape, plans=transform.plans,
                        fuse_epilogues=False)
    assert fused.fused == {"conv1": "bn+relu", "layer1.conv1": "bn+relu",
                           "layer1.conv2": "bn+add+relu", "layer1.shortcut.0": "bn",
                           "conv2": "bn+relu"}
    assert separate.fused == {}
    outputs, kernels = [], []
    for relax_network in (fused, separate):
        executable = compile_network(relax_network, target)
        agreement = check_against_torch(module, executable, network.input_shape)
        assert agreement.matches, agreement
        breakdown = profile_executable(executable, network.input_shape, threads=1, runs=1)
        kernels.append(sum(k.calls for k in breakdown.kernels))
        x = np.random.default_rng(0).standard_normal(network.input_shape).astype("float32")
        import tvm

        vm = tvm.relax.VirtualMachine(executable, tvm.cpu())
        outputs.append(vm["main"](tvm.runtime.tensor(x)).numpy())
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    assert kernels[0] < kernels[1]


def test_check_detects_a_network_that_computes_something_else(target):
    net = small_net()
    executable = compile_network(to_relax(net, INPUT_SHAPE), target)
    with torch.no_grad():
        net.body.weight.mul_(1.5)
    agreement = check_against_torch(net, executable, INPUT_SHAPE)
    assert not agreement.matches
    assert agreement.max_abs_diff > 1e-3


def test_transformed_network_runs_its_plans_and_matches_torch(target):
    network = load_network("tiny")
    genome = NetworkGenome({
        "conv1": LayerGenome((Bottleneck(2), Tile("co", 4), Vectorize("ow"))),
        "layer1.conv1": LayerGenome((SplitChannels((1, 2)), Pack(4))),
        "layer1.conv2": LayerGenome((Group(2), SplitRows(2), *TEMPLATE_SCHEDULE.genes)),
        "conv2": TEMPLATE_SCHEDULE,
    })
    transform = transform_network(network, genome)
    assert transform.ok, transform.error
    module = transform.module
    randomize_batch_norms(module)
    relax_network = to_relax(module, network.input_shape, plans=transform.plans)
    assert relax_network.plans == transform.plans
    assert len(relax_network.plans["layer1.conv1"].pieces) == 2
    assert module.training, "to_relax restores the module's mode"
    agreement = check_against_torch(module, compile_network(relax_network, target),
                                    network.input_shape)
    assert agreement.matches, agreement


def test_plans_must_match_the_module():
    network = load_network("tiny")
    transform = transform_network(network, NetworkGenome({"conv2": LayerGenome((Group(2),))}))
    plans = dict(transform.plans)
    plans["conv2"] = transform_network(network, NetworkGenome()).plans["conv2"]
    with pytest.raises(UsageError, match="conv2"):
        to_relax(transform.module, network.input_shape, plans=plans)
    with pytest.raises(UsageError, match="not a conv"):
        to_relax(small_net(), INPUT_SHAPE, plans={"nowhere": plans["conv2"]})


class _Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return self.conv(x)
        return self.conv(-x)


def test_bad_networks_are_usage_errors():
    with pytest.raises(UsageError, match="traced"):
        to_relax(_Untraceable(), INPUT_SHAPE)
    with pytest.raises(UsageError, match="input shape"):
        to_relax(small_net(), (1, 5, 16, 16))


def test_rows_report_latency_and_agreement(target):
    net = small_net()
    row = tvm_end_to_end(net, INPUT_SHAPE, target, schedule=TEMPLATE_SCHEDULE, threads=1)
    assert row.ok, row.error
    assert row.agreement.matches and row.convs == 3 and row.fallback == ("dilated",)
    assert row.fused == 2 and row.to_json()["fused"] == 2  # stem and body; mix has no bn
    assert row.latency.median_ms > 0 and row.latency.repeats >= 5
    assert row.latency.threads == 1
    assert row.to_json()["ms"] == row.latency.median_ms
    assert row.breakdown.threads == 1 and row.to_json()["breakdown"]["conv_ms"] > 0
    eager = torch_end_to_end(net, INPUT_SHAPE, threads=1)
    assert eager.ok and eager.latency.threads == 1 and eager.latency.median_ms > 0


def test_genome_rows_and_inapplicable_genomes(target):
    network = load_network("tiny")
    genome = NetworkGenome({"layer1.conv1": LayerGenome((Group(2), *TEMPLATE_SCHEDULE.genes))})
    row = genome_end_to_end(network, genome, target, threads=1)
    assert row.ok, row.error
    assert row.agreement.matches and row.convs == len(network.slots)
    bad = genome_end_to_end(network, NetworkGenome({"conv1": LayerGenome((Group(3),))}), target)
    assert not bad.ok and bad.latency is None and bad.error.startswith("genome:")


def test_conv_throughput_compares_each_program_with_pytorch(target):
    network = load_network("tiny")
    genome = NetworkGenome({s.id: TEMPLATE_SCHEDULE for s in network.slots})
    plans = transform_network(network, genome, plans_only=True).plans
    rows = conv_throughput(plans, target, threads=1)
    assert [r.slot for r in rows] == list(plans)
    for row in rows:
        assert row.error is None and row.tvm_ms > 0 and row.torch_ms > 0
        assert row.flops == plans[row.slot].flops
        assert row.to_json()["tvm_gflops"] == pytest.approx(row.flops / row.tvm_ms / 1e6)
    tvm_total, torch_total = total_gflops(rows)
    assert tvm_total > 0 and torch_total > 0


def test_profile_times_every_kernel_call_of_the_network(target):
    net = small_net()
    network = to_relax(net, INPUT_SHAPE, schedule=TEMPLATE_SCHEDULE)
    breakdown = profile_executable(compile_network(network, target), INPUT_SHAPE,
                                   threads=1, runs=3)
    by_symbol = {k.symbol: k for k in breakdown.kernels}
    ours = {s for s, k in by_symbol.items() if s.startswith("conv_")}
    assert ours == {"conv_stem", "conv_body", "conv_mix"}
    assert all(by_symbol[s].calls == 1 and by_symbol[s].kind == "conv" for s in ours)
    fallback = [k for k in breakdown.kernels if "conv2d" in k.symbol]
    assert len(fallback) == 1 and fallback[0].kind == "conv", "TVM's own kernel for dilated"
    assert breakdown.ms_of("other") > 0 and breakdown.ms_of("conv") > 0
    parts = sum(breakdown.ms_of(kind) for kind in ("conv", "other", "runtime"))
    assert parts <= breakdown.total_ms
    summary = breakdown.to_json(top=2)
    assert len(summary["slowest"]) == 2 and summary["calls"] == sum(
        k.calls for k in breakdown.kernels)
    with pytest.raises(ValueError, match="runs"):
        profile_executable(compile_network(network, target), INPUT_SHAPE, runs=0)


def test_kinds_of_vm_symbols():
    assert kind_of("conv_layer1_0_conv1") == "conv"
    assert kind_of("fused_conv2d_add_relu") == "conv"
    assert kind_of("fused_multiply_add_maximum") == "other"
    assert kind_of("concatenate") == "other"
    assert kind_of("vm.builtin.alloc_storage") == "runtime"


def test_timing_on_one_thread_leaves_this_process_on_all_its_cores(target):
    """TVM pins the calling thread to CPU 0 when its pool is set to one thread; an
    in-process search that came next measured capacity on one core and recorded a
    host with one core. set_tvm_threads restores the thread's CPUs."""
    import os

    from evo.bench.timing import set_tvm_threads, time_executable
    from evo.measure.evaluator import available_cores

    before = os.sched_getaffinity(0)
    executable = compile_network(to_relax(small_net(), INPUT_SHAPE), target)
    assert time_executable(executable, INPUT_SHAPE, threads=1).threads == 1
    assert os.sched_getaffinity(0) == before
    assert set_tvm_threads(1) == 1 and available_cores() == len(before)
    set_tvm_threads(len(before))


def test_a_network_is_timed_in_fresh_processes_and_their_median_is_the_row(target,
                                                                          monkeypatch):
    """TVM end-to-end times differ up to 2x between processes (each one steady), so a
    row is the median over several; each child times the network this test compiled."""
    from evo.bench.timing import time_across_processes

    executable = compile_network(to_relax(small_net(), INPUT_SHAPE), target)
    latency = time_across_processes(executable, INPUT_SHAPE, threads=1, processes=3)
    assert latency.processes == 3 and len(latency.process_ms) == 3
    assert latency.median_ms == sorted(latency.process_ms)[1] and latency.threads == 1
    assert latency.spread == pytest.approx(
        (max(latency.process_ms) - min(latency.process_ms)) / latency.median_ms)
    monkeypatch.setenv("EVO_TIMING_PROCESSES", "2")  # what evo bench --timing-processes sets
    row = tvm_end_to_end(small_net(), INPUT_SHAPE, target, threads=1)
    assert row.ok and row.latency.processes == 2 and len(row.latency.process_ms) == 2
    assert row.to_json()["latency"]["processes"] == row.latency.processes


def test_a_child_that_cannot_load_the_network_is_an_error_naming_why(tmp_path):
    from evo.bench.timing import _time_in_child

    not_a_library = tmp_path / "network.so"
    not_a_library.write_text("not a shared library")
    with pytest.raises(RuntimeError, match="timing child: "):
        _time_in_child(not_a_library, INPUT_SHAPE, 1, 0)
