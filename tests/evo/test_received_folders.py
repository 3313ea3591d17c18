"""A run or export folder received from someone else runs no code, follows no link,
opens no special file and connects nowhere unless this machine's command line asks:
real folders, real symlinks, hard links and FIFOs, real sockets, real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import evo
from evo.analysis import load_run
from evo.cli import main
from evo.errors import UsageError
from tests.evo.analytic_run import (
    ENV,
    MARKING_MODEL,
    copy_run,
    make_analytic_run,
    session_count,
)


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    return make_analytic_run(tmp_path_factory.mktemp("made") / "r")


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"evo {argv[0]}: error: "), err
    return err


def model_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "net.py").write_text(MARKING_MODEL)
    return folder / "net.py"


def set_config(run: Path, **fields) -> None:
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **fields}))


# ------------------------------------------------------------------ model code
def test_load_model_imports_a_model_file_only_when_trusted(tmp_path: Path) -> None:
    from evo.export import save_model
    from evo.networks import load_network, transform_network
    from genomes.genome import NetworkGenome

    net = model_file(tmp_path / "src")
    network = load_network(f"{net}:build")
    module = transform_network(network, NetworkGenome(), seed=0).module
    out = tmp_path / "export"
    save_model(out, f"{net}:build", network.input_shape, 0, NetworkGenome(), module)
    assert json.loads((out / "model.json").read_text())["model"] == "net.py:build"

    with pytest.raises(UsageError, match="trust_model_code=True") as refused:
        evo.load_model(out)
    assert "\n" not in str(refused.value)
    assert not (out / "imported").exists()
    model = evo.load_model(out, trust_model_code=True)
    assert (out / "imported").exists()
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_resume_imports_the_model_config_names_only_when_asked(made: Path, tmp_path: Path,
                                                               capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    net = model_file(tmp_path / "src")
    set_config(run, model=f"{net}:build")
    err = one_line_error(capsys, ["resume", str(run), "--generations", "0", "--quiet"])
    assert "--trust-model-code" in err and f"{net}:build" in err
    other = model_file(tmp_path / "elsewhere")
    err = one_line_error(capsys, ["resume", str(run), "--model", f"{other}:build", "--quiet"])
    assert "is not the model" in err
    assert not (net.parent / "imported").exists() and not (other.parent / "imported").exists()
    assert session_count(run) == 1

    # the same file named again on this command line, or the explicit opt-in
    assert main(["resume", str(run), "--model", f"{net}:build", "--generations", "0",
                 "--quiet"]) == 0
    assert (net.parent / "imported").exists()
    (net.parent / "imported").unlink()
    assert main(["resume", str(run), "--trust-model-code", "--generations", "0",
                 "--quiet"]) == 0
    assert (net.parent / "imported").exists()


def test_export_imports_the_model_config_names_only_when_asked(made: Path, tmp_path: Path,
                                                               capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    net = model_file(tmp_path / "src")
    set_config(run, model=f"{net}:build")
    out = tmp_path / "exported"
    err = one_line_error(capsys, ["export", str(run), "--out", str(out), "--no-tvm"])
    assert "--trust-model-code" in err
    assert not (net.parent / "imported").exists() and not out.exists()
    assert main(["export", str(run), "--out", str(out), "--no-tvm",
                 "--trust-model-code"]) == 0
    assert "trust_model_code=True" in capsys.readouterr().out
    assert (net.parent / "imported").exists() and (out / "net.py").exists()


def test_a_refused_resume_of_a_folder_with_only_config_json_creates_nothing(
        made: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_bytes((made / "config.json").read_bytes())
    set_config(run, model=f"{model_file(tmp_path / 'src')}:build")
    one_line_error(capsys, ["resume", str(run), "--quiet"])
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]


# ------------------------------------------------------------ no phoning out
@pytest.fixture
def listener():
    """A real TCP socket on this machine; `connected()` says whether anyone came."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)

    def connected() -> bool:
        try:
            server.accept()[0].close()
            return True
        except TimeoutError:
            return False

    yield server.getsockname()[1], connected
    server.close()


