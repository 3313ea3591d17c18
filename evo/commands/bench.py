"""`evo bench`: end-to-end latency of a search's best network against the baselines."""

from __future__ import annotations

import argparse

HELP = ("Measure, in one process and one sitting, whole networks end to end (batch 1): the "
        "original under TVM (a program-only search's best or the template schedule), under "
        "MetaSchedule and in PyTorch eager, a BlockSwap-style baseline, and the best legal "
        "discovered network in TVM and in PyTorch eager. With --model and --time-budget it "
        "first runs the full search and its program-only twin itself.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo.search.config import FISHER_BN_MODES, RunConfig

    d = RunConfig()
    source = parser.add_argument_group("what to benchmark (--model or --run)")
    source.add_argument("--model",
                        help="run a full search and a program-only search of --time-budget "
                             "each on this model (zoo name or file.py:factory), then bench")
    source.add_argument("--time-budget", metavar="T",
                        help="search time of each of the two searches, e.g. 2h, 30m")
    source.add_argument("--input-shape", metavar="N,C,H,W",
                        help="input shape for --model (default 1,3,32,32)")
    source.add_argument("--population", type=int, default=d.population,
                        help=f"individuals per generation of the searches (default "
                             f"{d.population})")
    source.add_argument("--seed", type=int, default=d.seed,
                        help=f"searches' seed (default {d.seed})")
    source.add_argument("--jobs", type=int, help="parallel builds (default: all cores)")
    source.add_argument("--threshold", type=float, default=d.threshold,
                        help=f"the searches' capacity threshold (default {d.threshold})")
    source.add_argument("--fisher-bn", choices=FISHER_BN_MODES, default=d.fisher_bn,
                        help="the searches' Fisher Potential BatchNorm mode (see evo run)")
    source.add_argument("--cache", metavar="PATH",
                        help="one measurement cache for both searches (default: each its "
                             "own, in its folder, so neither starts with the other's "
                             "measurements)")
    source.add_argument("--run", metavar="DIR",
                        help="benchmark the best legal network of this finished search")
    source.add_argument("--id", type=int, help="with --run: this individual instead of the best")
    source.add_argument("--program-run", metavar="DIR",
                        help="with --run: a --program-only run of the same model and budget; "
                             "its best is row 1 (default: the template schedule)")
    parser.add_argument("--metaschedule-trials", type=int, default=64, metavar="N",
                        help="MetaSchedule trials for row 2 (default 64; 0 skips the row)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for TVM and PyTorch (default 2)")
    parser.add_argument("--out", metavar="DIR",
                        help="with --model: the benchmark folder (searches, MetaSchedule "
                             "database, result.json; default runs/bench-MODEL-T); with --run: "
                             "where MetaSchedule keeps its database (default RUN/bench)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars in the searches")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from evo.errors import UsageError

    if args.threads < 1 or args.metaschedule_trials < 0:
        raise UsageError("--threads must be >= 1 and --metaschedule-trials >= 0")
    if (args.model is None) == (args.run is None):
        raise UsageError("give either --model M --time-budget T (run the searches) or "
                         "--run DIR (a finished search)")
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # before anything starts TVM's pool
    from evo.bench_report import benchmark, format_table

    if args.run is not None:
        if args.time_budget or args.input_shape:
            raise UsageError("--time-budget and --input-shape go with --model, not --run")
        run_dir = Path(args.run)
        program_run = Path(args.program_run) if args.program_run else None
        out = Path(args.out) if args.out else None
        chosen = args.id
    else:
        run_dir, program_run, out = _searches(args)
        chosen = None
    result = benchmark(run_dir, chosen, program_run, args.metaschedule_trials, args.threads, out)
    if args.model is not None:
        (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0 if all(row["error"] is None for row in result["rows"]) else 1


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
                             args.jobs, args.cache, args.fisher_bn, args.threshold)
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the benchmark's result alone
        searches = run_bench_searches(configs, out, quiet=args.quiet)
    for search in searches:
        verb = "ran" if search.ran else "reused"
        print(f"evo bench: {verb} {search.name} search in {search.folder}", file=sys.stderr)
    return out / "search", out / "program-only", out
