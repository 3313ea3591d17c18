"""The rows of `evo bench`: one run's best network against the baselines and the peers a
user would deploy instead, end to end (the printed table is `evo.bench_table`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from evo.analysis import load_run
from evo.bench.blockswap import blockswap_baseline, fisher_violation
from evo.bench.conv_throughput import conv_throughput, total_gflops
from evo.bench.end_to_end import EndToEnd, genome_end_to_end, torch_end_to_end
from evo.bench.head_to_head import DISCOVERED, ROUNDS, contenders, race
from evo.bench.metaschedule import (
    TRIALS_PER_TASK,
    UNBOUNDED_TRIALS,
    Tuning,
    metaschedule_end_to_end,
)
from evo.bench.peers import DEFAULT_PEERS, describe_peer, peer_end_to_end
from evo.bench.timing import set_tvm_threads
from evo.bench_table import format_table
from evo.capacity.measures import search_measure
from evo.errors import UsageError
from evo.host import describe_host, distinct_hosts
from evo.networks import load_network, transform_network
from evo.networks.trust import check_model_code
from evo.search.variation import TEMPLATE_SCHEDULE, template_genome
from evo.target import make_target
from genomes.genome import NetworkGenome

__all__ = ["benchmark", "best_peer", "format_table", "speedups"]


def benchmark(run: Path, ident: int | None, program_run: Path | None,
              trials_per_task: int | None, threads: int, out: Path | None,
              metaschedule_budget_s: float | None = None,
              peers: Sequence[str] = DEFAULT_PEERS, trust_model_code: bool = False,
              race_rounds: int = ROUNDS) -> dict:
    """Every row as a dict (name, network, ms, spread, error, and network facts), the
    best peer (the fastest correct row on the original network), speedups of the
    discovered network against rows 1, 2, 3 and the best peer, this machine (`host`)
    and the machines the search ran on (`search_hosts`). `trials_per_task` 0 skips
    MetaSchedule, None takes its default (`evo.bench.metaschedule`); `peers` are names
    of `evo.bench.peers.PEERS`, each measured on the original and the discovered
    network. Model code the run's config.json names (not a zoo model) is imported
    only with `trust_model_code` (`evo.networks.trust`; else UsageError).

    The networks of the TVM rows and ONNX-based peers are kept in `out` (default
    RUN/bench) under `networks/`, and raced head to head for `race_rounds` interleaved
    rounds (`evo.bench.head_to_head`; 0 skips, and so does a discovered row that
    failed): `head_to_head` in the result (else None), whose speedups are the headline
    figures."""
    set_tvm_threads(threads)
    snap = load_run(run)
    config = snap.config
    check_model_code(config.model, f"{run}/config.json", trust_model_code)
    chosen = snap.resolve(ident)
    genome = snap.individual(chosen).genome
    network = load_network(config.model, config.input_shape, seed=config.seed)
    target = make_target(config.target)
    # the run's own capacity check: the facts' ratio and the BlockSwap-style baseline's
    # legality are judged as the search judged its candidates
    fisher = search_measure(config, network, threads=threads)
    original_fisher = fisher.original().total

    def facts(g: NetworkGenome) -> dict:
        transform = transform_network(network, g, plans_only=True)
        total = fisher.of(g).total
        return {"flops": sum(p.flops for p in transform.plans.values()),
                "params": sum(p.params for p in transform.plans.values()),
                "capacity_ratio": total / original_fisher if total and original_fisher else None}

    rows: list[dict] = []
    work = out or run / "bench"
    kept = work / "networks"

    def bench_genome(name: str, g: NetworkGenome) -> EndToEnd:
        return genome_end_to_end(network, g, target, threads, config.seed,
                                 export_to=kept / f"{name}.so")

    def add(name: str, what: str, result: EndToEnd, g: NetworkGenome | None,
            kind: str) -> dict:
        row = {"name": name, "network": kind, "what": what, **result.to_json()}
        row["spread"] = result.latency.spread if result.latency else None
        row["processes"] = result.latency.processes if result.latency else None
        row.update(facts(g) if g is not None else {})
        rows.append(row)
        return row

    def add_peers(kind: str, which: str, module, g: NetworkGenome) -> None:
        for peer in peers:
            result = peer_end_to_end(peer, module, network.input_shape, threads,
                                     save_onnx=kept / f"{peer}_{kind}.onnx")
            add(f"{peer}_{kind}", f"{which}, {describe_peer(peer, result.peer)}, "
                f"{threads} thread(s)", result, g, kind)

    program_genome, program_what, program_sessions = _program_only(network, program_run,
                                                                  config.model)
    add("tvm_program_only", program_what, bench_genome("tvm_program_only", program_genome),
        program_genome, "original")
    if trials_per_task != 0:
        result, tuning = metaschedule_end_to_end(
            config.model, network.input_shape, work / "metaschedule", trials_per_task,
            metaschedule_budget_s, threads=threads, seed=config.seed)
        row = add("tvm_metaschedule", _metaschedule_what(tuning, trials_per_task,
                                                         metaschedule_budget_s),
                  result, NetworkGenome(), "original")
        row["tuning"] = tuning.to_json() if tuning is not None else None
    original = network.module.eval()
    add("torch_eager_original", f"original, PyTorch eager, {threads} thread(s)",
        torch_end_to_end(original, network.input_shape, threads), NetworkGenome(), "original")
    add_peers("original", "original", original, NetworkGenome())
    choice = blockswap_baseline(network, fisher_violation(fisher, config.threshold, config.scope),
                                program=TEMPLATE_SCHEDULE)
    blockswap = {"tried": [c.to_json() for c in choice.tried],
                 "chosen": choice.best.to_json() if choice.best is not None else None}
    if choice.best is not None:
        add("blockswap", f"uniform {choice.best.gene}({choice.best.factor}) on "
            f"{len(choice.best.slots)} slots + template schedule",
            bench_genome("blockswap", choice.best.genome), choice.best.genome, "blockswap")
    add("tvm_discovered", f"individual {chosen} of {run}",
        bench_genome("tvm_discovered", genome), genome, "discovered")
    discovered = transform_network(network, genome, seed=config.seed).module.eval()
    add("torch_eager_discovered", f"individual {chosen}, PyTorch eager, {threads} thread(s)",
        torch_end_to_end(discovered, network.input_shape, threads), genome, "discovered")
    add_peers("discovered", f"individual {chosen}", discovered, genome)
    best = best_peer(rows)
    raced, entrants = None, contenders(rows)
    if race_rounds > 0 and DISCOVERED in [c.name for c in entrants] and len(entrants) > 1:
        print(f"evo bench: racing {len(entrants)} rows head to head, {race_rounds} rounds",
              file=sys.stderr, flush=True)
        raced = race(entrants, network.input_shape, threads, race_rounds,
                     seed=config.seed).to_json()
    return {"model": config.model, "individual": chosen, "threads": threads,
            "host": describe_host(),
            "search_hosts": [h["host"] for h in distinct_hosts([*snap.sessions,
                                                                *program_sessions])],
            "capacity": {"measure": config.capacity, "threshold": config.threshold,
                         "scope": config.scope, "fisher_bn": config.fisher_bn},
            "rows": rows, "best_peer": best,
            "speedup": speedups(rows, best), "head_to_head": raced, "blockswap": blockswap,
            "conv_gflops": _conv_gflops(transform_network(network, genome, plans_only=True).plans,
                                        target, threads)}


def _metaschedule_what(tuning: Tuning | None, trials_per_task: int | None,
                       budget_s: float | None) -> str:
    """Row 2's description: trials per task, cost model and budget (as asked, when the
    tuning failed)."""
    per_task = tuning.trials_per_task if tuning is not None else trials_per_task
    if per_task is None:
        per_task = UNBOUNDED_TRIALS if budget_s else TRIALS_PER_TASK
    trials = "no trial limit" if per_task >= UNBOUNDED_TRIALS else f"{per_task} trials/task"
    what = f"original, MetaSchedule, {trials}"
    if tuning is not None:
        what += f", {tuning.cost_model} cost model"
    return what + (f", {budget_s:.0f} s budget" if budget_s else "")


def _conv_gflops(plans, target, threads: int) -> dict:
    """The discovered convs' GFLOP/s, each program alone in TVM and the same plan in
    PyTorch eager, summed over the network (total FLOPs over total time)."""
    slots = conv_throughput(plans, target, threads)
    tvm_gflops, torch_gflops = total_gflops(slots)
    return {"tvm": tvm_gflops, "torch": torch_gflops,
            "ratio": tvm_gflops / torch_gflops if tvm_gflops and torch_gflops else None,
            "slots": [slot.to_json() for slot in slots]}


def _program_only(network, program_run: Path | None,
                  model: str) -> tuple[NetworkGenome, str, list[dict]]:
    """Row 1's genome, its description, and the sessions of the run it came from (none
    when no program-only run is given and the template schedule stands in)."""
    if program_run is None:
        return (template_genome(network.slots),
                "original, template schedule on every conv (no program-only run given)", [])
    snap = load_run(program_run)
    if snap.config.model != model:
        raise UsageError(f"--program-run {program_run}: model {snap.config.model!r}, the run "
                         f"benchmarked is {model!r}")
    best = snap.resolve(None)
    genome = snap.individual(best).genome
    if genome.neural.layers:
        raise UsageError(f"--program-run {program_run}: its best has neural genes; "
                         f"use a run made with --program-only")
    return genome, f"original, best of program-only run {program_run} (#{best})", snap.sessions


def best_peer(rows: list[dict]) -> dict | None:
    """The fastest row on the original network without an error (`name`, `ms`,
    `what`), or None when there is none (or the rows predate the `network` key)."""
    original = [row for row in rows if row.get("network") == "original"
                and row.get("error") is None and row.get("ms")]
    best = min(original, key=lambda row: row["ms"], default=None)
    return None if best is None else {k: best[k] for k in ("name", "ms", "what")}


def speedups(rows: list[dict], best: dict | None) -> dict:
    """How many times faster the discovered network (`tvm_discovered`) runs than rows 1,
    2, 3 and the best peer: their ms over its ms (None where either is missing)."""
    ms = {row["name"]: row["ms"] for row in rows if row["error"] is None}
    mine = ms.get("tvm_discovered")

    def ratio(theirs: float | None) -> float | None:
        return theirs / mine if mine and theirs else None

    return {"vs_program_only": ratio(ms.get("tvm_program_only")),
            "vs_metaschedule": ratio(ms.get("tvm_metaschedule")),
            "vs_torch_eager": ratio(ms.get("torch_eager_original")),
            "vs_best_peer": ratio(best["ms"] if best else None)}
