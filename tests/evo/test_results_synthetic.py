"""status and lineage on a hand-built run store whose answers are known exactly: a
finished run, a run another process holds, and a run whose process was killed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from evo.analysis.attribution import attribute, format_attribution
from evo.analysis.lineage import ancestry, format_lineage, lineage_dot
from evo.analysis.snapshot import load_run
from evo.analysis.status import format_status, run_status
from evo.cli import main
from evo.search.config import RunConfig
from evo.search.selection import best_feasible, pareto_front
from evo.store.records import Checkpoint, Evaluation, Individual
from evo.store.run_store import RunStore
from genomes.genome import NetworkGenome

ROOT = Path(__file__).resolve().parents[2]


def genome(layers: dict[str, list[dict]]) -> NetworkGenome:
    return NetworkGenome.from_json({"schema": 1, "layers": layers})


TILE = {"gene": "tile", "axis": "co", "factor": 8}
VEC = {"gene": "vectorize", "axis": "ow"}
SPLIT = {"gene": "split_channels", "groups": [1, 2]}
GROUP = {"gene": "group", "groups": 2}

# id: (generation, parents, operator, genome, latency, fisher, violation)
PLAN = {
    1: (0, (), "original", {}, 1.0, 10.0, 0.0),
    2: (0, (1,), "initial:program", {"conv1": [TILE]}, 0.8, 10.0, 0.0),
    3: (0, (1,), "initial:any", {"layer1.conv1": [SPLIT]}, 0.7, 11.0, 0.0),
    4: (0, (1,), "initial:any", {"conv2": [GROUP]}, None, 8.0, 0.3),
    5: (1, (2,), "insert", {"conv1": [TILE, VEC]}, 0.6, 10.0, 0.0),
    6: (1, (5, 3), "crossover_slots+insert",
        {"conv1": [TILE, VEC], "layer1.conv1": [SPLIT], "conv2": [TILE]}, 0.4, 11.0, 0.0),
    7: (2, (4,), "insert", {"conv2": [GROUP, TILE]}, 0.5, 12.0, 0.0),
    8: (2, (6,), "perturb", {"conv1": [{**TILE, "factor": 4}, VEC],
                             "layer1.conv1": [SPLIT], "conv2": [TILE]}, 0.45, 11.0, 0.0),
}


RNG_STATE = np.random.default_rng(0).bit_generator.state  # a store must hold a real one


def make_run(folder: Path, sessions: str = "completed") -> Path:
    """A three-generation run of `tiny`; `sessions` is completed, killed or open."""
    folder.mkdir(parents=True)
    RunConfig(model="tiny", population=4, generations=2, evaluator="analytic",
              capacity="fisher").save(folder)  # PLAN holds Fisher Potentials
    store = RunStore.create(folder)
    session = store.start_session(os.getpid(), "evo run --model tiny")
    individuals, evaluations = {}, {}
    population: list[int] = []
    for generation in range(3):
        new = []
        for ident, (gen, parents, operator, layers, ms, fisher, violation) in PLAN.items():
            if gen != generation:
                continue
            individual = Individual(ident, genome(layers), gen, parents, operator, {})
            slots = {"conv1": {"ms": ms / 2}, "conv2": {"ms": ms / 2}} if ms else {}
            evaluations[ident] = Evaluation(ms, fisher, violation, None, slots)
            individuals[ident] = individual
            new.append(individual)
        population = (population + [i.id for i in new])[-4:]
        everyone = list(individuals)
        front = pareto_front(everyone, evaluations)
        best = best_feasible(everyone, evaluations)
        best_ms = evaluations[best].latency_ms
        log = {"generation": generation, "new": len(new), "legal_share": 1.0,
               "evaluations": len(everyone), "best_id": best, "best_ms": best_ms,
               "original_ms": 1.0, "speedup": 1.0 / best_ms, "front_size": len(front),
               "elapsed_s": 10.0 * (generation + 1)}
        store.commit_generation(new, {i.id: evaluations[i.id] for i in new},
                                Checkpoint(generation, tuple(population), tuple(front), best,
                                           RNG_STATE, max(individuals) + 1, len(everyone),
                                           10.0 * (generation + 1), log))
    if sessions == "completed":
        store.end_session(session, "completed")
    store.close()
    return folder


def test_snapshot_front_best_and_status_of_a_finished_run(tmp_path: Path) -> None:
    snap = load_run(make_run(tmp_path / "run"))
    assert snap.best == 6 and set(snap.front) == {6, 7}
    status = run_status(snap)
    assert status["generation"] == 2 and status["best_ms"] == 0.4
    assert status["speedup"] == pytest.approx(2.5) and status["front_size"] == 2
    assert status["state"] == "completed" and not status["running"]
    assert status["legal_share"] == pytest.approx(7 / 8)
    text = format_status(status)
    assert "2.50x faster than the original (1.0000 ms)" in text
    assert "last stop    completed" in text and "resume" not in text
    assert "generation   2 of 2" in text
    # a run resumed past its configured generations says so, not "5 of 2"
    assert "generation   5 (past the configured 2: resumed for more)" in format_status(
        {**status, "generation": 5})


def test_lineage_steps_record_gene_edits_and_values(tmp_path: Path) -> None:
    snap = load_run(make_run(tmp_path / "run"))
    steps = ancestry(snap, 8)
    assert [s.id for s in steps] == [1, 2, 5, 6, 8]
    assert steps[3].others == (3,)
    assert sorted(c.describe() for c in steps[3].changes) == [
        "conv2: + tile(co, 8)", "layer1.conv1: + split_channels(1,2)"]
    assert [c.describe() for c in steps[4].changes] == ["conv1: ~ tile(co, 8) -> tile(co, 4)"]
    text = format_lineage(snap, steps)
    assert "#8     gen 2   perturb from #6" in text
    assert "latency 0.4000 ms -> 0.4500 ms, Fisher 11 -> 11" in text
    assert "#6     gen 1   crossover_slots+insert from #5 x #3" in text


def test_attribution_splits_each_step_between_the_genes_it_edited(tmp_path: Path) -> None:
    snap = load_run(make_run(tmp_path / "run"))
    result = attribute(snap)
    saved = {s.name: round(s.saved_ms, 6) for s in result.shares.values()}
    # line of 6: tile 0.2, vectorize 0.2, then split_channels + tile share 0.2;
    # line of 7 through the illegal #4: group + tile share 1.0 - 0.5.
    assert saved == {"tile": 0.55, "vectorize": 0.2, "split_channels": 0.1, "group": 0.25}
    assert result.total_saved_ms == pytest.approx((1.0 - 0.4) + (1.0 - 0.5))
    assert result.by_kind()["neural"] == pytest.approx(0.35)
    table = format_attribution(result)
    assert "Seq1 split_channels" in table and "grouping" in table


def test_dot_output_structure_and_rendering(tmp_path: Path) -> None:
    snap = load_run(make_run(tmp_path / "run"))
    dot = lineage_dot(snap, ancestry(snap, 8))
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    for edge in ("n1 -> n2", "n2 -> n5", "n5 -> n6", "n3 -> n6 [style=dashed", "n6 -> n8"):
        assert edge in dot
    assert 'n3 [label="#3 (gen 0)' in dot
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed")
    done = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout and "#8 (gen 2)" in done.stdout


def test_killed_run_reports_the_dead_pid_and_resume_command(tmp_path: Path) -> None:
    folder = make_run(tmp_path / "run", sessions="killed")
    status = run_status(load_run(folder))
    assert status["state"] == "crashed"
    assert status["last_stop"]["reason"] == \
        f"crashed or killed (pid {os.getpid()} no longer running)"
    assert f"evo resume {folder}" in format_status(status)


def test_status_while_another_process_holds_the_run(tmp_path: Path, capsys) -> None:
    folder = make_run(tmp_path / "run", sessions="open")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from evo.store.lock import RunLock; "
         "RunLock(sys.argv[1]); print('locked', flush=True); time.sleep(60)", str(folder)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["status", str(folder), "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["running"] and status["pid"] == holder.pid
        assert status["state"] == "running" and status["last_stop"] is None
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert run_status(load_run(folder))["state"] == "crashed"


@pytest.mark.parametrize("argv", [
    ["status", "{missing}"], ["lineage", "{missing}"], ["lineage", "{run}", "--id", "99"],
    ["status", "{notrun}"], ["lineage", "{notrun}"], ["status", "{corrupt}"],
])
def test_bad_paths_and_ids_give_one_line_and_exit_2(tmp_path: Path, capsys, argv) -> None:
    run = make_run(tmp_path / "run")
    (tmp_path / "notrun").mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text((run / "config.json").read_text())
    (corrupt / "run.sqlite").write_bytes(b"not a database" * 100)
    paths = {"missing": tmp_path / "nope", "run": run, "notrun": tmp_path / "notrun",
             "corrupt": corrupt}
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evo ")


@pytest.mark.parametrize("command", ["status", "lineage", "report", "export", "train"])
def test_every_command_has_a_helpful_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: evo {command}" in text and len(text.splitlines()) > 5
    from evo.cli import COMMANDS

    module = __import__(f"evo.commands.{COMMANDS[command]}", fromlist=["HELP"])
    assert module.HELP.split()[0] in text


def test_run_killed_before_its_store_existed(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "early"
    folder.mkdir()
    RunConfig(model="tiny").save(folder)
    status = run_status(load_run(folder))
    assert status["state"] == "not started" and status["generation"] is None
    assert main(["lineage", str(folder)]) == 2
    assert "no legal individual yet" in capsys.readouterr().err
