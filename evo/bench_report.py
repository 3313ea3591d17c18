"""The rows of `evo bench`: one run's best network against the baselines, end to end."""

from __future__ import annotations

from pathlib import Path

from evo.analysis import load_run
from evo.bench.blockswap import blockswap_baseline, fisher_violation
from evo.bench.conv_throughput import conv_throughput, total_gflops
from evo.bench.end_to_end import EndToEnd, genome_end_to_end, torch_end_to_end
from evo.bench.metaschedule import metaschedule_end_to_end
from evo.bench.timing import set_tvm_threads
from evo.capacity import FisherPotential
from evo.errors import UsageError
from evo.host import describe_host, distinct_hosts, host_label, same_host
from evo.networks import load_network, transform_network
from evo.search.variation import TEMPLATE_SCHEDULE, template_genome
from evo.target import make_target
from genomes.genome import NetworkGenome


def benchmark(run: Path, ident: int | None, program_run: Path | None, trials: int,
              threads: int, out: Path | None) -> dict:
    """Every row as a dict (name, ms, spread, error, and network facts), plus speedups of
    the discovered network against rows 1, 2 and 3, this machine (`host`) and the machines
    the search ran on (`search_hosts`)."""
    set_tvm_threads(threads)
    snap = load_run(run)
    config = snap.config
    chosen = snap.resolve(ident)
    genome = snap.individual(chosen).genome
    network = load_network(config.model, config.input_shape, seed=config.seed)
    target = make_target(config.target)
    fisher = FisherPotential(network, data=config.data, seed=config.seed,
                             batch=config.fisher_batch, bn=config.fisher_bn, threads=threads)
    original_fisher = fisher.original().total

    def facts(g: NetworkGenome) -> dict:
        transform = transform_network(network, g, plans_only=True)
        total = fisher.of(g).total
        return {"flops": sum(p.flops for p in transform.plans.values()),
                "params": sum(p.params for p in transform.plans.values()),
                "fisher_ratio": total / original_fisher if total and original_fisher else None}

    rows: list[dict] = []

    def add(name: str, what: str, result: EndToEnd, g: NetworkGenome | None) -> None:
        row = {"name": name, "what": what, **result.to_json()}
        row["spread"] = result.latency.spread if result.latency else None
        row.update(facts(g) if g is not None else {})
        rows.append(row)

    program_genome, program_what, program_sessions = _program_only(network, program_run,
                                                                  config.model)
    add("tvm_program_only", program_what,
        genome_end_to_end(network, program_genome, target, threads, config.seed), program_genome)
    if trials:
        work = out or run / "bench"
        row, _ = metaschedule_end_to_end(config.model, network.input_shape, work / "metaschedule",
                                         trials, threads=threads, seed=config.seed)
        add("tvm_metaschedule", f"original, MetaSchedule {trials} trials", row,
            NetworkGenome())
    add("torch_eager_original", f"original, PyTorch eager, {threads} thread(s)",
        torch_end_to_end(network.module.eval(), network.input_shape, threads), NetworkGenome())
    choice = blockswap_baseline(network, fisher_violation(fisher, config.threshold, config.scope),
                                program=TEMPLATE_SCHEDULE)
    blockswap = {"tried": [c.to_json() for c in choice.tried],
                 "chosen": choice.best.to_json() if choice.best is not None else None}
    if choice.best is not None:
        add("blockswap", f"uniform {choice.best.gene}({choice.best.factor}) on "
            f"{len(choice.best.slots)} slots + template schedule",
            genome_end_to_end(network, choice.best.genome, target, threads, config.seed),
            choice.best.genome)
    add("tvm_discovered", f"individual {chosen} of {run}",
        genome_end_to_end(network, genome, target, threads, config.seed), genome)
    discovered = transform_network(network, genome, seed=config.seed).module
    add("torch_eager_discovered", f"individual {chosen}, PyTorch eager, {threads} thread(s)",
        torch_end_to_end(discovered.eval(), network.input_shape, threads), genome)
    return {"model": config.model, "individual": chosen, "threads": threads,
            "host": describe_host(),
            "search_hosts": [h["host"] for h in distinct_hosts([*snap.sessions,
                                                                *program_sessions])],
            "rows": rows,
            "speedup": _speedups(rows), "blockswap": blockswap,
            "conv_gflops": _conv_gflops(transform_network(network, genome, plans_only=True).plans,
                                        target, threads)}


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


