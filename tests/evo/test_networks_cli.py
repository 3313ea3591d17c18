"""`evo slots` and `evo fisher`: output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evo.capacity import FisherPotential
from evo.cli import main
from evo.networks import load_network

EVO = Path(sys.executable).parent / "evo"


def test_slots_table_and_json(capsys):
    assert main(["slots", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "tiny: 5 slots, input 1x3x32x32" in out
    assert "layer1.conv1" in out and "yes, shrinks layer1.bn1, layer1.conv2" in out
    assert "winograd applies to 2 of 5 slots (3x3 convs at stride 1): conv1, layer1.conv2" in out
    assert main(["slots", "--model", "resnet18", "--input-shape", "2,3,32,32", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert len(items) == 20
    first = items[0]
    assert first["id"] == "conv1"
    assert first["spec"]["in_channels"] == 3 and first["spec"]["batch"] == 2
    assert first["flops"] == 2 * 2 * 64 * 32 * 32 * 3 * 9
    assert "bottleneck" not in first["allowed"] and "tile" in first["allowed"]
    assert "bottleneck" in items[1]["allowed"]
    assert "winograd" in first["allowed"]  # 3x3 at stride 1
    assert [item["id"] for item in items if "winograd" not in item["allowed"]] == [
        "layer2.0.conv1", "layer2.0.shortcut.0", "layer3.0.conv1", "layer3.0.shortcut.0",
        "layer4.0.conv1", "layer4.0.shortcut.0"]


def test_fisher_json_matches_the_library(capsys):
    assert main(["fisher", "--model", "tiny", "--seed", "2", "--batch", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = FisherPotential(load_network("tiny", seed=2), seed=2, batch=8).original()
    assert report["fisher"] == expected.total
    assert report["per_slot"] == expected.per_slot
    assert "legal" not in report


def test_fisher_running_statistics_mode(tmp_path, capsys):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"schema": 1, "layers": {
        s: [{"gene": "depthwise"}] for s in ("layer1.conv1", "layer1.conv2", "conv2")}}))
    assert main(["fisher", "--model", "tiny", "--bn", "running", "--genome", str(path),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = FisherPotential(load_network("tiny"), bn="running").original()
    assert report["bn"] == "running" and report["original"] == expected.total
    assert report["ratio"] < 0.5 and not report["legal"]


def test_fisher_with_genome_reports_legality(tmp_path, capsys):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"schema": 1, "layers": {
        "conv2": [{"gene": "group", "groups": 2}, {"gene": "tile", "axis": "co", "factor": 8}]}}))
    assert main(["fisher", "--model", "tiny", "--genome", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["original"] > 0 and report["fisher"] > 0
    assert report["legal"] == (report["fisher"] >= report["original"])
    assert report["violation"] == pytest.approx(max(0.0, 1 - report["ratio"]))
    assert main(["fisher", "--model", "tiny", "--genome", str(path), "--threshold", "1000",
                 "--scope", "layer", "--per-slot"]) == 0
    out = capsys.readouterr().out
    assert "capacity  illegal: short by" in out and "layer scope" in out and "conv2" in out


def bad_commands(tmp_path):
    layer = tmp_path / "layer.json"
    layer.write_text(json.dumps([{"gene": "group", "groups": 2}]))
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"schema": 1, "layers": {"foo": [{"gene": "depthwise"}]}}))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    pickled = tmp_path / "p.npz"
    np.savez(pickled, x=np.array([object()], dtype=object), y=np.arange(1))
    return [
        (["slots", "--model", "nope"], "unknown model 'nope'"),
        (["slots", "--model", f"{tmp_path}/absent.py:build"], "no such file"),
        (["slots", "--model", "tiny", "--input-shape", "1,3,x,32"], "--input-shape"),
        (["fisher", "--model", "tiny", "--data", "imagenet"], "expected synthetic"),
        (["fisher", "--model", "tiny", "--data", f"npz:{pickled}"], "without pickled objects"),
        (["fisher", "--model", "tiny", "--data", f"cifar10:{tmp_path}/none"],
         "no such directory"),
        (["fisher", "--model", "tiny", "--genome", str(tmp_path / "absent.json")],
         "no such file"),
        (["fisher", "--model", "tiny", "--genome", str(broken)], "not JSON"),
        (["fisher", "--model", "tiny", "--genome", str(layer)], "a layer genome"),
        (["fisher", "--model", "tiny", "--genome", str(unknown)], "unknown slot 'foo'"),
        (["fisher", "--model", "tiny", "--threshold", "-1"], "--threshold"),
        (["fisher", "--model", "tiny", "--batch", "1"], "batch"),
        (["fisher", "--model", "tiny", "--scope", "block"], "invalid choice"),
        (["fisher", "--model", "tiny", "--bogus"], "unrecognized arguments"),
    ]


def exit_code(argv: list[str]) -> int:
    """What `evo ARGV` exits with (argparse errors exit from inside `main`)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    for argv, message in bad_commands(tmp_path):
        assert exit_code(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err, (argv, err)
        assert len(err.splitlines()) == 1, (argv, err)


def test_real_process_one_line_error_and_json(tmp_path):
    bad = subprocess.run([str(EVO), "fisher", "--model", f"{tmp_path}/missing.py:build"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"evo fisher: error: model file {tmp_path}/missing.py: no such file"]
    good = subprocess.run([str(EVO), "slots", "--model", "tiny", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, good.stderr
    assert [item["id"] for item in json.loads(good.stdout)] == [
        "conv1", "layer1.conv1", "layer1.conv2", "layer1.shortcut.0", "conv2"]
