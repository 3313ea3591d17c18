"""status, lineage, report and export on real runs made by `evo run --evaluator analytic`
in real processes: a finished run, a run in progress (read while another process
writes it) and a run killed with SIGKILL."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import evo
from evo.analysis.attribution import attribute
from evo.analysis.snapshot import load_run
from evo.cli import main
from evo.errors import UsageError
from evo.networks import load_network

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def evo_run(out: Path, generations: int, cache: Path, seed: int = 1) -> list[str]:
    return [sys.executable, "-m", "evo", "run", "--model", "tiny", "--evaluator", "analytic",
            "--population", "8", "--generations", str(generations), "--seed", str(seed),
            "--out", str(out), "--cache", str(cache), "--quiet"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("finished")
    out = base / "run"
    done = subprocess.run(evo_run(out, 3, base / "cache.sqlite"), env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


def cli_json(capsys, *argv: str) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_status_of_a_finished_run_matches_its_store(finished: Path, capsys) -> None:
    status = cli_json(capsys, "status", str(finished), "--json")
    snap = load_run(finished)
    log = snap.last.logbook
    assert status["generation"] == 3 and status["state"] == "completed"
    assert status["best_id"] == log["best_id"] and status["best_ms"] == log["best_ms"]
    assert status["speedup"] == pytest.approx(log["speedup"])
    assert status["front_size"] == len(snap.front) >= 1
    assert status["evaluations"] == log["evaluations"] and not status["running"]
    assert main(["status", str(finished)]) == 0
    text = capsys.readouterr().out
    assert "last stop    completed" in text and "faster than the original" in text


def test_lineage_of_every_front_member_reaches_the_original(finished: Path, capsys) -> None:
    snap = load_run(finished)
    for member in snap.front:
        data = cli_json(capsys, "lineage", str(finished), "--id", str(member), "--format",
                        "json")
        steps = data["lineage"]
        assert steps[0]["id"] == 1 and steps[0]["operator"] == "original"
        assert steps[-1]["id"] == member
        for before, step in zip(steps, steps[1:], strict=False):
            assert step["parents"][0] == before["id"]
            assert step["before"]["latency_ms"] == before["latency_ms"]
            assert step["changes"], f"step {step['id']} changed nothing"
    # the attribution telescopes: per member, the shares add up to its whole saving
    # over the template schedule
    result = attribute(snap)
    assert result.baseline == "template" and result.baseline_ms == snap.template_ms
    expected = sum(snap.template_ms - snap.evaluations[m].latency_ms for m in snap.front)
    assert result.total_saved_ms == pytest.approx(expected, rel=1e-9)
    assert main(["lineage", str(finished), "--best"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Lineage of #{snap.best} ") and "Attribution over the Pareto set" \
        in text


def test_dot_renders_with_graphviz(finished: Path, capsys, tmp_path: Path) -> None:
    assert main(["lineage", str(finished), "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    best = load_run(finished).best
    assert dot.startswith("digraph lineage {") and f"n{best} [label=" in dot
    assert dot.count("{") == dot.count("}")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed")
    png = tmp_path / "lineage.png"
    done = subprocess.run(["dot", "-Tpng", "-o", str(png)], input=dot, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_writes_markdown_and_plots(finished: Path, capsys) -> None:
    assert main(["report", str(finished)]) == 0
    folder = finished / "report"
    assert f"report written to {folder / 'report.md'}" in capsys.readouterr().out
    md = (folder / "report.md").read_text()
    for name in ("progress.png", "pareto.png", "lineage.png", "layers.png"):
        assert f"]({name})" in md
        data = (folder / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert "## Which genes the speedup came from" in md and "| layer (slot) |" in md


@pytest.mark.slow
def test_commands_on_a_run_in_progress_and_after_sigkill(tmp_path: Path, capsys) -> None:
    out = tmp_path / "live"
    process = subprocess.Popen(evo_run(out, 500, tmp_path / "cache.sqlite", seed=2), env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None and time.monotonic() < deadline
            if (out / "run.sqlite").exists():
                status = cli_json(capsys, "status", str(out), "--json")
                if status["generation"] is not None and status["generation"] >= 1:
                    break
            time.sleep(0.2)
        assert status["running"] and status["pid"] == process.pid
        assert status["state"] == "running" and status["last_stop"] is None
        first = status["generation"]
        for attempt in range(2):  # reading never stops the writer
            assert main(["lineage", str(out)]) == 0
            assert main(["report", str(out)]) == 0
            assert main(["export", str(out), "--no-tvm", "--out",
                         str(tmp_path / f"during{attempt}")]) == 0
            capsys.readouterr()
        while cli_json(capsys, "status", str(out), "--json")["generation"] <= first + 1:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    status = cli_json(capsys, "status", str(out), "--json")
    assert not status["running"] and status["state"] == "crashed"
    assert status["last_stop"]["reason"] == \
        f"crashed or killed (pid {process.pid} no longer running)"
    assert main(["status", str(out)]) == 0
    assert f"resume with  evo resume {out}" in capsys.readouterr().out
    assert main(["lineage", str(out), "--format", "dot"]) == 0
    assert main(["report", str(out)]) == 0
    assert main(["export", str(out), "--out", str(tmp_path / "winner"), "--no-tvm"]) == 0
    capsys.readouterr()
    assert (tmp_path / "winner" / "weights.pt").is_file()


def _import(path: Path):
    spec = importlib.util.spec_from_file_location("exported_run_tvm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exported_tvm_libraries_match_the_exported_pytorch_model(finished: Path,
                                                                 tmp_path: Path,
                                                                 capsys) -> None:
    snap = load_run(finished)
    legal = [i for i, e in snap.evaluations.items() if e.feasible]

    def coverage(ident: int) -> tuple[int, int]:  # neural pieces and packed weights first
        genome = snap.individuals[ident].genome
        names = {g.name for layer in genome.layers.values() for g in layer.genes}
        return (("pack" in names) + bool(genome.neural.layers), len(names))

    ident = max(legal, key=coverage)
    out = tmp_path / "exported"
    assert main(["export", str(finished), "--id", str(ident), "--out", str(out)]) == 0
    assert f"exported individual {ident}" in capsys.readouterr().out
    genome = json.loads((out / "genome.json").read_text())
    assert genome == snap.individuals[ident].genome.to_json()

    model = evo.load_model(out)  # the PyTorch side, without the run store
    run_tvm = _import(out / "run_tvm.py")
    slots = run_tvm.load_slots(out / "tvm")
    assert [s["id"] for s in slots] == [s.id for s in load_network("tiny").slots]
    seen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    hooks = [model.get_submodule(s["id"]).register_forward_hook(
        lambda _m, i, o, name=s["id"]: seen.__setitem__(name, (i[0].numpy(), o.numpy())))
        for s in slots]
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(7)))
    for h in hooks:
        h.remove()
    for slot in slots:
        x, want = seen[slot["id"]]
        got = run_tvm.run_slot(slot, x)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(),
                                   err_msg=slot["id"])
    check = subprocess.run([sys.executable, str(out / "run_tvm.py"), "--check"], env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{len(slots)} convs checked against PyTorch: match" in check.stdout


def test_load_model_never_unpickles_code(finished: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    assert main(["export", str(finished), "--out", str(out), "--no-tvm"]) == 0
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"conv1.weight": Evil()}, out / "weights.pt")
    with pytest.raises(UsageError, match="not a weights file evo can read safely"):
        evo.load_model(out)
    assert not marker.exists()


@pytest.mark.parametrize("argv", [
    ["report", "{missing}"], ["export", "{missing}", "--out", "{tmp}/x"],
    ["export", "{run}", "--id", "100000", "--out", "{tmp}/x"],
    ["lineage", "{run}", "--id", "0"], ["export", "{run}", "--out", "{file}"],
])
def test_bad_paths_and_ids(finished: Path, tmp_path: Path, capsys, argv) -> None:
    (tmp_path / "file").write_text("")
    values = {"missing": tmp_path / "nope", "run": finished, "tmp": tmp_path,
              "file": tmp_path / "file"}
    assert main([a.format(**values) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"evo {argv[0]}: error:"), err
