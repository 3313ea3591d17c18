"""Progress of a run: plain lines when stderr is not a terminal, a bar per candidate
with an ETA that knows the time budget when it is, and `progress.jsonl` in the run
folder, one object per committed generation, continued by a resume. Real processes,
a real pseudo-terminal, the analytic evaluator."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import sqlite3
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from evo.cli import main
from tests.evo.analytic_run import ENV, copy_run, make_analytic_run, session_count

EVO = [sys.executable, "-m", "evo"]
RUN = ["--model", "tiny", "--evaluator", "analytic", "--population", "4"]


def stored_generations(run: Path) -> list[tuple[int, int]]:
    """(generation, evaluations) of every committed generation, in order."""
    with sqlite3.connect(f"file:{run / 'run.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT generation, evaluations FROM generations "
                          "ORDER BY generation").fetchall()
    db.close()
    return rows


def progress_lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_progress_log_follows_the_store_through_a_resume_and_stderr_is_plain_lines(
        tmp_path: Path) -> None:
    run = tmp_path / "r"
    first = subprocess.run([*EVO, "run", *RUN, "--generations", "1000", "--time-budget", "5s",
                            "--out", str(run), "--cache", str(tmp_path / "c.sqlite")],
                           env=ENV, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "\r" not in first.stderr and "\x1b" not in first.stderr  # no bar redraws
    lines = progress_lines(run)
    stored = stored_generations(run)
    assert [(p["generation"], p["evaluations"]) for p in lines] == stored
    assert len(stored) >= 2
    said = [line for line in first.stderr.splitlines() if line.startswith("generation ")]
    assert len(said) == len(stored)  # one plain line per generation
    for p in lines:
        assert p["session"] == 1 and p["generations_left"] > 0
        assert 0 <= p["budget_left_s"] <= 5
        # 1000 generations take longer than 5 s: the budget's time left is the ETA
        assert p["eta_s"] == p["budget_left_s"]
        assert f"eta {round(p['eta_s'])}s" in said[p["generation"]]

    second = subprocess.run([*EVO, "resume", str(run), "--generations", "2",
                             "--time-budget", "1h"],
                            env=ENV, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "\r" not in second.stderr
    lines = progress_lines(run)
    assert [(p["generation"], p["evaluations"]) for p in lines] == stored_generations(run)
    assert len(lines) == len(stored) + 2
    resumed = lines[-2:]
    assert [p["session"] for p in resumed] == [2, 2]
    assert [p["generations_left"] for p in resumed] == [1, 0]
    assert resumed[-1]["eta_s"] == 0.0 and resumed[0]["eta_s"] < resumed[0]["budget_left_s"]


def test_at_a_terminal_the_bar_counts_candidates_with_an_eta(tmp_path: Path) -> None:
    run = tmp_path / "r"
    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = subprocess.Popen([*EVO, "run", *RUN, "--generations", "2", "--out", str(run),
                                "--cache", str(tmp_path / "c.sqlite")],
                               env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's last writer has gone
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert process.wait(timeout=600) == 0
    process.stdout.close()
    text = shown.decode(errors="replace")
    assert "/12 candidates [" in text and "eta " in text, text
    assert "12/12 candidates" in text and "gen 2 best" in text
    assert len(progress_lines(run)) == 3


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    return make_analytic_run(tmp_path_factory.mktemp("made") / "r")


@pytest.mark.parametrize("kind", ["symlink", "hard link", "fifo"])
def test_resume_writes_no_progress_log_through_a_link_or_special_file(
        made: Path, tmp_path: Path, kind: str, capsys) -> None:
    run = copy_run(made, tmp_path / "r")
    victim = tmp_path / "v.txt"
    victim.write_text("precious\n")
    log = run / "progress.jsonl"
    log.unlink(missing_ok=True)
    if kind == "symlink":
        log.symlink_to(victim)
    elif kind == "hard link":
        os.link(victim, log)
    else:
        os.mkfifo(log)
    sessions = session_count(run)
    assert main(["resume", str(run), "--generations", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "progress.jsonl" in err, err
    assert victim.read_text() == "precious\n"
    assert session_count(run) == sessions


def test_run_writes_no_progress_log_through_a_link(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    out.mkdir()
    victim = tmp_path / "v.txt"
    victim.write_text("precious\n")
    (out / "progress.jsonl").symlink_to(victim)
    assert main(["run", *RUN, "--generations", "1", "--out", str(out),
                 "--cache", str(tmp_path / "c.sqlite"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "progress.jsonl" in err, err
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in out.iterdir()) == ["progress.jsonl"]
