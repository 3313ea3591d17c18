"""`evo run`: start a search on a network and write it to a run folder."""

from __future__ import annotations

import argparse

HELP = ("Start an evolutionary search for faster versions of a CNN's convolutions "
        "(legal by Fisher Potential, measured with TVM) and record it in a run folder.")

EXAMPLES = """examples:
  # a dry run in seconds: analytic latency estimates instead of TVM builds
  evo run --model tiny --evaluator analytic --population 4 --generations 1 --out runs/demo
  # a real search, measured with TVM on this CPU, stopped after two hours
  evo run --model resnet20 --time-budget 2h --out runs/resnet20-2h
  # schedules only (the network is never changed): the program-only baseline
  evo run --model resnet20 --program-only --time-budget 2h --out runs/resnet20-program
  # your own network: a factory in a Python file, at its input shape
  evo run --model my_net.py:build --input-shape 1,3,64,64 --out runs/my-net
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo import options as o
    from evo.search.config import (
        CAPACITY_HELP,
        EVALUATORS,
        FISHER_BN_MODES,
        STRATEGIES,
        THRESHOLD_HELP,
        WITHOUT_GENES_HELP,
        RunConfig,
        parse_gene_list,
    )

    d = RunConfig()
    net = parser.add_argument_group("network")
    net.add_argument("--model", default=d.model,
                     help="zoo name (tiny, resnet18, resnet34, resnet20, resnet56, "
                          "resnext29_2x64d, densenet161), path/to/file.py:factory or "
                          "package.module:factory (default tiny)")
    net.add_argument("--input-shape", metavar="N,C,H,W",
                     help="input shape for the model (default 1,3,32,32)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="run folder to create, e.g. runs/tiny-1")
    search = parser.add_argument_group("search")
    search.add_argument("--strategy", choices=STRATEGIES, default=d.strategy,
                        help="nsga2: latency vs Fisher Potential with the capacity constraint "
                             "(default); aging: regularized evolution; ga: latency only")
    search.add_argument("--population", type=o.POPULATION.arg(), default=d.population,
                        help=f"individuals per generation (default {d.population})")
    search.add_argument("--generations", type=o.GENERATIONS.arg(), default=None,
                        help=f"generations after the initial one (default {d.generations}; "
                             f"with --time-budget, no limit: the budget stops the search)")
    search.add_argument("--time-budget", metavar="T",
                        help="stop after this much search time, e.g. 90s, 15m, 2h, 1h30m")
    search.add_argument("--seed", type=o.SEED.arg(), default=d.seed,
                        help="random seed, 0 <= S < 2**32 (default 0)")
    search.add_argument("--crossover-prob", type=o.PROBABILITY.arg(), default=d.crossover_prob,
                        help=f"probability a child is made by crossover (default "
                             f"{d.crossover_prob})")
    search.add_argument("--initial-genes", type=o.INITIAL_GENES.arg(), default=d.initial_genes,
                        help=f"genes inserted into each initial mutant (default "
                             f"{d.initial_genes})")
    search.add_argument("--program-only", action="store_true",
                        help="program genes only: search schedules, never change the network")
    cap = parser.add_argument_group("capacity")
    cap.add_argument("--capacity", default=d.capacity, metavar="CHECK",
                     help=CAPACITY_HELP)
    cap.add_argument("--threshold", type=o.THRESHOLD.arg(), default=None,
                     help=THRESHOLD_HELP)
    cap.add_argument("--without-genes", type=parse_gene_list, metavar="NAMES",
                     help=WITHOUT_GENES_HELP)
    cap.add_argument("--scope", choices=("network", "layer"), default=d.scope,
                     help="compare the measure for the whole network or per layer "
                          "(fisher, params, flops)")
    cap.add_argument("--data", default=d.data,
                     help="minibatch for Fisher Potential: synthetic, cifar10:DIR, npz:FILE "
                          "or imagefolder:PATH")
    cap.add_argument("--fisher-batch", type=o.FISHER_BATCH.arg(), default=d.fisher_batch,
                     help=f"minibatch size for Fisher Potential (default {d.fisher_batch})")
    cap.add_argument("--fisher-bn", choices=FISHER_BN_MODES, default=d.fisher_bn,
                     help="BatchNorm while measuring: its initial running statistics with "
                          "inherited weights (default; removing connections lowers the "
                          "potential) or the minibatch's statistics (the paper's setting, "
                          "which lets depthwise convs through)")
    meas = parser.add_argument_group("measurement")
    meas.add_argument("--evaluator", choices=EVALUATORS, default=d.evaluator,
                      help="tvm: build and time each conv (default); analytic: deterministic "
                           "estimate, for dry runs")
    meas.add_argument("--jobs", type=o.JOBS.arg(), help="parallel builds (default: all cores)")
    meas.add_argument("--target", metavar="JSON", type=o.target_arg,
                      help="TVM target as JSON, or TVM's 'llvm -mcpu=CPU' (default: this CPU)")
    meas.add_argument("--build-timeout", type=o.BUILD_TIMEOUT_S.arg(), default=d.build_timeout_s,
                      metavar="S", help=f"kill a build after S seconds; the candidate gets an "
                                        f"error (default {d.build_timeout_s:g})")
    meas.add_argument("--cache", metavar="PATH",
                      help="measurement cache shared by runs (default "
                           "~/.cache/evo/measurements.sqlite, or $EVO_CACHE/measurements.sqlite)")
    meas.add_argument("--runner", metavar="rpc://HOST:PORT/KEY",
                      help="measure on a remote device through a TVM RPC tracker")
    meas.add_argument("--backend", choices=("loky", "dask"), default="loky",
                      help="where builds run: local processes (loky) or a Dask cluster")
    meas.add_argument("--scheduler", metavar="ADDRESS",
                      help="Dask scheduler address for --backend dask, e.g. tcp://host:8786")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars; one log line per generation")


def config_from_args(args: argparse.Namespace):
    """The RunConfig these options describe (raises UsageError on bad values)."""
    from evo.measure import check_measurement_options
    from evo.networks.loading import parse_input_shape
    from evo.search.config import RunConfig, parse_duration

    shape = parse_input_shape(args.input_shape) if args.input_shape else None
    check_measurement_options(args.evaluator, args.runner, args.backend, args.scheduler)
    return RunConfig(
        model=args.model, input_shape=shape, strategy=args.strategy,
        population=args.population, generations=_generations(args),
        time_budget_s=parse_duration(args.time_budget) if args.time_budget else None,
        seed=args.seed, evaluator=args.evaluator, jobs=args.jobs, target=args.target,
        cache=args.cache, runner=args.runner, backend=args.backend, scheduler=args.scheduler,
        capacity=args.capacity, threshold=args.threshold, scope=args.scope, data=args.data,
        fisher_batch=args.fisher_batch, fisher_bn=args.fisher_bn,
        crossover_prob=args.crossover_prob,
        initial_genes=args.initial_genes, neural=not args.program_only,
        build_timeout_s=args.build_timeout, without_genes=args.without_genes,
    )


def _generations(args: argparse.Namespace) -> int:
    """--generations, else no limit when a time budget is given (the budget stops the
    search), else RunConfig's default."""
    from evo import options
    from evo.search.config import RunConfig

    if args.generations is not None:
        return args.generations
    return int(options.GENERATIONS.high) if args.time_budget else RunConfig.generations


def run(args: argparse.Namespace) -> int:
    from evo.search.runner import start_run

    return start_run(config_from_args(args), args.out, quiet=args.quiet)
