"""Speedups at kept accuracy: a benchmark's original and discovered network, trained.

    .venv/bin/python -m benchmarks.kept_accuracy train BENCH [BENCH ...] [--epochs E]
        [--seeds 0,1] [--threads N] [--hours H]
    .venv/bin/python -m benchmarks.kept_accuracy table BENCH [BENCH ...] [--epochs E]
    .venv/bin/python -m benchmarks.kept_accuracy archive BENCH [BENCH ...] [--epochs E]

BENCH is a folder `evo bench --model M --time-budget T` made (or a run folder): the
network trained is the one `evo confirm` found fastest to keep accuracy at the short
protocol, if the search was confirmed (SEARCH/confirm-e*/confirm.json), else the
bench's discovered network (result.json's individual, the search's best legal one); its
rows measured in one sitting come from result.json, or from BENCH/bench-K.json when the
confirmed individual K is not the one result.json benched. `train` trains the
original network and that one with `evo train`'s recipe (SGD, momentum 0.9, weight
decay 5e-4, cosine from lr 0.1, crop + flip, batch 128, bf16) for E epochs (default 50;
5 is the calibration study's short protocol) on the 45,000 training images of
../shared/data/cifar10-train-jpeg.zip, scored on the validation split val5000-seed0.
A training with the same settings already in another results file of
benchmarks/results (the reference resnet20, the calibration study's original) is
reused, not repeated. Results are appended to benchmarks/results/kept-accuracy.jsonl
as each finishes; trainings live in runs/kept-accuracy/ and `archive` packs the
unfinished ones into benchmarks/checkpoints/kept-accuracy.tar.xz.

`table` prints, per BENCH, the milliseconds of the program-only row and the discovered
row, the speedups over the program-only search and the best peer, FLOPs, and the
validation accuracy of both networks (mean over the seeds trained so far).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.training_queue import (
    REPO,
    SHARED_DATA,
    Job,
    archive_unfinished,
    finished,
    mean_and_spread,
    run_queue,
)
from evo.analysis import load_run
from evo.training import TrainSettings

RESULTS_DIR = REPO / "benchmarks" / "results"
RESULTS = RESULTS_DIR / "kept-accuracy.jsonl"
RUNS = REPO / "runs" / "kept-accuracy"
ARCHIVE = REPO / "benchmarks" / "checkpoints" / "kept-accuracy.tar.xz"
ORIGINAL: dict[str, Any] = {"schema": 1, "layers": {}}


class BenchError(Exception):
    """A BENCH folder that is not a finished `evo bench --model` folder."""


def bench_facts(bench: Path) -> dict[str, Any]:
    """What a bench says: model, the network to train (individual and neural genome) and
    the rows measured for it.

    BENCH is an `evo bench --model` folder (its search in BENCH/search) or a run folder.
    The network is the one `evo confirm` found fastest to keep accuracy (`confirmed`),
    else the bench's discovered network (result.json's individual). Its rows come from
    BENCH/result.json when that benched this individual, else from BENCH/bench-K.json
    (`evo bench --run SEARCH --id K --json`)."""
    search = bench / "search" if (bench / "search" / "run.sqlite").is_file() else bench
    if not (search / "run.sqlite").is_file():
        raise BenchError(f"{bench}: no result.json and no search (not an `evo bench` or "
                         f"run folder)")
    result_path = bench / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    kept = confirmed(search)
    if kept is None and result is None:
        raise BenchError(f"{bench}: no result.json and no `evo confirm` summary naming a "
                         f"network that keeps accuracy")
    individual = kept if kept is not None else int(result["individual"])
    if result is None or int(result["individual"]) != individual:
        rows = bench / f"bench-{individual}.json"
        if not rows.is_file():
            raise BenchError(f"{bench}: no rows for individual {individual}; make them with "
                             f"`evo bench --run {search} --id {individual} --json > {rows}`")
        result = json.loads(rows.read_text())
    genome = load_run(search).individual(individual).genome.neural
    return {"bench": bench.name, "model": result["model"], "individual": individual,
            "confirmed": kept is not None, "genome": genome.to_json(), "result": result}


def confirmed(search: Path) -> int | None:
    """The individual the newest `evo confirm` summary in `search` (confirm-e*/
    confirm.json, its default folders) names fastest to keep accuracy, or None."""
    summaries = sorted(search.glob("confirm-e*/confirm.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(summaries):
        kept = json.loads(path.read_text()).get("fastest_kept")
        if isinstance(kept, int):
            return kept
    return None


def settings(model: str, genome: dict[str, Any], data: str, epochs: int,
             seed: int) -> TrainSettings:
    """The recipe every training of this script uses."""
    return TrainSettings(model, genome, data, epochs, seed=seed, precision="bf16")


def jobs(benches: list[dict[str, Any]], data: str, epochs: int, seeds: list[int]) -> list[Job]:
    """Original and discovered of every bench (`bench_facts`), each seed, originals
    first (once per model)."""
    out: dict[str, Job] = {}
    for facts in benches:
        model = facts["model"]
        for seed in seeds:
            name = f"{model}-original-e{epochs}-s{seed}"
            out[name] = Job(name, settings(model, ORIGINAL, data, epochs, seed),
                            (model, "original"))
    for facts in benches:
        for seed in seeds:
            name = f"{facts['model']}-{facts['bench']}-{facts['individual']}-e{epochs}-s{seed}"
            out[name] = Job(name, settings(facts["model"], facts["genome"], data, epochs,
                                           seed), (facts["model"], facts["bench"]))
    return list(out.values())


def same_training(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Settings equal in everything but the folder the data archive lies in (archives
    are told apart by file name; each result's `evaluated_on` names its hash)."""
    def key(s: dict[str, Any]) -> dict[str, Any]:
        s = TrainSettings.from_saved(s)
        return {**s, "data": Path(str(s["data"]).split(":", 1)[-1]).name}
    return key(a) == key(b)