def _speedups(rows: list[dict]) -> dict:
    ms = {row["name"]: row["ms"] for row in rows if row["error"] is None}
    mine = ms.get("tvm_discovered")

    def ratio(name: str) -> float | None:
        return ms[name] / mine if mine and ms.get(name) else None

    return {"vs_program_only": ratio("tvm_program_only"),
            "vs_metaschedule": ratio("tvm_metaschedule"),
            "vs_torch_eager": ratio("torch_eager_original")}


def format_table(result: dict) -> str:
    """The rows as a table, then the speedups."""
    lines = [f"{result['model']}, batch 1, {result['threads']} thread(s); "
             f"discovered = individual {result['individual']}",
             f"{'row':24} {'ms':>10} {'spread':>7} {'MFLOPs':>9} {'params':>10} "
             f"{'fisher':>7}  what"]
    if result.get("host"):
        lines.insert(1, f"measured on {host_label(result['host'])}")
        elsewhere = [h for h in result.get("search_hosts", [])
                     if not same_host(h, result["host"])]
        lines[2:2] = [f"note: the search also ran on {host_label(h)}; programs it found "
                      "there are measured here" for h in elsewhere]
    for row in result["rows"]:
        ms = f"{row['ms']:.3f}" if row["ms"] is not None else "-"
        spread = f"{row['spread']:.1%}" if row.get("spread") is not None else "-"
        flops = f"{row['flops'] / 1e6:.1f}" if row.get("flops") is not None else "-"
        params = f"{row['params']:,}" if row.get("params") is not None else "-"
        fisher = f"{row['fisher_ratio']:.2f}x" if row.get("fisher_ratio") else "-"
        lines.append(f"{row['name']:24} {ms:>10} {spread:>7} {flops:>9} {params:>10} "
                     f"{fisher:>7}  {row['what']}")
        if row["error"]:
            lines.append(f"{'':24} error: {row['error']}")
        if row.get("breakdown"):
            lines.append(f"{'':24} {_inside(row['breakdown'])}")
    for key, value in result["speedup"].items():
        lines.append(f"speedup {key}: {value:.2f}x" if value else f"speedup {key}: -")
    blockswap = result.get("blockswap")
    if blockswap and blockswap["chosen"] is None:
        least = min((c["violation"] for c in blockswap["tried"] if c["violation"] is not None),
                    default=None)
        lines.append(f"blockswap: no uniform factor is legal ({len(blockswap['tried'])} tried"
                     + (f", smallest violation {least:.3f})" if least is not None else ")"))
    gflops = result.get("conv_gflops")
    if gflops and gflops["tvm"] and gflops["torch"]:
        lines.append(f"discovered convs: {gflops['tvm']:.1f} GFLOP/s in TVM, "
                     f"{gflops['torch']:.1f} GFLOP/s in PyTorch eager on the same shapes "
                     f"({gflops['ratio']:.0%})")
        alone = sum(slot["tvm_ms"] for slot in gflops["slots"])
        inside = next((row["breakdown"]["conv_ms"] for row in result["rows"]
                       if row["name"] == "tvm_discovered" and row.get("breakdown")), None)
        lines.append(f"discovered convs: {alone:.3f} ms in sum, each timed alone and warm"
                     + (f"; {inside:.3f} ms inside the network" if inside is not None else ""))
    return "\n".join(lines)


def _inside(breakdown: dict) -> str:
    """One line: where a row's inference time went (`evo.bench.op_profile`)."""
    return (f"inside: convs {breakdown['conv_ms']:.3f} ms, other ops "
            f"{breakdown['other_ms']:.3f} ms, VM {breakdown['runtime_ms']:.3f} ms "
            f"(instrumented run {breakdown['total_ms']:.3f} ms)")
