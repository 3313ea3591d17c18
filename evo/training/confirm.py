"""Which of a run's fastest networks keep the original's accuracy, confirmed by training.

A capacity check is a cheap filter: on resnet20 no measure we studied accepts only
networks that keep accuracy (benchmarks/RESULTS.md, the calibration study), so a
search's fastest legal network may have lost some, and a search drives straight to
the edge of what is legal. `confirm` trains the original network (a few seeds, for
the noise) and then the run's candidates with one short recipe, to find the fastest
that keeps the original's accuracy within a tolerance: by bisection along the front
by default (`walk`), fastest first on request.

Candidates (`candidates`): among the run's legal, measured individuals, the fastest
one of each neural genome (program genes do not change what is learned), kept when
no faster candidate has at least its capacity (the latency-capacity front), fastest
first, down to the original network's fastest schedule, which ends the list: it
keeps accuracy by definition, so nothing slower is worth training.

Trainings are named by neural genome (`original-sS`, `n<hash>-sS`), so a rerun, also
after the search went on, reuses every training already done; each appends one line
to `OUT/results.jsonl` (`evo.training.queue`) and a stopped one resumes from its
last epoch. `OUT/confirm.json` holds the verdicts. Trainings with exactly a job's
settings in other results files (another run's confirm, a benchmark's study) can be
adopted instead of repeated (`reusable`, `adopt`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evo.analysis.snapshot import RunSnapshot
from evo.errors import UsageError
from evo.training.data import TrainData
from evo.training.queue import Job, finished, mean_and_spread, run_queue
from evo.training.trainer import TrainSettings
from genomes.genome import NetworkGenome

RESULTS, SUMMARY = "results.jsonl", "confirm.json"


@dataclass(frozen=True)
class Candidate:
    """A run's fastest individual of one neural genome."""

    ident: int
    latency_ms: float
    capacity: float | None
    neural: NetworkGenome

    @property
    def is_original(self) -> bool:
        return not self.neural.layers

    def job_stem(self) -> str:
        return "original" if self.is_original else f"n{self.neural.hash()[:12]}"

    def changes(self) -> str:
        """The neural genes, counted: `depthwise() x6, group(2) x2`."""
        counts = Counter(gene.label() for layer in self.neural.layers.values()
                         for gene in layer.genes)
        return ", ".join(f"{label} x{n}" if n > 1 else label
                         for label, n in counts.most_common()) or "none (the original)"


def candidates(snap: RunSnapshot) -> list[Candidate]:
    """The candidates to train, fastest first (see the module docstring)."""
    fastest: dict[str, Candidate] = {}
    for ident, evaluation in snap.evaluations.items():
        individual = snap.individuals.get(ident)
        if individual is None or not evaluation.feasible:
            continue
        candidate = Candidate(ident, float(evaluation.latency_ms), evaluation.fisher,
                              individual.genome.neural)
        key = candidate.neural.hash()
        held = fastest.get(key)
        if held is None or (candidate.latency_ms, ident) < (held.latency_ms, held.ident):
            fastest[key] = candidate
    out: list[Candidate] = []
    most = -math.inf
    for candidate in sorted(fastest.values(), key=lambda c: (c.latency_ms, c.ident)):
        capacity = candidate.capacity
        known = capacity is not None and math.isfinite(capacity)
        if candidate.is_original or not known or capacity > most:
            out.append(candidate)
        if known:
            most = max(most, capacity)
        if candidate.is_original:
            break
    return out


@dataclass(frozen=True)
class Plan:
    """What to train: the recipe (`base`, the original network at seed 0), the seeds of
    the original and of each candidate, the tolerance in accuracy points, and at most
    how many candidates besides the original to judge (None: no limit)."""

    base: TrainSettings
    original_seeds: tuple[int, ...]
    seeds: tuple[int, ...]
    tolerance: float
    max_candidates: int | None

    def jobs(self, candidate: Candidate) -> list[Job]:
        seeds = self.original_seeds if candidate.is_original else self.seeds
        settings = replace(self.base, genome=candidate.neural.to_json())
        return [Job(f"{candidate.job_stem()}-s{seed}", replace(settings, seed=seed),
                    (f"individual {candidate.ident}",)) for seed in seeds]


