"""Issue 26, item 1: during a run, a failure of the machinery is not a candidate's result.

Real failures: a C++ compiler that stops working between two sessions of a run (a
script in front of g++ that allows a set number of links), a build worker killed
with SIGKILL while it builds, a run whose candidates are all illegal.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from evo.measure import LayerJob, make_evaluator
from evo.measure.build import FAULT_ENV, BuildRequest, build_task
from evo.target import make_target, target_key
from genomes.genome import LayerGenome
from genomes.spec import LayerSpec

ROOT = Path(__file__).resolve().parents[2]
SPEC = LayerSpec(8, 8, 8, 8, 3, 1)


def evo(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "evo", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=900)


def rationed_compiler(folder: Path) -> Path:
    """g++ behind a script: while a file `budget` holds N, N more links work; at 0 the
    compiler fails as a broken toolchain does. Without the file it always works."""
    script = folder / "g++"
    script.write_text(f"""#!/bin/sh
budget="$(dirname "$0")/budget"
if [ -f "$budget" ]; then
  left=$(cat "$budget")
  if [ "$left" -le 0 ]; then echo "g++: fatal error: the compiler broke" >&2; exit 1; fi
  echo $((left - 1)) > "$budget"
fi
exec {shutil.which("g++")} "$@"
""")
    script.chmod(0o755)
    return script


def stored(folder: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{folder / 'run.sqlite'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def test_a_compiler_that_breaks_stops_the_run_resumably(tmp_path):
    compiler = rationed_compiler(tmp_path)
    env = {"CXX": str(compiler), "EVO_RETRY_DELAYS": "0.2,0.2"}
    first = evo("run", "--model", "tiny", "--population", "2", "--generations", "0",
                "--out", "r", "--cache", "r/c.sqlite", "--quiet", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    (tmp_path / "budget").write_text("1")  # the next session's preflight link, then broken
    broken = evo("resume", "r", "--generations", "1", "--quiet", cwd=tmp_path, env=env)
    assert broken.returncode == 3, (broken.stdout, broken.stderr)
    last = broken.stderr.strip().splitlines()[-1]
    assert last.startswith("error: builds keep failing, not because of a candidate: "
                           "cannot build: a tiny reference conv failed: export: "), last
    assert "the compiler broke" in last and "Traceback" not in broken.stderr
    assert "stopped: machinery failed after generation 0" in broken.stdout
    assert "resume with: evo resume r" in broken.stdout
    run = tmp_path / "r"
    assert stored(run, "SELECT MAX(generation) FROM generations") == [(0,)]
    assert stored(run, "SELECT MAX(generation) FROM individuals") == [(0,)]
    assert stored(run, "SELECT reason FROM sessions ORDER BY rowid")[-1] == ("machinery failed",)

    (tmp_path / "budget").unlink()  # the compiler is fixed: the resume measures generation 1
    fixed = evo("resume", "r", "--generations", "1", "--quiet", cwd=tmp_path, env=env)
    assert fixed.returncode == 0, fixed.stderr
    assert stored(run, "SELECT MAX(generation) FROM generations") == [(1,)]
    errors = stored(run, "SELECT error FROM evaluations WHERE error IS NOT NULL")
    assert not any("compiler broke" in e for (e,) in errors)


def test_a_failed_builds_error_keeps_its_stderr_tail(tmp_path, monkeypatch):
    from evo.measure.build import blame_unclear

    script = tmp_path / "cc"
    script.write_text("#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 "
                      "21 22 23 24 25; do echo \"ld: line $i\" >&2; done\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("CXX", str(script))
    result = build_task(BuildRequest(SPEC.to_json(), [], target_key(make_target()), 60))
    summary, *tail = result.error.splitlines()
    assert summary == "export: RuntimeError: Compilation error: ld: line 1"
    assert tail[0] == "stderr of the build (last lines):"
    assert "  | ld: line 25" in tail and "  | ld: line 7" in tail and "  | ld: line 5" not in tail
    assert blame_unclear(result.error)


def test_a_build_worker_killed_mid_build_is_retried_not_stored(monkeypatch, capsys):
    hang = LayerGenome.from_json([{"gene": "tile", "axis": "ow", "factor": 2}])
    monkeypatch.setenv(FAULT_ENV, f"{hang.hash()}=hang")
    evaluator = make_evaluator("tvm", jobs=2, build_timeout_s=6)
    evaluator.retry_delays_s = (0.2,)
    jobs = [LayerJob(SPEC, LayerGenome()), LayerJob(SPEC, hang)]
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(results=evaluator.measure(jobs)))
    try:
        thread.start()
        deadline = time.monotonic() + 300
        victim = None
        while victim is None:  # the worker whose build child has been running for 2 s
            assert time.monotonic() < deadline and thread.is_alive()
            for worker in psutil.Process().children():
                if "LokyProcess" in " ".join(worker.cmdline()) and any(
                        time.time() - c.create_time() > 2 for c in worker.children()):
                    victim = worker
            time.sleep(0.2)
        os.kill(victim.pid, signal.SIGKILL)
        thread.join(timeout=300)
    finally:
        evaluator.close()
    good, hung = out["results"]
    assert good.ok, good.error
    assert hung.error == "build timed out after 6 s"  # its own result, after the retry
    said = capsys.readouterr().err
    assert "the measuring machinery failed (build worker pool failed: " in said
    assert "retrying in 0.2 s" in said
    assert not psutil.pid_exists(victim.pid) or victim.status() == psutil.STATUS_ZOMBIE


def test_a_run_that_measured_nothing_does_not_exit_0(tmp_path):
    result = evo("run", "--model", "tiny", "--evaluator", "analytic", "--population", "2",
                 "--generations", "0", "--threshold", "2", "--out", "r", "--cache",
                 "r/c.sqlite", "--quiet", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: nothing could be measured in this run (no candidate was legal)")
