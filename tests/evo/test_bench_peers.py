"""The peers (`evo.bench.peers`): each checked against PyTorch and timed on `tiny`, the
original and a transformed network; failures are error rows, never exceptions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from evo.bench.compile import ATOL, RTOL
from evo.bench.metaschedule import Tuning
from evo.bench.peers import DEFAULT_PEERS, PEERS, describe_peer, peer_end_to_end
from evo.bench_report import best_peer, format_table, speedups
from evo.networks import load_network, transform_network
from evo.search.variation import TEMPLATE_SCHEDULE
from genomes.genes import Depthwise, Group
from genomes.genome import LayerGenome, NetworkGenome
from tests.evo.bench_nets import randomize_batch_norms

ROOT = Path(__file__).resolve().parents[2]
GENOME = NetworkGenome({  # depthwise and grouped pieces, each with the template schedule
    "layer1.conv2": LayerGenome((Depthwise(), *TEMPLATE_SCHEDULE.genes)),
    "conv2": LayerGenome((Group(4), *TEMPLATE_SCHEDULE.genes)),
})


def _networks() -> dict[str, nn.Module]:
    network = load_network("tiny")
    transform = transform_network(network, GENOME, seed=3)
    assert transform.ok, transform.error
    for module in (network.module, transform.module):
        randomize_batch_norms(module)
    return {"original": network.module, "transformed": transform.module}


@pytest.fixture(scope="module")
def tiny() -> dict[str, nn.Module]:
    return _networks()


def _assert_checked_and_timed(row, peer: str) -> None:
    assert row.ok, row.error
    assert row.agreement.matches, row.agreement
    assert row.latency.median_ms > 0 and row.latency.repeats >= 5
    assert row.latency.threads == 1
    assert row.peer["name"] == peer and row.peer["version"]
    assert row.to_json()["peer"] == row.peer and row.to_json()["ms"] == row.latency.median_ms


@pytest.mark.parametrize("which", ["original", "transformed"])
@pytest.mark.parametrize("peer", ["onnxruntime", "openvino"])
def test_onnx_peers_agree_with_torch(tiny, peer, which) -> None:
    module = tiny[which]
    module.train()
    row = peer_end_to_end(peer, module, (1, 3, 32, 32), threads=1)
    _assert_checked_and_timed(row, peer)
    assert module.training, "the module's mode is restored"
    assert row.peer["settings"]["opset"] == 17
    if peer == "openvino":  # f32, not the bf16 the CPU plugin picks on CPUs that have it
        assert row.peer["settings"]["INFERENCE_PRECISION_HINT"] == "f32"
    else:
        assert row.peer["settings"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
        assert row.peer["settings"]["intra_op_num_threads"] == 1


@pytest.mark.slow  # inductor compiles C++ for each network (about 10-25 s each here)
def test_torch_compile_agrees_with_torch(tiny) -> None:
    threads = torch.get_num_threads()
    for module in tiny.values():
        row = peer_end_to_end("torch_compile", module, (1, 3, 32, 32), threads=1)
        _assert_checked_and_timed(row, "torch_compile")
        assert row.peer["settings"] == {"backend": "inductor", "mode": "default"}
    assert torch.get_num_threads() == threads, "torch's thread count is restored"


class _Unexportable(nn.Module):
    """cummax has no ONNX export at opset 17."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cummax(x, dim=3)[0]


class _Drifting(nn.Module):
    """Computes something else on every call: the exported graph keeps the factor it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.conv(x) * float(self.calls)


def test_failures_are_error_rows(tiny, monkeypatch) -> None:
    shape = (1, 3, 32, 32)
    unknown = peer_end_to_end("tensorflow_lite", tiny["original"], shape)
    assert unknown.latency is None and "unknown peer 'tensorflow_lite'" in unknown.error
    for peer in ("onnxruntime", "openvino"):  # an export error fails both ONNX peers
        row = peer_end_to_end(peer, _Unexportable(), (1, 3, 8, 8), threads=1)
        assert row.latency is None and "ONNX export" in row.error and "cummax" in row.error
        assert len(row.error.splitlines()) == 1 and row.error.startswith(PEERS[peer][0])
    drifting = peer_end_to_end("onnxruntime", _Drifting(), (1, 3, 8, 8), threads=1)
    assert not drifting.agreement.matches and drifting.latency is not None
    assert drifting.error.startswith("ONNX Runtime output differs from PyTorch (max abs diff")
    assert (RTOL, ATOL) == (1e-4, 1e-4)  # the TVM rows' tolerance
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
    missing = peer_end_to_end("openvino", tiny["original"], shape, threads=1)
    assert missing.latency is None
    assert missing.error == "OpenVINO: openvino is not installed (pip install -e '.[bench]')"
    assert missing.to_json()["peer"] == {"name": "openvino", "runtime": "OpenVINO"}


def test_openvino_is_imported_without_its_usage_telemetry(tmp_path) -> None:
    code = ("import sys; from evo.bench.peers import import_openvino; import_openvino(); "
            "print(sorted(k for k in sys.modules if k.startswith('openvino_telemetry.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "HOME": str(tmp_path), "CI": "false"},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # OpenVINO fell back to its no-op stub
    assert not (tmp_path / "intel").exists()  # no client id written either


def test_descriptions_and_defaults() -> None:
    assert set(DEFAULT_PEERS) == {"torch_compile", "onnxruntime", "openvino"}
    assert "torch_compile_max_autotune" in PEERS  # behind --peers, not by default
    assert describe_peer("onnxruntime", {"version": "1.0"}) == \
        "ONNX Runtime 1.0 (CPU provider, ORT_ENABLE_ALL, opset 17)"
    assert describe_peer("openvino") == "OpenVINO (CPU plugin, latency hint, f32, opset 17)"


def test_older_results_print_dashes_for_what_they_lack() -> None:
    old = json.loads((ROOT / "benchmarks/results/resnet18-2h-batch.json").read_text())
    assert "best_peer" not in old and "vs_best_peer" not in old["speedup"]
    lines = format_table(old).splitlines()
    assert "best peer: -" in lines and "speedup vs_best_peer: -" in lines
    assert any(line.startswith("speedup vs_program_only: ") and line.endswith("x")
               for line in lines)
    assert best_peer(old["rows"]) is None  # rows before `network` existed
    assert speedups(old["rows"], None)["vs_best_peer"] is None


def test_a_tuning_prints_beside_its_row() -> None:
    tuning = Tuning(tasks=18, trials_per_task=64, trials=1152, measured=1100, seconds=600.2,
                    budget_s=600.0, stopped="time budget", reused=False, cost_model="xgb")
    row = {"name": "tvm_metaschedule", "network": "original", "what": "original, MetaSchedule",
           "ms": None, "error": "x", "tuning": tuning.to_json()}
    text = format_table({"model": "m", "threads": 2, "individual": 1, "rows": [row],
                         "speedup": {}})
    assert ("tuning: 18 tasks x 64 trials/task = 1152 asked, 1100 measured, xgb cost model, "
            "600.2 s of a 600 s budget, stopped by its time budget") in text
