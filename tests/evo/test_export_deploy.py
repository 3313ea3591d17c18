"""`evo export`'s whole-network artefacts on a real run (analytic evaluator, real TVM):
network.so run by run_network.py in a Python that cannot import evo, network.pt2 by
torch.export.load, network.onnx by onnxruntime, and one artefact failing cleanly."""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evo.cli import main
from evo.export import network_files

ROOT = Path(__file__).resolve().parents[2]

# A Python with tvm and numpy but without evo: `-S` skips `site`, so the venv's .pth
# files (among them evo's editable-install finder) are never processed, and the
# site-packages folder itself comes back through PYTHONPATH (honoured without -I/-E);
# the environment is otherwise empty and the cwd is a copy of the export folder.
BARE = [sys.executable, "-S"]
BARE_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(site.getsitepackages())}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("deploy")
    run = subprocess.run(
        [sys.executable, "-m", "evo", "run", "--model", "tiny", "--evaluator", "analytic",
         "--population", "4", "--generations", "1", "--out", str(base / "r"), "--cache",
         str(base / "r" / "c.sqlite"), "--quiet"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=300)
    assert run.returncode == 0, run.stderr
    assert main(["export", str(base / "r"), "--out", str(base / "w")]) == 0
    return base / "w"


def bare(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(BARE + args, cwd=cwd, env=BARE_ENV, capture_output=True, text=True,
                          timeout=300)


def test_run_network_needs_only_tvm_and_numpy(exported: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    hidden = bare(["-c", "import tvm, numpy\nimport evo"], folder)
    assert "No module named 'evo'" in hidden.stderr, hidden.stderr  # tvm imports, evo not
    done = bare(["run_network.py", "--threads", "1", "--repeat", "3"], folder)
    assert done.returncode == 0, done.stdout + done.stderr
    diff = float(re.search(r"max abs diff to PyTorch (\S+)", done.stdout).group(1))
    assert diff < 1e-5 and "latency" in done.stdout and "1 threads" in done.stdout
    expected = np.load(folder / "expected_output.npy", allow_pickle=False)
    np.save(folder / "expected_output.npy", expected + 1.0)
    wrong = bare(["run_network.py", "--repeat", "1"], folder)
    assert wrong.returncode == 1 and "MISMATCH" in wrong.stdout, wrong.stdout + wrong.stderr
    convs = bare(["run_tvm.py", "--threads", "1", "--repeat", "1"], folder)
    assert convs.returncode == 0, convs.stderr
    assert re.search(r"^total\s+5\s+\S+ ms \(1 threads", convs.stdout, re.M), convs.stdout


def test_torch_export_and_onnx_give_pytorchs_output(exported: Path) -> None:
    import onnxruntime as ort

    data = np.load(exported / "sample_input.npy", allow_pickle=False)
    expected = np.load(exported / "expected_output.npy", allow_pickle=False)
    program = torch.export.load(exported / "network.pt2")
    with torch.no_grad():
        got = program.module()(torch.from_numpy(data)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    session = ort.InferenceSession(str(exported / "network.onnx"),
                                   providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": data})[0], expected, rtol=1e-4,
                               atol=1e-4)
    readme = (exported / "README.md").read_text()
    for how in ("python run_network.py", "torch.export.load", "onnxruntime"):
        assert how in readme


def test_a_failing_artefact_is_one_line_and_leaves_no_stale_file(
        exported: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    run = exported.parent / "r"
    out = tmp_path / "again"
    shutil.copytree(exported, out)  # an older export's files, all present

    def broken(*_args) -> None:
        raise RuntimeError("cannot trace this\nUnsupported: data-dependent branch")

    monkeypatch.setattr(network_files, "_torch_export", broken)
    assert main(["export", str(run), "--out", str(out), "--no-tvm"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ("  torch.export export failed, not written: RuntimeError: Unsupported: "
            "data-dependent branch") in lines
    for stale in ("network.pt2", "network.so", "network.json", "run_network.py"):
        assert not (out / stale).exists(), stale
    assert (out / "network.onnx").is_file() and (out / "expected_output.npy").is_file()
    assert "Not written: RuntimeError" in (out / "README.md").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left
