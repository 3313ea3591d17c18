"""`evo resume`: continue a stopped run from its last finished generation."""

from __future__ import annotations

import argparse

HELP = ("Continue a run from its last checkpoint (after a crash, Ctrl-C or a finished "
        "budget); with the same evaluations it makes exactly the choices an "
        "uninterrupted run would have made.")

EXAMPLES = """examples:
  # continue a stopped run up to its configured generations or budget
  evo resume runs/resnet20-2h
  # two more generations than it has
  evo resume runs/demo --generations 2
  # 30 more minutes, with four build processes on this machine
  evo resume runs/resnet20-2h --time-budget 30m --jobs 4
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo import options as o
    from evo.search.config import RunConfig

    parser.add_argument("run", metavar="RUN_DIR", help="the run folder, e.g. runs/tiny-1")
    parser.add_argument("--generations", type=o.GENERATIONS.arg(), metavar="N",
                        help="run N more generations (default: up to the configured number)")
    parser.add_argument("--time-budget", metavar="T",
                        help="run for T more time, e.g. 30m (default: the configured budget)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars; one log line per generation")
    code = parser.add_argument_group(
        "model code (a model file or module config.json names is not imported unasked)")
    code.add_argument("--trust-model-code", action="store_true",
                      help="import the model file or module config.json names (zoo models "
                           "need nothing)")
    code.add_argument("--model", metavar="MODEL",
                      help="the run's model, named again on this command line: the same "
                           "file and factory as config.json's (then no --trust-model-code)")
    meas = parser.add_argument_group("this machine (never taken from config.json)")
    meas.add_argument("--jobs", type=o.JOBS.arg(), metavar="N",
                      help="parallel builds (default: all cores)")
    meas.add_argument("--build-timeout", type=o.BUILD_TIMEOUT_S.arg(), metavar="S",
                      help=f"kill a build after S seconds; the candidate gets an error "
                           f"(default {RunConfig.build_timeout_s:g})")
    meas.add_argument("--cache", metavar="PATH",
                      help="measurement cache (default: the run folder's own, or the one "
                           "config.json names if it exists here, else the default cache)")
    meas.add_argument("--runner", metavar="rpc://HOST:PORT/KEY",
                      help="measure on a remote device through a TVM RPC tracker")
    meas.add_argument("--backend", choices=("loky", "dask"),
                      help="where builds run: local processes (loky, default) or a Dask "
                           "cluster")
    meas.add_argument("--scheduler", metavar="ADDRESS",
                      help="Dask scheduler address for --backend dask")
    meas.add_argument("--local", action="store_true",
                      help="measure on this machine although config.json names an RPC "
                           "runner or a Dask scheduler (else such a resume is refused)")


def run(args: argparse.Namespace) -> int:
    from evo.search.config import parse_duration
    from evo.search.received import MachineOptions
    from evo.search.runner import resume_run

    seconds = parse_duration(args.time_budget) if args.time_budget else None
    machine = MachineOptions(args.backend, args.scheduler, args.runner, args.jobs, args.cache,
                             args.local, args.build_timeout)
    return resume_run(args.run, args.generations, seconds, quiet=args.quiet, machine=machine,
                      model=args.model, trust_model_code=args.trust_model_code)