def test_resume_does_not_use_a_dask_scheduler_named_by_config_json(made: Path, tmp_path: Path,
                                                                   capsys, listener) -> None:
    port, connected = listener
    run = copy_run(made, tmp_path / "r")
    set_config(run, evaluator="tvm", backend="dask", scheduler=f"tcp://127.0.0.1:{port}")
    err = one_line_error(capsys, ["resume", str(run), "--quiet"])
    assert f"Dask scheduler tcp://127.0.0.1:{port}" in err and "--local" in err
    assert not connected() and session_count(run) == 1


def test_resume_does_not_use_an_rpc_runner_named_by_config_json(made: Path, tmp_path: Path,
                                                                capsys, listener) -> None:
    port, connected = listener
    run = copy_run(made, tmp_path / "r")
    set_config(run, runner=f"rpc://127.0.0.1:{port}/pi")
    err = one_line_error(capsys, ["resume", str(run), "--generations", "1", "--quiet"])
    assert f"RPC runner rpc://127.0.0.1:{port}/pi" in err
    assert main(["resume", str(run), "--local", "--generations", "1", "--quiet"]) == 0
    assert not connected()
    with open(run / "config.json") as f:  # the received config is left as it was
        assert json.load(f)["runner"] == f"rpc://127.0.0.1:{port}/pi"
    sessions = load_run(run).sessions
    assert len(sessions) == 2 and sessions[-1]["host"]["device"] == "local"


