"""The search loop in-process on the `tiny` network with the analytic evaluator:
seeds, lineage, feasibility, duplicate reuse, strategies, determinism, bad run folders."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evo.cli import main
from evo.errors import UsageError
from evo.search.config import RunConfig
from evo.search.engine import Budget, Search
from evo.search.evaluate import build_context
from evo.search.selection import best_feasible, standings
from evo.store.run_store import RunStore


def _search(tmp_path: Path, name: str, **overrides) -> tuple[Search, RunStore]:
    options = {"model": "tiny", "evaluator": "analytic", "population": 12, "generations": 4,
               "cache": str(tmp_path / "cache.sqlite"), **overrides}
    config = RunConfig(**options)
    folder = tmp_path / name
    folder.mkdir()
    store = RunStore.create(folder)
    context = build_context(config)
    search = Search(config, store, context.variation, context.evaluate, chunk=context.chunk)
    reason = search.run(Budget(config.generations + 1), lambda: None)
    assert reason == "completed"
    return search, store


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine")
    return _search(tmp, "nsga2")


def test_generation_zero_is_original_seeds_and_mutants(finished) -> None:
    from evo.search.variation import SEED_SCHEDULES, TEMPLATE_SCHEDULE

    _, store = finished
    individuals = store.individuals()
    first = [i for i in individuals.values() if i.generation == 0]
    seeds = len(SEED_SCHEDULES)
    assert first[0].id == 1 and first[0].operator == "original" and not first[0].genome.layers
    assert [i.operator for i in first[1:1 + seeds]] == [f"initial:{name}"
                                                        for name in SEED_SCHEDULES]
    assert set(first[1].genome.layers.values()) == {TEMPLATE_SCHEDULE}
    for seed, schedule in zip(first[2:1 + seeds], list(SEED_SCHEDULES.values())[1:],
                              strict=True):
        layers = seed.genome.layers
        assert sorted(seed.detail["slots"]) == sorted(s for s, g in layers.items()
                                                      if g == schedule)
        assert seed.detail["slots"] and set(layers) == set(first[1].genome.layers)
        assert seed.parents == (1,)
    # Winograd only where it applies: tiny's 3x3 convs at stride 1
    winograd = next(i for i in first if i.operator == "initial:winograd")
    assert sorted(winograd.detail["slots"]) == ["conv1", "layer1.conv2"]
    assert {i.operator for i in first[1 + seeds:]} <= {"initial:program", "initial:any"}
    assert "initial:program" in {i.operator for i in first}
    assert first[1].parents == (1,)
    assert all(i.parents == (2,) for i in first[1 + seeds:])  # mutants build on the template
    template = first[1].genome
    for mutant in first[1 + seeds:]:  # ... so at most `initial_genes` (4) slots differ
        changed = [sid for sid, layer in template.layers.items()
                   if layer != mutant.genome.layer(sid)]
        assert 1 <= len(changed) <= 4
    program = [i for i in first if i.operator == "initial:program"]
    assert all(not i.genome.neural.layers for i in program)


def test_generation_one_starts_with_the_seeds_fastest_per_slot(finished) -> None:
    """The combination of the seeds takes each slot from the seed that measured fastest
    on it (from the cache, no new measurement) and is faster than every seed; under the
    analytic model more than one seed contributes."""
    from evo.search.variation import SEED_SCHEDULES

    _, store = finished
    individuals, evaluations = store.individuals(), store.evaluations()
    seeds = {name: 2 + i for i, name in enumerate(SEED_SCHEDULES)}
    assert [individuals[i].operator for i in seeds.values()] == [
        f"initial:{name}" for name in seeds]
    combined = [i for i in individuals.values() if i.operator == "seeds:fastest"]
    assert len(combined) == 1 and combined[0].generation == 1
    child = combined[0]
    assert child.parents == tuple(seeds.values())
    picked = child.detail["slots"]
    assert len(set(picked.values())) >= 2
    for slot, name in picked.items():
        assert child.genome.layer(slot) == individuals[seeds[name]].genome.layer(slot)
        others = [evaluations[s].slots[slot]["ms"] for s in seeds.values()]
        assert evaluations[child.id].slots[slot]["ms"] == min(others)
        assert evaluations[child.id].slots[slot]["cached"]
    assert evaluations[child.id].latency_ms < min(evaluations[s].latency_ms
                                                  for s in seeds.values())


def test_fastest_per_slot_needs_two_program_only_seeds() -> None:
    from evo.search.variation import CHANNEL_SCHEDULE, TEMPLATE_SCHEDULE, fastest_per_slot
    from genomes.genome import LayerGenome, NetworkGenome

    a = NetworkGenome({"x": TEMPLATE_SCHEDULE, "y": TEMPLATE_SCHEDULE})
    b = NetworkGenome({"x": CHANNEL_SCHEDULE, "y": CHANNEL_SCHEDULE})
    genome, chosen = fastest_per_slot([(a, {"x": 1.0, "y": 2.0}), (b, {"x": 2.0, "y": 1.0})])
    assert genome == NetworkGenome({"x": TEMPLATE_SCHEDULE, "y": CHANNEL_SCHEDULE})
    assert chosen == [0, 1]
    assert fastest_per_slot([(a, {"x": 1.0, "y": 1.0}), (b, {"x": 2.0, "y": 2.0})]) is None
    assert fastest_per_slot([(a, {"x": 1.0, "y": None}), (b, {"x": 2.0, "y": 1.0})]) is None
    assert fastest_per_slot([(a, {"x": 1.0, "y": 2.0})]) is None
    neural = NetworkGenome({"x": LayerGenome.from_json([{"gene": "depthwise"}]),
                            "y": CHANNEL_SCHEDULE})
    assert fastest_per_slot([(a, {"x": 1.0, "y": 2.0}),
                             (neural, {"x": 2.0, "y": 1.0})]) is None


def test_children_record_parents_operator_and_gene(finished) -> None:
    _, store = finished
    individuals = store.individuals()
    children = [i for i in individuals.values()
                if i.generation > 0 and i.operator != "seeds:fastest"]  # tested above
    assert children
    for child in children:
        assert child.parents and all(p < child.id for p in child.parents)
        steps = child.operator.split("+")
        assert set(steps) <= {"crossover_slots", "crossover_one_point", "insert", "delete",
                              "replace", "perturb", "swap"}
        if steps[-1] in ("insert", "replace", "perturb"):
            mutation = child.detail["mutation"]
            assert mutation["slot"] in {s for s in child.genome.layers} | {mutation["slot"]}
            assert "added" in mutation
        if steps[0].startswith("crossover"):
            assert len(child.parents) == 2


def test_evaluations_are_values_and_front_is_feasible(finished) -> None:
    search, store = finished
    evaluations = store.evaluations()
    individuals = store.individuals()
    assert set(evaluations) == set(individuals)
    for e in evaluations.values():
        if e.latency_ms is not None:
            assert e.legal and e.violation == 0.0 and math.isfinite(e.latency_ms)
        if e.violation is not None and e.violation > 0:
            assert e.latency_ms is None  # illegal candidates are not measured
    checkpoint = store.last_checkpoint()
    assert checkpoint.generation == 4
    assert all(evaluations[i].feasible for i in checkpoint.front)
    assert checkpoint.best == best_feasible(list(individuals), evaluations)
    assert len(checkpoint.population) == 12
    log = checkpoint.logbook
    assert log["original_ms"] == evaluations[1].latency_ms
    assert log["best_ms"] <= log["original_ms"]


def test_duplicates_reuse_results(finished) -> None:
    search, store = finished
    individuals = store.individuals()
    hashes = [i.hash for i in individuals.values()]
    assert search.state.evaluation_count == len(set(hashes))
    evaluations = store.evaluations()
    by_hash: dict[str, float | None] = {}
    for ident, individual in individuals.items():
        latency = evaluations[ident].latency_ms
        assert by_hash.setdefault(individual.hash, latency) == latency


def test_feasible_beats_infeasible_and_smaller_violation_wins(finished) -> None:
    _, store = finished
    evaluations = store.evaluations()
    ids = list(evaluations)
    ranks = standings(ids, evaluations)
    feasible = [i for i in ids if evaluations[i].feasible]
    infeasible = [i for i in ids if not evaluations[i].feasible]
    for f in feasible:
        for i in infeasible:
            assert ranks[f].key() < ranks[i].key()
    ordered = sorted(infeasible, key=lambda i: ranks[i].key())
    penalties = [evaluations[i].penalty for i in ordered]
    assert penalties == sorted(penalties)


@pytest.mark.parametrize("strategy", ["aging", "ga"])
def test_other_strategies_run(tmp_path: Path, strategy: str) -> None:
    search, store = _search(tmp_path, strategy, strategy=strategy, generations=2)
    assert store.last_checkpoint().generation == 2
    assert store.last_checkpoint().best is not None


def test_same_seed_same_run_other_seed_differs(tmp_path: Path, finished) -> None:
    _, reference = finished
    again, store = _search(tmp_path, "again")
    other, other_store = _search(tmp_path, "other", seed=5)

    def genomes(s: RunStore) -> list[str]:
        return [i.genome.canonical() for i in s.individuals().values()]

    assert genomes(store) == genomes(reference)
    assert genomes(other_store) != genomes(reference)


def test_bad_run_folders_are_refused_in_one_line(tmp_path: Path, capsys) -> None:
    assert main(["resume", str(tmp_path / "missing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(RunConfig().to_json()))
    (folder / "run.sqlite").write_bytes(b"this is not a database" * 100)
    assert main(["resume", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not an evo run store" in err and len(err.splitlines()) == 1
    (folder / "config.json").write_text("{not json")
    assert main(["resume", str(folder)]) == 2
    assert "config.json: unreadable" in capsys.readouterr().err
    for argv, message in [
        (["run", "--out", str(tmp_path / "x"), "--population", "1"], "--population"),
        (["run", "--out", str(tmp_path / "x"), "--time-budget", "soon"], "--time-budget"),
        (["run", "--out", str(tmp_path / "x"), "--model", "nope"], "nope"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_config_fisher_bn_default_and_runs_from_before_the_option(tmp_path):
    assert RunConfig().fisher_bn == "running"
    from evo.capacity.fisher import BN_MODES
    from evo.search.config import FISHER_BN_MODES

    assert set(FISHER_BN_MODES) == set(BN_MODES)  # the CLI offers what capacity measures
    RunConfig(fisher_bn="batch").save(tmp_path)
    assert RunConfig.load(tmp_path).fisher_bn == "batch"
    legacy = RunConfig().to_json()
    del legacy["fisher_bn"]  # a run made before the option measured with batch statistics
    assert RunConfig.from_json(legacy).fisher_bn == "batch"
    with pytest.raises(UsageError, match="--fisher-bn"):
        RunConfig(fisher_bn="eval")
    older = RunConfig(capacity="flops").to_json()
    assert RunConfig.from_json(older).capacity == "flops"
    del older["capacity"]  # made before --capacity existed: the Fisher Potential, whatever
    assert RunConfig.from_json(older).capacity == "fisher"  # the default is today


def test_capacity_is_computed_on_every_local_core(tmp_path) -> None:
    from evo.measure.evaluator import available_cores

    context = build_context(RunConfig(model="tiny", evaluator="analytic", capacity="fisher",
                                      cache=str(tmp_path / "cache.sqlite")))
    try:
        assert context.evaluate.fisher.threads == available_cores()
    finally:
        context.close()


def test_neural_searches_spread_neural_genes_program_only_searches_never() -> None:
    import numpy as np

    from evo.networks import load_network
    from evo.search.evaluate import network_view
    from evo.search.variation import Variation
    from genomes.genes import SplitRows
    from genomes.genome import LayerGenome, NetworkGenome

    view = network_view(load_network("tiny"))
    parent = NetworkGenome({"layer1.conv2": LayerGenome((SplitRows(2),))})
    spreading = Variation(view, neural=True, share_rate=0.0, spread_rate=1.0)
    rng = np.random.default_rng(0)
    changes = [spreading.mutate(rng, parent) for _ in range(10)]
    spread = [c for c in changes if c.operator == "spread"]
    assert spread and all(c.detail["to"] == ["conv1"] for c in spread)  # 3x3/s1, 32x32
    assert all(c.genome.layer("conv1") == parent.layer("layer1.conv2") for c in spread)
    program_only = Variation(view, neural=False, share_rate=0.0, spread_rate=1.0)
    assert all(program_only.mutate(rng, parent).operator != "spread" for _ in range(10))


def test_a_stop_mid_generation_drops_it_and_its_evaluation_count(tmp_path: Path) -> None:
    config = RunConfig(model="tiny", evaluator="analytic", population=8, generations=4,
                       cache=str(tmp_path / "cache.sqlite"))
    folder = tmp_path / "run"
    folder.mkdir()
    store = RunStore.create(folder)
    context = build_context(config)
    search = Search(config, store, context.variation, context.evaluate, chunk=2)
    polls = []

    def stop_in_generation_1() -> str | None:
        polls.append(search.state.generation)
        # generation 0 is stored; stop after generation 1 has evaluated one chunk
        return "interrupted (test)" if polls.count(0) >= 3 else None

    assert search.run(Budget(config.generations + 1), stop_in_generation_1) == \
        "interrupted (test)"
    assert search.state.generation == 0
    stored = store.load().checkpoints[-1]
    assert stored.generation == 0
    assert search.state.evaluation_count == stored.evaluations  # the summary's count
    store.close()