def trained(plan: Plan, candidate: Candidate, out: Path) -> list[float] | None:
    """The candidate's accuracies (one per seed) if all are in OUT/results.jsonl, else
    None; a row under the same name with other settings is a UsageError."""
    rows = finished(out / RESULTS)
    values = []
    for job in plan.jobs(candidate):
        row = rows.get(job.name)
        if row is None:
            return None
        if row.get("settings") != job.settings.to_json():
            raise UsageError(f"{out}: {job.name} was trained with other settings (another "
                             "--epochs, --data or recipe); give another --out")
        if not _is_accuracy(row.get("accuracy")):
            raise UsageError(f"{out / RESULTS}: {job.name} has no accuracy in [0, 1] "
                             f"({row.get('accuracy')!r}); remove its line to train it again")
        values.append(float(row["accuracy"]))
    return values


def _is_accuracy(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0.0 <= value <= 1.0)


def reusable(files: list[Path]) -> list[dict[str, Any]]:
    """The finished trainings in other results files (`--reuse`): JSON lines with a
    name, settings and an accuracy; a missing or unreadable file is a UsageError."""
    rows = []
    for path in files:
        if not path.is_file():
            raise UsageError(f"--reuse {path}: no such results file")
        try:
            found = finished(path)
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"--reuse {path}: unreadable ({error})") from None
        rows += [{**row, "reused_from": f"{path}:{row['name']}"} for row in found.values()
                 if isinstance(row.get("settings"), dict) and _is_accuracy(row.get("accuracy"))]
    return rows


def adopt(jobs: list[Job], out: Path, rows: list[dict[str, Any]]) -> int:
    """Append to OUT/results.jsonl, under the job's name, a reusable training with
    exactly a job's settings, for every job not finished there; returns how many."""
    done, adopted = finished(out / RESULTS), 0
    for job in jobs:
        if job.name in done:
            continue
        match = _match(job, rows)
        if match is None:
            continue
        out.mkdir(parents=True, exist_ok=True)
        with (out / RESULTS).open("a") as handle:
            handle.write(json.dumps({**match, "name": job.name,
                                     "settings": job.settings.to_json()}) + "\n")
        adopted += 1
    return adopted


def _match(job: Job, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first of `rows` trained with exactly the job's settings (older rows' missing
    fields read as the values they meant, `TrainSettings.from_saved`)."""
    wanted = job.settings.to_json()
    return next((row for row in rows
                 if TrainSettings.from_saved(row["settings"]) == wanted), None)


def verdict(accuracies: list[float], original: list[float], tolerance: float) -> bool:
    """Kept: the mean accuracy is at least the original's mean minus `tolerance` points."""
    mean, _ = mean_and_spread(accuracies)
    floor = mean_and_spread(original)[0] - tolerance / 100
    return mean >= floor - 1e-12


ORDERS = ("bisect", "fastest")


def walk(count: int, judge: Callable[[int], bool | None], order: str = "bisect",
         budget: int | None = None, train_all: bool = False) -> list[int]:
    """Judge candidates 0..count-1 (fastest first; `count` stands for the original,
    kept by definition) in `order` until the fastest kept one is found, at most `budget`
    of them; returns the indices judged. `bisect` assumes accuracy rises along the
    front (each slower candidate has more capacity) and halves the interval between
    the fastest candidate not yet ruled out and the fastest known to keep accuracy;
    `fastest` tries them in order; `train_all` judges every one (up to `budget`),
    fastest first. `judge` returns None when it cannot tell (stop)."""
    if order not in ORDERS:
        raise UsageError(f"--order {order!r}: choose {' or '.join(ORDERS)}")
    limit = count if budget is None else min(budget, count)
    judged: list[int] = []
    if train_all or order == "fastest":
        for index in range(count):
            if len(judged) >= limit:
                break
            kept = judge(index)
            if kept is None:
                break
            judged.append(index)
            if kept and not train_all:
                break
        return judged
    low, high = 0, count
    while low < high and len(judged) < limit:
        middle = (low + high) // 2
        kept = judge(middle)
        if kept is None:
            break
        judged.append(middle)
        low, high = (low, middle) if kept else (middle + 1, high)
    return judged