# ---------------------------------------------------------------- the lock file
def test_a_symlinked_lock_is_refused_and_nothing_is_written_through_it(
        made: Path, tmp_path: Path, capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    precious = tmp_path / "v.txt"
    precious.write_text("precious\n")
    (run / "lock").unlink()
    (run / "lock").symlink_to(precious)
    for argv in (["resume", str(run), "--quiet"], ["status", str(run)]):
        err = one_line_error(capsys, argv)
        assert "lock is not a regular file" in err
    assert precious.read_text() == "precious\n" and session_count(run) == 1


def test_a_hard_linked_lock_is_refused_by_resume(made: Path, tmp_path: Path, capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    precious = tmp_path / "v.txt"
    precious.write_text("precious\n")
    (run / "lock").unlink()
    os.link(precious, run / "lock")
    assert "other hard links" in one_line_error(capsys, ["resume", str(run), "--quiet"])
    assert precious.read_text() == "precious\n" and session_count(run) == 1


def test_a_directory_lock_is_one_line(made: Path, tmp_path: Path, capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    (run / "lock").unlink()
    (run / "lock").mkdir()
    for argv in (["resume", str(run), "--quiet"], ["status", str(run)], ["lineage", str(run)]):
        assert "lock is not a regular file" in one_line_error(capsys, argv)
    assert session_count(run) == 1


@pytest.mark.parametrize("name,command", [
    ("lock", "status"), ("lock", "lineage"), ("lock", "report"), ("lock", "resume"),
    ("config.json", "status"), ("config.json", "resume")])
def test_a_fifo_in_a_run_folder_does_not_hang(made: Path, tmp_path: Path, name: str,
                                              command: str) -> None:
    run = copy_run(made, tmp_path / "r")
    (run / name).unlink()
    os.mkfifo(run / name)
    done = subprocess.run([sys.executable, "-m", "evo", command, str(run)], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert any(f"{name}{how} not a regular file" in done.stderr for how in (" is", ":"))


def test_load_model_does_not_hang_on_a_fifo(made: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    assert main(["export", str(made), "--out", str(out), "--no-tvm"]) == 0
    (out / "model.json").unlink()
    os.mkfifo(out / "model.json")
    done = subprocess.run([sys.executable, "-c", f"import evo; evo.load_model({str(out)!r})"],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "model.json: not a regular file" in done.stderr


def test_a_symlinked_run_store_is_not_written_by_resume(made: Path, tmp_path: Path,
                                                        capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    elsewhere = tmp_path / "elsewhere.sqlite"
    (run / "run.sqlite").rename(elsewhere)
    (run / "run.sqlite").symlink_to(elsewhere)
    before = elsewhere.read_bytes()
    assert "symbolic link" in one_line_error(capsys, ["resume", str(run), "--quiet"])
    assert elsewhere.read_bytes() == before


# ------------------------------------------------------------------ the cache
@pytest.mark.parametrize("trap", ["symlink", "outside", "absent elsewhere"])
def test_resume_writes_no_cache_a_received_folder_points_elsewhere(
        made: Path, tmp_path: Path, capsys, trap: str) -> None:
    run = copy_run(made, tmp_path / "r")
    precious = tmp_path / "precious.sqlite"
    precious.write_bytes((run / "c.sqlite").read_bytes())
    if trap == "symlink":
        (run / "c.sqlite").unlink()
        (run / "c.sqlite").symlink_to(precious)
    elif trap == "outside":
        set_config(run, cache="{run}/../precious.sqlite")
    else:
        set_config(run, cache=str(tmp_path / "nowhere" / "c.sqlite"))
    before = precious.read_bytes()
    err = one_line_error(capsys, ["resume", str(run), "--generations", "1", "--quiet"])
    assert {"symlink": "link or not a regular file", "outside": "leaves the run folder",
            "absent elsewhere": "which is not here; pass --cache PATH"}[trap] in err
    assert precious.read_bytes() == before and session_count(run) == 1
    assert not (tmp_path / "nowhere").exists()


# ------------------------------------------------------------- report and export
@pytest.mark.parametrize("link", ["report", "report/report.md", "report/progress.png"])
def test_report_does_not_write_through_links(made: Path, tmp_path: Path, capsys,
                                             link: str) -> None:
    run = copy_run(made, tmp_path / "r")
    target = tmp_path / "target"
    if link == "report":
        target.mkdir()
    else:
        (run / "report").mkdir()
        target.write_text("precious\n")
    (run / link).symlink_to(target)
    err = one_line_error(capsys, ["report", str(run)])
    assert f"{run / link}: a symbolic link" in err
    if link == "report":
        assert list(target.iterdir()) == []
    else:
        assert target.read_text() == "precious\n"
        assert sorted(p.name for p in (run / "report").iterdir()) == [Path(link).name]


def test_report_writes_whole_files_into_a_real_folder(made: Path, tmp_path: Path) -> None:
    run = copy_run(made, tmp_path / "r")
    assert main(["report", str(run)]) == 0
    names = sorted(p.name for p in (run / "report").iterdir())
    assert "report.md" in names and "progress.png" in names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left


@pytest.mark.parametrize("link", ["weights.pt", "model.json", "tvm", "run_tvm.py"])
def test_export_does_not_write_through_links(made: Path, tmp_path: Path, capsys,
                                             link: str) -> None:
    run = copy_run(made, tmp_path / "r")
    out = tmp_path / "exported"
    out.mkdir()
    target = tmp_path / "target"
    if link == "tvm":
        target.mkdir()
    else:
        target.write_text("precious\n")
    (out / link).symlink_to(target)
    argv = ["export", str(run), "--out", str(out)] + (
        ["--no-tvm"] if link in ("weights.pt", "model.json") else [])
    assert f"{out / link}: a symbolic link" in one_line_error(capsys, argv)
    assert [p.name for p in out.iterdir()] == [link]  # nothing else written
    if link == "tvm":
        assert list(target.iterdir()) == []
    else:
        assert target.read_text() == "precious\n"


def test_export_with_a_bad_target_leaves_nothing(made: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "exported"
    one_line_error(capsys, ["export", str(made), "--out", str(out), "--target", "{"])
    assert not out.exists()
