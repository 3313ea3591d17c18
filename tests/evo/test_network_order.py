"""A real run of DenseNet-161 (161 slots; `dense2.2` runs before `dense2.10`, the
transitions between the blocks): every analysis lists its slots in the order the
network runs them, not alphabetically."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evo.analysis.plots import layer_speedup_figure
from evo.analysis.snapshot import load_run
from evo.cli import main
from evo.networks import load_network
from tests.evo.analytic_run import ENV


@pytest.fixture(scope="module")
def densenet(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("densenet") / "r"
    done = subprocess.run([sys.executable, "-m", "evo", "run", "--model", "densenet161",
                           "--evaluator", "analytic", "--capacity", "params", "--population",
                           "4", "--generations", "1", "--out", str(out), "--cache",
                           str(out.parent / "c.sqlite"), "--quiet"],
                          env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def network_order() -> list[str]:
    order = [slot.id for slot in load_network("densenet161").slots]
    assert order.index("dense2.2.conv1") < order.index("dense2.10.conv1")
    assert sorted(order) != order
    return order


def _before(text: str, first: str, second: str) -> bool:
    return -1 < text.index(first) < text.index(second)


def test_the_run_records_and_reads_the_network_order(densenet: Path,
                                                     network_order: list[str]) -> None:
    snap = load_run(densenet)
    assert snap.slot_order == network_order
    ticks = [t.get_text() for t in layer_speedup_figure(snap, snap.best).axes[0]
             .get_yticklabels()]
    assert ticks == network_order  # layers.png, top to bottom


def test_report_tables_are_in_network_order(densenet: Path, capsys,
                                            network_order: list[str]) -> None:
    assert main(["report", str(densenet)]) == 0
    report = (densenet / "report" / "report.md").read_text()
    rows = [line.split(" | ")[0].removeprefix("| ") for line in report.splitlines()
            if line.startswith("| ") and line.split(" | ")[0][2:] in network_order]
    assert rows == network_order
    assert _before(report, "| dense2.2.conv1 |", "| dense2.10.conv1 |")
    assert _before(report, "| dense1.5.conv2 |", "| trans1.conv |")
    assert _before(report, "| trans1.conv |", "| dense2.0.conv1 |")


def test_lineage_is_in_network_order(densenet: Path, capsys, network_order: list[str]) -> None:
    snap = load_run(densenet)
    assert main(["lineage", str(densenet), "--id", str(snap.template), "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)["lineage"][1]["changes"]
    slots = list(dict.fromkeys(change["slot"] for change in changes))
    assert slots == network_order
    assert main(["lineage", str(densenet), "--id", str(snap.template)]) == 0
    text = capsys.readouterr().out  # the template's edits, first to last slot run
    assert f"conv1 .. dense4.23.conv2 ({len(network_order)} slots): + tile(co, 8)" in text


def test_lineage_and_report_name_the_runs_capacity_measure(densenet: Path, capsys) -> None:
    """A run judged with `--capacity params` is described with parameters, not Fisher."""
    snap = load_run(densenet)
    assert main(["lineage", str(densenet), "--id", str(snap.template)]) == 0
    text = capsys.readouterr().out
    assert ", params " in text and "Fisher" not in text
    assert main(["lineage", str(densenet), "--format", "dot"]) == 0
    assert "Fisher" not in capsys.readouterr().out
    assert main(["report", str(densenet)]) == 0
    report = (densenet / "report" / "report.md").read_text()
    assert "Parameters of the slot convs" in report and "Fisher Potential" not in report