def trained_elsewhere(job: Job) -> dict[str, Any] | None:
    """A finished training with the job's settings in another results file."""
    return _find(job, [p for p in sorted(RESULTS_DIR.glob("*.jsonl")) if p != RESULTS])


def trained(job: Job) -> dict[str, Any] | None:
    """The job's finished result: trained by this script (under any job name, e.g. a
    discovered network that is the original) or reused from another results file."""
    return _find(job, [RESULTS]) or trained_elsewhere(job)


def _find(job: Job, files: list[Path]) -> dict[str, Any] | None:
    wanted = job.settings.to_json()
    for path in files:
        for row in finished(path).values():
            if "settings" in row and same_training(row["settings"], wanted):
                return row
    return None


def to_train(queue: list[Job]) -> list[Job]:
    """The jobs left: not trained anywhere, and each set of settings once."""
    out, seen = [], []
    for job in queue:
        if trained(job) is None and not any(same_training(job.settings.to_json(), s)
                                             for s in seen):
            out.append(job)
            seen.append(job.settings.to_json())
    return out


def table(benches: list[dict[str, Any]], data: str, epochs: int, seeds: list[int]) -> str:
    """The accuracy-checked speedup table, one row per bench, as Markdown."""
    all_jobs = jobs(benches, data, epochs, seeds)
    rows = {job.name: row for job in all_jobs if (row := trained(job)) is not None}

    def accuracy(prefix: str) -> str:
        values = [100 * rows[j.name]["accuracy"] for j in all_jobs
                  if j.name.startswith(prefix) and j.name in rows]
        if not values:
            return "not trained yet"
        mean, spread = mean_and_spread(values)
        return f"{mean:.2f} %" + (f" ({spread:.2f}, {len(values)} seeds)"
                                  if len(values) > 1 else "")

    lines = [f"Validation accuracy on val5000-seed0 after {epochs} epochs of `evo train`'s "
             "recipe (bf16). Speedups: the bench's head-to-head race (the median of its "
             "rounds' ratios) where it ran one, else the ratio of the rows' ms.", "",
             "| bench | program-only ms | discovered ms | speedup | vs best peer | "
             "MFLOPs original / discovered | accuracy original | accuracy discovered |",
             "|---|---|---|---|---|---|---|---|"]
    for facts in benches:
        result, model = facts["result"], facts["model"]
        by_name = {row["name"]: row for row in result["rows"]}
        program, found = by_name.get("tvm_program_only"), by_name.get("tvm_discovered")
        # the head-to-head race's speedups where the bench ran one (evo.bench.head_to_head)
        speed = (result.get("head_to_head") or {}).get("speedup") or result.get("speedup", {})
        vs_peer = speed.get("vs_best_peer")
        discovered = f"{model}-{facts['bench']}-{facts['individual']}-e{epochs}-"
        lines.append(
            f"| {facts['bench']} (#{facts['individual']}"
            f"{', confirmed' if facts.get('confirmed') else ''}) | {_ms(program)} | {_ms(found)} | "
            f"{_x(speed.get('vs_program_only'))} | {_x(vs_peer)} | "
            f"{_mflops(program)} / {_mflops(found)} | "
            f"{accuracy(f'{model}-original-e{epochs}-')} | "
            f"{accuracy(discovered)} |")
    return "\n".join(lines)


def _ms(row: dict[str, Any] | None) -> str:
    return "-" if not row or row.get("ms") is None else f"{row['ms']:.3f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _mflops(row: dict[str, Any] | None) -> str:
    return "-" if not row or row.get("flops") is None else f"{row['flops'] / 1e6:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("train", "table", "archive"),
                        help="train the networks, print their table, or pack unfinished "
                             "trainings into benchmarks/checkpoints/")
    parser.add_argument("benches", nargs="+", type=Path, metavar="BENCH",
                        help="a folder `evo bench --model M --time-budget T` made")
    parser.add_argument("--epochs", type=int, default=50,
                        help="epochs of the full recipe (default 50; 5 is the short protocol)")
    parser.add_argument("--seeds", default="0", help="comma-separated (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="training threads (default 2)")
    parser.add_argument("--hours", type=float, help="train: start no job after this long")
    parser.add_argument("--data", type=Path, default=SHARED_DATA,
                        help="the CIFAR-10 ImageFolder zip (default "
                             "../shared/data/cifar10-train-jpeg.zip)")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        data = f"imagefolder:{args.data.resolve()}"
        benches = [bench_facts(bench) for bench in args.benches]
        queue = jobs(benches, data, args.epochs, seeds)
    except (BenchError, ValueError) as error:
        print(f"kept_accuracy: {error}", file=sys.stderr, flush=True)
        return 2
    if args.action == "table":
        print(table(benches, data, args.epochs, seeds))
        return 0
    if args.action == "archive":
        count = archive_unfinished(queue, RESULTS, RUNS, ARCHIVE)
        print(f"{ARCHIVE}: {count} unfinished training(s)")
        return 0
    if not args.data.exists():
        print(f"kept_accuracy: {args.data}: no such archive", file=sys.stderr, flush=True)
        return 2
    run_queue(to_train(queue), RESULTS, RUNS, args.threads,
              after_job=lambda *_: archive_unfinished(queue, RESULTS, RUNS, ARCHIVE),
              stop_after=None if args.hours is None else args.hours * 3600)
    print(table(benches, data, args.epochs, seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