def confirm(snap: RunSnapshot, plan: Plan, out: Path, threads: int,
            loaded: dict[tuple[str, int, int], TrainData],
            on_verdict: Callable[[dict[str, Any]], None] | None = None,
            train_all: bool = False, dry_run: bool = False,
            reuse: list[dict[str, Any]] | None = None,
            order: str = "bisect") -> dict[str, Any]:
    """Train the original, then candidates of the front (`walk` in `order`, at most
    `plan.max_candidates`) until the fastest that keeps accuracy is found (every one
    with `train_all`; none with `dry_run`, which reports what is known already);
    returns the summary, also written to OUT/confirm.json after every verdict (unless
    `dry_run`). `on_verdict` gets each candidate's row as it is judged; trainings in
    `reuse` (`reusable`) with a job's exact settings are adopted, not repeated."""
    listed = candidates(snap)
    original = next((c for c in listed if c.is_original), None)
    if original is None:
        original = Candidate(1, math.nan, None, NetworkGenome())
    tried = [c for c in listed if not c.is_original]

    def train(candidate: Candidate) -> list[float] | None:
        values = trained(plan, candidate, out)
        if values is None and dry_run:  # what --reuse would give, nothing written
            matches = [_match(job, reuse or []) for job in plan.jobs(candidate)]
            if all(matches):
                values = [float(row["accuracy"]) for row in matches]
        if values is None and not dry_run:
            adopt(plan.jobs(candidate), out, reuse or [])
            run_queue(plan.jobs(candidate), out / RESULTS, out, threads, loaded=loaded)
            values = trained(plan, candidate, out)
        return values

    summary = _summary(snap, plan, listed, original, tried)
    reference = train(original)
    summary["original"]["accuracies"] = reference
    if reference is None:
        return summary

    def judge(index: int) -> bool | None:
        values = train(tried[index])
        if values is None:
            return None
        row = summary["candidates"][index]
        row.update(accuracies=values, kept=verdict(values, reference, plan.tolerance))
        _publish(summary, out, dry_run)
        if on_verdict is not None:
            on_verdict(row)
        return row["kept"]

    summary["order"] = "fastest, all" if train_all else order
    walk(len(tried), judge, order, plan.max_candidates, train_all)
    _publish(summary, out, dry_run)
    return summary


def _summary(snap: RunSnapshot, plan: Plan, listed: list[Candidate], original: Candidate,
             tried: list[Candidate]) -> dict[str, Any]:
    base = snap.original.fisher if snap.original is not None else None

    def row(c: Candidate) -> dict[str, Any]:
        ratio = (c.capacity / base if c.capacity is not None and base
                 and math.isfinite(base) and math.isfinite(c.capacity) else None)
        return {"individual": c.ident, "latency_ms": c.latency_ms, "capacity": c.capacity,
                "capacity_ratio": ratio, "neural": c.neural.to_json(),
                "changes": c.changes(), "accuracies": None, "kept": None}

    return {"run": str(snap.folder), "model": snap.config.model,
            "recipe": {k: v for k, v in plan.base.to_json().items() if k not in
                       ("genome", "seed")},
            "original_seeds": list(plan.original_seeds), "seeds": list(plan.seeds),
            "tolerance_points": plan.tolerance, "front": len(listed) - 1,
            "original": row(original), "candidates": [row(c) for c in tried],
            "fastest_kept": None}


def _publish(summary: dict[str, Any], out: Path, dry_run: bool) -> None:
    """Name the fastest network known to keep accuracy (the original's fastest schedule
    when no candidate has) and write the summary."""
    kept = [r for r in summary["candidates"] if r["kept"]]
    fallback = summary["original"]
    if not kept and math.isfinite(fallback["latency_ms"]):
        kept = [fallback]
    best = min(kept, key=lambda r: r["latency_ms"]) if kept else None
    summary["fastest_kept"] = None if best is None else best["individual"]
    if not dry_run:
        out.mkdir(parents=True, exist_ok=True)
        (out / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
