"""`evo.bench.head_to_head`: rows raced in interleaved rounds, each contender in a real
process of its own (TVM .so and ONNX Runtime model files made here)."""

from __future__ import annotations

import statistics
from pathlib import Path

import psutil
import pytest

from evo.bench.end_to_end import genome_end_to_end
from evo.bench.head_to_head import Contender, contenders, race
from evo.bench.peers import peer_end_to_end
from evo.networks import load_network
from evo.search.variation import template_genome


@pytest.fixture(scope="module")
def files(tmp_path_factory, target) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("race")
    network = load_network("tiny")
    row = genome_end_to_end(network, template_genome(network.slots), target, threads=1,
                            export_to=folder / "tiny.so")
    peer = peer_end_to_end("onnxruntime", network.module, network.input_shape, threads=1,
                           save_onnx=folder / "tiny.onnx")
    assert row.ok and peer.ok
    assert row.artifact == str(folder / "tiny.so") and peer.artifact == str(folder / "tiny.onnx")
    (folder / "broken.so").write_text("not a library")
    return {"tvm": folder / "tiny.so", "onnx": folder / "tiny.onnx",
            "broken": folder / "broken.so"}


def test_race_times_every_contender_in_every_round(files) -> None:
    entrants = [Contender("tvm_program_only", "original", "tvm", files["tvm"]),
                Contender("onnxruntime_original", "original", "onnxruntime", files["onnx"]),
                Contender("tvm_discovered", "discovered", "tvm", files["tvm"]),
                Contender("tvm_broken", "original", "tvm", files["broken"])]
    seen = []
    raced = race(entrants, (1, 3, 32, 32), threads=1, rounds=3, window_s=0.02,
                 progress=seen.append)
    assert seen == [f"head to head: round {n} of 3" for n in (1, 2, 3)]
    assert list(raced.errors) == ["tvm_broken"]  # the others went on without it
    assert "tvm:" in raced.errors["tvm_broken"] and "\n" not in raced.errors["tvm_broken"]
    assert raced.ms["tvm_broken"] == []
    for name in ("tvm_program_only", "onnxruntime_original", "tvm_discovered"):
        assert len(raced.ms[name]) == 3 and all(ms > 0 for ms in raced.ms[name])
    ratios = raced.ratios("onnxruntime_original", "tvm_discovered")
    assert ratios == [o / d for o, d in zip(raced.ms["onnxruntime_original"],
                                            raced.ms["tvm_discovered"], strict=True)]
    result = raced.to_json()
    best = min(("tvm_program_only", "onnxruntime_original"), key=raced.median_ms)
    assert result["best_peer"] == best
    assert result["speedup"]["vs_best_peer"] == statistics.median(
        raced.ratios(best, "tvm_discovered"))
    assert result["speedup"]["vs_metaschedule"] is None  # not in the race
    low, high = result["speedup_quartiles"]["vs_program_only"]
    assert low <= result["speedup"]["vs_program_only"] <= high


def test_a_contender_that_dies_mid_race_is_dropped(files) -> None:
    entrants = [Contender("tvm_discovered", "discovered", "tvm", files["tvm"]),
                Contender("onnxruntime_original", "original", "onnxruntime", files["onnx"])]

    def kill_onnxruntime(message: str) -> None:
        if message.endswith("round 1 of 3"):
            for child in psutil.Process().children():
                if str(files["onnx"]) in child.cmdline():
                    child.kill()

    raced = race(entrants, (1, 3, 32, 32), threads=1, rounds=3, window_s=0.02,
                 progress=kill_onnxruntime)
    assert len(raced.ms["tvm_discovered"]) == 3
    assert len(raced.times("onnxruntime_original")) == 1  # round 1, then it died
    assert "onnxruntime_original" in raced.errors


def test_only_rows_with_a_kept_network_are_raced() -> None:
    rows = [
        {"name": "tvm_program_only", "network": "original", "ms": 1.0, "error": None,
         "artifact": "n/tvm_program_only.so", "peer": None},
        {"name": "torch_eager_original", "network": "original", "ms": 2.0, "error": None,
         "artifact": None, "peer": None},
        {"name": "torch_compile_original", "network": "original", "ms": 2.0, "error": None,
         "artifact": None, "peer": {"name": "torch_compile"}},
        {"name": "onnxruntime_original", "network": "original", "ms": 0.5, "error": None,
         "artifact": "n/onnxruntime_original.onnx", "peer": {"name": "onnxruntime"}},
        {"name": "openvino_original", "network": "original", "ms": None,
         "error": "OpenVINO: not installed", "artifact": None, "peer": {"name": "openvino"}},
        {"name": "tvm_discovered", "network": "discovered", "ms": 0.4,
         "error": "TVM: output differs", "artifact": "n/tvm_discovered.so", "peer": None},
    ]
    assert contenders(rows) == [
        Contender("tvm_program_only", "original", "tvm", Path("n/tvm_program_only.so")),
        Contender("onnxruntime_original", "original", "onnxruntime",
                  Path("n/onnxruntime_original.onnx"))]


def test_the_cli_default_is_the_race_default() -> None:
    from evo.bench.head_to_head import ROUNDS
    from evo.commands.bench import RACE_ROUNDS

    assert RACE_ROUNDS == ROUNDS
