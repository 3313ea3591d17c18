"""`evo bench`: end-to-end latency of a search's best network against the baselines."""

from __future__ import annotations

import argparse

HELP = ("Measure, in one sitting, whole networks end to end (batch 1): the "
        "original under TVM (a program-only search's best or the template schedule), under "
        "MetaSchedule, in PyTorch eager and in the peers a user would deploy instead "
        "(torch.compile, ONNX Runtime, OpenVINO), a BlockSwap-style baseline, and the best "
        "legal discovered network in TVM, PyTorch eager and the peers; then it races the "
        "TVM rows and the ONNX-based peers head to head in interleaved rounds, for "
        "speedups that a slow spell of a shared machine cannot skew. With --model and "
        "--time-budget it first runs the full search and its program-only twin itself.")

EXAMPLES = """examples:
  # run a two-hour search and its program-only twin, then bench the winner
  evo bench --model resnet20 --time-budget 2h
  # a finished search against its program-only twin, as JSON
  evo bench --run runs/resnet20-2h --program-run runs/resnet20-program --json
  # quick: no MetaSchedule row and no peers
  evo bench --run runs/demo --metaschedule-trials-per-task 0 --peers none
"""
DEFAULT_PEERS = "torch_compile,onnxruntime,openvino"  # evo.bench.peers.DEFAULT_PEERS
RACE_ROUNDS = 20  # evo.bench.head_to_head.ROUNDS (not imported: it loads TVM and torch)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo import options as o
    from evo.search.config import FISHER_BN_MODES, RunConfig, parse_gene_list

    d = RunConfig()
    source = parser.add_argument_group("what to benchmark (--model or --run)")
    source.add_argument("--model",
                        help="run a full search and a program-only search of --time-budget "
                             "each on this model (zoo name or file.py:factory), then bench")
    source.add_argument("--time-budget", metavar="T",
                        help="search time of each of the two searches, e.g. 2h, 30m")
    source.add_argument("--input-shape", metavar="N,C,H,W",
                        help="input shape for --model (default 1,3,32,32)")
    source.add_argument("--population", type=o.POPULATION.arg(), default=d.population,
                        help=f"individuals per generation of the searches (default "
                             f"{d.population})")
    source.add_argument("--seed", type=o.SEED.arg(), default=d.seed,
                        help=f"searches' seed (default {d.seed})")
    source.add_argument("--jobs", type=o.JOBS.arg(), help="parallel builds (default: all cores)")
    source.add_argument("--threshold", type=o.THRESHOLD.arg(), default=None,
                        help="the searches' capacity threshold (default: 0.6 for flops "
                             "alone, 1.0 otherwise)")
    source.add_argument("--capacity", metavar="CHECK", default=d.capacity,
                        help=f"the searches' capacity check (default {d.capacity}; see "
                             f"evo run --help)")
    source.add_argument("--data", default=d.data,
                        help=f"the searches' capacity minibatch (default {d.data}; see evo "
                             f"run --help)")
    source.add_argument("--fisher-bn", choices=FISHER_BN_MODES, default=d.fisher_bn,
                        help="the searches' Fisher Potential BatchNorm mode (see evo run)")
    source.add_argument("--without-genes", type=parse_gene_list, metavar="NAMES",
                        help="gene kinds the searches never draw, or 'none' (default: "
                             "those the capacity check cannot see; see evo run --help)")
    source.add_argument("--cache", metavar="PATH",
                        help="one measurement cache for both searches (default: each its "
                             "own, in its folder, so neither starts with the other's "
                             "measurements)")
    source.add_argument("--run", metavar="DIR",
                        help="benchmark the best legal network of this finished search")
    source.add_argument("--id", type=o.IDENTIFIER.arg(),
                        help="with --run: this individual instead of the best")
    source.add_argument("--program-run", metavar="DIR",
                        help="with --run: a --program-only run of the same model and budget; "
                             "its best is row 1 (default: the template schedule)")
    source.add_argument("--trust-model-code", action="store_true",
                        help="with --run: import the model file or module the run's "
                             "config.json names (a run folder may come from someone else; "
                             "zoo models need nothing)")
    parser.add_argument("--metaschedule-trials-per-task", "--metaschedule-trials",
                        dest="trials_per_task", type=o.count(0, 100_000).arg(), metavar="N",
                        help="MetaSchedule trials for each of the network's tasks in row 2 "
                             "(default 64, or no limit within a time budget; 0 skips the "
                             "row). --metaschedule-trials is the old spelling, now per task")
    parser.add_argument("--metaschedule-time-budget", metavar="T",
                        help="stop MetaSchedule's tuning after T, e.g. 2h (default: the "
                             "program-only search's time budget, if it had one; 'none': "
                             "no budget)")
    parser.add_argument("--peers", default=DEFAULT_PEERS, metavar="NAMES",
                        help=f"peers measured on the original and the discovered network, "
                             f"comma-separated, of torch_compile, torch_compile_max_autotune, "
                             f"onnxruntime, openvino; 'none' for none (default {DEFAULT_PEERS})")
    parser.add_argument("--threads", type=o.THREADS.arg(), default=2,
                        help="threads for TVM, PyTorch and the peers (default 2)")
    parser.add_argument("--timing-processes", type=o.count(1, 100).arg(), default=None,
                        metavar="N",
                        help="time each TVM row in N fresh processes and report their "
                             "median (default 5, or $EVO_TIMING_PROCESSES)")
    parser.add_argument("--race-rounds", type=o.count(0, 10_000).arg(),
                        default=RACE_ROUNDS,
                        metavar="N",
                        help="race the TVM rows and the ONNX-based peers head to head in N "
                             "interleaved rounds, each in its own process; the speedups "
                             "compare rounds, so a slow spell of a shared machine hits "
                             f"every row alike (default {RACE_ROUNDS}, about 0.5 s per row "
                             "and round; 0 skips)")
    parser.add_argument("--out", metavar="DIR",
                        help="with --model: the benchmark folder (searches, MetaSchedule "
                             "database, result.json; default runs/bench-MODEL-T); with --run: "
                             "where MetaSchedule keeps its database (default RUN/bench)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars in the searches")
    from evo.commands.formats import add_format_options

    add_format_options(parser, "the result as one object (what result.json holds)")


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from evo.errors import UsageError

    if (args.model is None) == (args.run is None):
        raise UsageError("give either --model M --time-budget T (run the searches) or "
                         "--run DIR (a finished search)")
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # before anything starts TVM's pool
    if args.timing_processes is not None:
        os.environ["EVO_TIMING_PROCESSES"] = str(args.timing_processes)
    peers = _peers(args.peers)
    budget = _metaschedule_budget(args.metaschedule_time_budget)
    from evo.bench_report import benchmark, format_table

    if args.run is not None:
        if args.time_budget or args.input_shape or args.without_genes is not None:
            raise UsageError("--time-budget, --input-shape and --without-genes go with "
                             "--model, not --run")
        run_dir = Path(args.run)
        program_run = Path(args.program_run) if args.program_run else None
        out = Path(args.out) if args.out else None
        chosen = args.id
    else:
        run_dir, program_run, out = _searches(args)
        chosen = None
    if budget == "program-only":
        from evo.search.config import RunConfig

        budget = RunConfig.load(program_run).time_budget_s if program_run else None
    result = benchmark(run_dir, chosen, program_run, args.trials_per_task, args.threads, out,
                       budget, peers,
                       trust_model_code=args.trust_model_code or args.model is not None,
                       race_rounds=args.race_rounds)
    if args.model is not None:
        (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    from evo.commands.formats import wants_json

    print(json.dumps(result, indent=2) if wants_json(args) else format_table(result))
    return 0 if all(row["error"] is None for row in result["rows"]) else 1


def _peers(text: str) -> tuple[str, ...]:
    """The --peers names, checked against `evo.bench.peers.PEERS`."""
    from evo.bench.peers import PEERS
    from evo.errors import UsageError

    names = () if text.strip() == "none" else tuple(n.strip() for n in text.split(","))
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise UsageError(f"--peers: unknown peer {unknown[0]!r} (known: {', '.join(PEERS)}, "
                         f"or none)")
    return names


def _metaschedule_budget(text: str | None) -> float | None | str:
    """--metaschedule-time-budget in seconds, None for 'none', "program-only" when not
    given (the program-only run's budget, known once it is)."""
    from evo.errors import UsageError
    from evo.search.config import parse_duration

    if text is None:
        return "program-only"
    if text.strip().lower() == "none":
        return None
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise UsageError(str(exc).replace("--time-budget", "--metaschedule-time-budget")) \
            from None


def _searches(args: argparse.Namespace):
    """Run (or resume, or reuse) the two searches; their folders and the bench folder."""
    import contextlib
    import re
    import sys
    from pathlib import Path

    from evo.bench_searches import run_bench_searches, search_configs
    from evo.errors import UsageError
    from evo.networks.loading import parse_input_shape
    from evo.search.config import parse_duration

    if not args.time_budget:
        raise UsageError("--model needs --time-budget T (each search's time, e.g. 2h)")
    if args.id is not None or args.program_run:
        raise UsageError("--id and --program-run go with --run, not --model")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    budget = parse_duration(args.time_budget)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.model.rsplit("/", 1)[-1])
    out = Path(args.out) if args.out else Path("runs", f"bench-{slug}-{args.time_budget}")
    shape = parse_input_shape(args.input_shape) if args.input_shape else None
    configs = search_configs(args.model, shape, budget, args.seed, args.population, out,
                             args.jobs, args.cache, args.fisher_bn, args.threshold,
                             args.capacity, args.data, args.without_genes)
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the benchmark's result alone
        searches = run_bench_searches(configs, out, quiet=args.quiet)
    for search in searches:
        verb = "ran" if search.ran else "reused"
        print(f"evo bench: {verb} {search.name} search in {search.folder}", file=sys.stderr)
    return out / "search", out / "program-only", out
