"""`evo bench` on a finished run: every row measured end to end, checked against PyTorch."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.training_queue import SHARED_DATA, Job
from evo.analysis import load_run
from evo.bench_report import format_table
from evo.bench_searches import (
    BENCH_GENERATIONS,
    MEASUREMENT_CACHE,
    MIN_REMAINING_S,
    run_bench_searches,
    search_configs,
    search_seconds,
)
from evo.cli import main
from evo.networks import load_network
from evo.search.config import RunConfig


def test_bench_rows_and_speedups(tmp_path: Path, capsys, monkeypatch) -> None:
    run = tmp_path / "run"
    assert main(["run", "--model", "tiny", "--evaluator", "analytic", "--population", "6",
                 "--generations", "1", "--capacity", "flops", "--threshold", "0.3",
                 "--out", str(run), "--cache", str(tmp_path / "cache.sqlite"),
                 "--quiet"]) == 0
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "openvino", None)  # a peer whose package is missing
    argv = ["bench", "--run", str(run), "--metaschedule-trials", "0",
            "--peers", "onnxruntime,openvino", "--race-rounds", "3"]
    assert main([*argv, "--json"]) == 1  # a row has an error; every other row still ran
    result = json.loads(capsys.readouterr().out)
    names = [row["name"] for row in result["rows"]]
    assert names[:4] == ["tvm_program_only", "torch_eager_original", "onnxruntime_original",
                         "openvino_original"]
    assert names[-4:] == ["tvm_discovered", "torch_eager_discovered",
                          "onnxruntime_discovered", "openvino_discovered"]
    for row in result["rows"]:
        if row["name"].startswith("openvino"):
            assert row["error"] == ("OpenVINO: openvino is not installed "
                                    "(pip install -e '.[bench]')") and row["ms"] is None
            continue
        assert row["error"] is None and row["ms"] > 0
        if row["name"].startswith(("tvm", "onnxruntime")) or row["name"] == "blockswap":
            assert row["agreement"]["matches"]  # end to end equals PyTorch
    kinds = {row["name"]: row["network"] for row in result["rows"]}
    assert kinds["onnxruntime_original"] == "original" == kinds["tvm_program_only"]
    assert kinds["onnxruntime_discovered"] == "discovered" == kinds["tvm_discovered"]
    assert result["rows"][2]["peer"]["settings"]["intra_op_num_threads"] == 2
    ms = {row["name"]: row["ms"] for row in result["rows"]}
    assert result["speedup"]["vs_program_only"] == ms["tvm_program_only"] / ms["tvm_discovered"]
    assert result["speedup"]["vs_metaschedule"] is None
    on_original = [row for row in result["rows"]
                   if row["network"] == "original" and row["error"] is None]
    fastest = min(on_original, key=lambda row: row["ms"])
    assert len(on_original) == 3 and result["best_peer"]["name"] == fastest["name"]
    assert result["best_peer"]["ms"] == fastest["ms"]
    assert result["speedup"]["vs_best_peer"] == fastest["ms"] / ms["tvm_discovered"]
    original = result["rows"][0]
    assert original["capacity_ratio"] == 1.0 and result["capacity"]["measure"] == "flops"
    for row in result["rows"]:  # the run's own measure: FLOPs, as a ratio
        assert row["capacity_ratio"] == pytest.approx(row["flops"] / original["flops"])
    tried = result["blockswap"]["tried"]
    assert tried and ("blockswap" in names) == any(c["legal"] for c in tried)
    for candidate in tried:  # legal by the run's rule: at least 0.3 x the original's FLOPs
        assert candidate["legal"] == (candidate["flops"] >= 0.3 * original["flops"])
    assert result["search_hosts"] == [result["host"]]  # searched and benched here

    # the head-to-head race: TVM rows and ONNX Runtime, each from the file it was timed from
    raced = result["head_to_head"]
    racers = [name for name in names if name.startswith(("tvm", "onnxruntime", "blockswap"))]
    assert [c["name"] for c in raced["contenders"]] == racers and not raced["errors"]
    for row in result["rows"]:
        kept = Path(row["artifact"]) if row["artifact"] else None
        assert (kept is not None and kept.is_file()) == (row["name"] in racers)
        assert kept is None or kept.parent == run / "bench" / "networks"
    times = {c["name"]: c["ms"] for c in raced["contenders"]}
    assert all(len(ms) == 3 and min(ms) > 0 for ms in times.values())
    ratios = sorted(t / d for t, d in zip(times[raced["best_peer"]], times["tvm_discovered"],
                                          strict=True))
    assert raced["speedup"]["vs_best_peer"] == pytest.approx(ratios[1])  # the median round
    assert raced["best_peer"] in ("tvm_program_only", "onnxruntime_original")

    table = format_table(result).splitlines()
    assert any(line.startswith("head to head: 3 interleaved rounds") for line in table)
    assert (f"  speedup vs_best_peer ({raced['best_peer']}): "
            f"{raced['speedup']['vs_best_peer']:.2f}x") in " ".join(table)
    assert any(line.endswith(" params   flops  what") for line in table)  # its measure
    assert f"best peer: {fastest['name']}, {fastest['ms']:.3f} ms ({fastest['what']})" in table
    assert f"speedup vs_best_peer: {result['speedup']['vs_best_peer']:.2f}x" in table
    assert sum("error: OpenVINO: openvino is not installed" in line for line in table) == 2


def test_bench_bad_run_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["bench", "--run", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err


def test_bench_runs_both_searches_then_reuses_them(tmp_path: Path, capsys,
                                                   monkeypatch) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "--model", "tiny", "--time-budget", "6s", "--population", "4",
            "--metaschedule-trials-per-task", "0", "--peers", "none", "--race-rounds", "3",
            "--out", str(out), "--quiet", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "ran search search" in captured.err and "ran program-only search" in captured.err
    result = json.loads(captured.out)
    assert json.loads((out / "result.json").read_text()) == result
    full, program = RunConfig.load(out / "search"), RunConfig.load(out / "program-only")
    assert full.neural and not program.neural and full.time_budget_s == 6.0
    for folder, config in ((out / "search", full), (out / "program-only", program)):
        cache = folder / MEASUREMENT_CACHE  # each search measured into its own cache
        assert config.cache == "{run}/measurements.sqlite"
        assert config.cache_path(folder) == str(folder / MEASUREMENT_CACHE)
        with sqlite3.connect(cache) as db:
            assert db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] > 0
    assert load_run(out / "search").sessions[-1]["reason"] == "time budget"
    program_best = load_run(out / "program-only").individual(
        load_run(out / "program-only").resolve(None)).genome
    assert not program_best.neural.layers  # row 1 is the original network, only scheduled
    assert result["rows"][0]["what"].startswith("original, best of program-only run")
    gflops = result["conv_gflops"]
    assert gflops["tvm"] > 0 and gflops["torch"] > 0
    assert gflops["ratio"] == gflops["tvm"] / gflops["torch"]
    assert len(gflops["slots"]) == len(load_network("tiny").slots)

    assert result["search_hosts"] == [result["host"]]  # both searches ran here
    with sqlite3.connect(out / "program-only" / "run.sqlite") as db:  # as if it ran elsewhere
        db.execute("UPDATE sessions SET host = json_set(host, '$.mcpu', 'znver9')")

    sessions = len(load_run(out / "search").sessions)
    # a second call measures again but does not search again; the table this time
    assert main([arg for arg in argv if arg != "--json"]) == 0
    captured = capsys.readouterr()
    assert "reused search search" in captured.err
    notes = [line for line in captured.out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "znver9" in notes[0]  # the program-only run's machine
    inside = [line for line in captured.out.splitlines() if "inside: convs" in line]
    assert len(inside) == sum(row["name"].startswith("tvm_") for row in result["rows"])
    assert "ms inside the network" in captured.out

    # the research scripts of benchmarks/ read the same folder
    from benchmarks import cold_vs_warm, profile_rows

    assert profile_rows.main([str(out), "group", "2"]) == 0
    printed = capsys.readouterr().out
    names = [line.split()[0] for line in printed.splitlines() if not line.startswith(" ")]
    assert names == ["template", "program-only", "search", "blockswap"]
    assert "error" not in printed and printed.count(" conv_") >= 4
    assert cold_vs_warm.main([str(out)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [row[0] for row in rows] == ["template", "program-only", "search"]
    assert all(float(row[-7]) > 0 and float(row[-6]) > 0 for row in rows)  # warm, cold
    assert profile_rows.main([str(out), "depthwise", "2"]) == 2
    assert cold_vs_warm.main([str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    kept_accuracy_reads_the_bench(out, tmp_path / "results", capsys, monkeypatch)
    assert len(load_run(out / "search").sessions) == sessions


def kept_accuracy_reads_the_bench(out: Path, results: Path, capsys, monkeypatch) -> None:
    """benchmarks.kept_accuracy names the bench's discovered network, reuses a training
    with the same settings from another results file (found wherever the archive lies)
    and tabulates the bench's rows beside the accuracies."""
    from benchmarks import kept_accuracy

    results.mkdir()
    monkeypatch.setattr(kept_accuracy, "RESULTS_DIR", results)
    monkeypatch.setattr(kept_accuracy, "RESULTS", results / "kept-accuracy.jsonl")
    data = f"imagefolder:/here/{SHARED_DATA.name}"  # what `table` reads by default
    facts = [kept_accuracy.bench_facts(out)]
    jobs = kept_accuracy.jobs(facts, data, 3, [0])
    chosen = json.loads((out / "result.json").read_text())["individual"]
    assert [job.name for job in jobs] == ["tiny-original-e3-s0", f"tiny-bench-{chosen}-e3-s0"]
    assert jobs[1].settings.genome == load_run(out / "search").individual(
        chosen).genome.neural.to_json()
    elsewhere = kept_accuracy.settings("tiny", kept_accuracy.ORIGINAL,
                                       f"imagefolder:/there/{SHARED_DATA.name}", 3,
                                       0).to_json()
    (results / "reference.jsonl").write_text(
        json.dumps({"name": "x", "settings": elsewhere, "accuracy": 0.612}) + "\n")
    assert kept_accuracy.trained_elsewhere(jobs[0])["accuracy"] == 0.612
    other_epochs = kept_accuracy.jobs(facts, data, 4, [0])[0]
    assert kept_accuracy.trained_elsewhere(other_epochs) is None
    depthwise = {"schema": 1, "layers": {"conv2": [{"gene": "depthwise", "piece": None}]}}
    neural = Job("d", kept_accuracy.settings("tiny", depthwise, data, 3, 0))
    assert kept_accuracy.trained_elsewhere(neural) is None
    # a 6-second search with the default check may end on the original network: then
    # its training is the original's
    same = not jobs[1].settings.genome["layers"]
    assert (kept_accuracy.trained_elsewhere(jobs[1]) is not None) == same
    left = kept_accuracy.to_train([*jobs, neural, neural])
    assert [job.name for job in left] == ([] if same else [jobs[1].name]) + ["d"]
    assert kept_accuracy.main(["table", str(out), "--epochs", "3"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    ms = {r["name"]: r["ms"] for r in json.loads((out / "result.json").read_text())["rows"]}
    assert row.startswith(f"| bench (#{chosen}) | {ms['tvm_program_only']:.3f} | ")
    assert row.endswith("| 61.20 % | 61.20 % |" if same else "| 61.20 % | not trained yet |")
    assert kept_accuracy.main(["table", str(out / "search")]) == 2
    assert "no result.json" in capsys.readouterr().err
    kept_accuracy_takes_the_confirmed_network(out, chosen, capsys)


def kept_accuracy_takes_the_confirmed_network(out: Path, chosen: int, capsys) -> None:
    """With an `evo confirm` summary in the search, the network it names is trained, and
    its rows come from BENCH/bench-K.json when result.json benched another one."""
    from benchmarks import kept_accuracy

    snap = load_run(out / "search")
    other = next(i for i in sorted(snap.evaluations) if i != chosen)
    summary = out / "search" / "confirm-e5" / "confirm.json"
    summary.parent.mkdir()
    summary.write_text(json.dumps({"fastest_kept": other}))
    with pytest.raises(kept_accuracy.BenchError, match=f"--id {other} --json > .*bench-{other}"):
        kept_accuracy.bench_facts(out)
    result = json.loads((out / "result.json").read_text())
    (out / f"bench-{other}.json").write_text(json.dumps({**result, "individual": other}))
    facts = kept_accuracy.bench_facts(out)
    assert facts["individual"] == other and facts["confirmed"]
    assert facts["genome"] == snap.individual(other).genome.neural.to_json()
    assert kept_accuracy.main(["table", str(out), "--epochs", "3"]) == 0
    assert f"| bench (#{other}, confirmed) |" in capsys.readouterr().out
    summary.write_text(json.dumps({"fastest_kept": None}))  # none kept: the bench's own
    assert kept_accuracy.bench_facts(out)["individual"] == chosen


def test_bench_resumes_a_killed_search_with_the_budget_left(tmp_path: Path) -> None:
    """The budget's accounting across a SIGKILL does not depend on the evaluator; the
    analytic one keeps a generation short whatever the machine's load."""
    out, budget = tmp_path / "bench", 12.0
    configs = search_configs("tiny", None, budget, 0, 4, out)
    search = replace(configs["search"], evaluator="analytic")
    child = subprocess.Popen(
        [sys.executable, "-m", "evo", "run", "--model", "tiny", "--time-budget", f"{budget}s",
         "--generations", str(BENCH_GENERATIONS), "--population", "4",
         "--evaluator", "analytic", "--out", str(out / "search"), "--quiet"],
        stderr=subprocess.PIPE, text=True)
    for line in child.stderr:  # kill it once its first generation is stored
        if line.startswith("generation 0:"):
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    spent = search_seconds(out / "search")
    assert 0 < spent < budget - MIN_REMAINING_S, spent
    done = run_bench_searches({"search": search}, out, quiet=True)
    assert done[0].ran
    snap = load_run(out / "search")
    assert len(snap.sessions) == 2 and snap.sessions[-1]["reason"] == "time budget"
    # the budget, not twice it (elapsed is stored just before the commit, checked after)
    assert budget - 1 <= search_seconds(out / "search") < budget + 5


def test_bench_refuses_a_folder_of_another_search(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    (out / "search").mkdir(parents=True)
    RunConfig(model="tiny", time_budget_s=60.0, generations=BENCH_GENERATIONS).save(
        out / "search")
    assert main(["bench", "--model", "tiny", "--time-budget", "30s", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "time_budget_s 60.0" in err


@pytest.mark.parametrize("argv", [
    ["bench"],
    ["bench", "--model", "tiny"],
    ["bench", "--model", "tiny", "--run", "x"],
    ["bench", "--model", "tiny", "--time-budget", "soon"],
    ["bench", "--model", "nonet", "--time-budget", "1m"],
    ["bench", "--run", "x", "--time-budget", "1m"],
    ["bench", "--run", "x", "--peers", "onnxruntime,tflite"],
    ["bench", "--run", "x", "--metaschedule-time-budget", "soon"],
    ["bench", "--run", "x", "--metaschedule-trials-per-task", "-1"],
])
def test_bench_bad_options_are_one_line(argv, tmp_path: Path, capsys) -> None:
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("evo bench: error:")
