"""`evo bench-measure`: how fast and how repeatable measurement is on this machine."""

from __future__ import annotations

import argparse
import json
import os
import sys

from evo.commands.formats import add_format_options, wants_json

HELP = ("Benchmark measurement: new layer programs built and measured per hour with --jobs 1 "
        "and --jobs 2, and the spread of repeated measurements of one program.")

EXAMPLES = """examples:
  evo bench-measure
  # a quicker look: 10 programs per worker count, at most a minute each
  evo bench-measure --layers 10 --seconds 60 --jobs 1 2 4 --json
"""

GOAL_PER_HOUR = 1500
GOAL_SPREAD = 0.03


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo import options as o

    parser.add_argument("--layers", type=o.count(1, 100_000).arg(), default=40, metavar="N",
                        help="random layer programs to build and measure per --jobs value "
                             "(default 40)")
    parser.add_argument("--seconds", type=o.DURATION_S.arg(), default=300.0, metavar="S",
                        help="stop each throughput run after S seconds (default 300)")
    parser.add_argument("--jobs", type=o.JOBS.arg(), nargs="+", default=[1, 2], metavar="N",
                        help="build worker counts to compare (default: 1 2)")
    parser.add_argument("--repeats", type=o.count(2, 10_000).arg(), default=10, metavar="R",
                        help="times to measure the one program for the spread (default 10)")
    parser.add_argument("--threads", type=o.THREADS.arg(), metavar="N",
                        help="runtime threads while timing (default: all cores)")
    parser.add_argument("--seed", type=o.SEED.arg(), default=0, help="random seed (default 0)")
    parser.add_argument("--target", metavar="JSON", type=o.target_arg,
                        help="TVM target as JSON or TVM's 'llvm -mcpu=CPU' (default: this CPU)")
    add_format_options(parser, "the figures as one object")


def run(args: argparse.Namespace) -> int:
    from evo.errors import UsageError
    from evo.measure.bench import measure_repeatability, measure_throughput
    from evo.target import make_target

    if args.layers < 1 or args.seconds <= 0 or args.repeats < 2 or min(args.jobs) < 1 \
            or (args.threads is not None and args.threads < 1):
        raise UsageError("--layers >= 1, --seconds > 0, --repeats >= 2, --jobs >= 1 and "
                         "--threads >= 1 please")
    make_target(args.target)  # a bad --target is a usage error before anything starts

    def log(text: str) -> None:
        print(text, file=sys.stderr)

    throughputs = []
    for jobs in args.jobs:
        log(f"throughput with --jobs {jobs} ...")
        throughputs.append(measure_throughput(jobs, args.layers, args.seconds, seed=args.seed,
                                              target=args.target, threads=args.threads,
                                              log=log))
    log(f"repeatability: one program measured {args.repeats} times ...")
    repeat, host = measure_repeatability(args.repeats, target=args.target,
                                         threads=args.threads)
    load = os.getloadavg()[0]
    if wants_json(args):
        print(json.dumps({
            "throughput": [{"jobs": t.jobs, "programs": t.programs, "errors": t.errors,
                            "seconds": round(t.seconds, 2), "startup_s": round(t.startup_s, 2),
                            "build_s": round(t.build_s, 2), "timing_s": round(t.timing_s, 2),
                            "per_hour": round(t.per_hour)} for t in throughputs],
            "load_average": round(load, 2),
            "repeat": {"medians_ms": [round(m, 4) for m in repeat.medians_ms],
                       "other_load": [round(x, 3) for x in repeat.other_loads],
                       "flagged": list(repeat.flagged),
                       "spread": round(repeat.spread, 4), "threads": repeat.threads},
            "host_floor": {"medians_ms": [round(m, 4) for m in host.medians_ms],
                           "other_load": [round(x, 3) for x in host.other_loads],
                           "spread": round(host.spread, 4), "threads": host.threads},
        }))
        return 0
    print(f"{'jobs':>4}  {'programs':>8}  {'errors':>6}  {'seconds':>8}  {'building':>8}  "
          f"{'timing':>7}  {'startup':>7}  {'per hour':>8}")
    for t in throughputs:
        print(f"{t.jobs:>4}  {t.programs:>8}  {t.errors:>6}  {t.seconds:>8.1f}  {t.build_s:>8.1f}  "
              f"{t.timing_s:>7.1f}  {t.startup_s:>7.1f}  {t.per_hour:>8.0f}")
    best = max(t.per_hour for t in throughputs)
    print(f"best: {best:.0f} programs/hour (goal >= {GOAL_PER_HOUR}: "
          f"{'met' if best >= GOAL_PER_HOUR else 'NOT met'})")
    medians = ", ".join(f"{m:.3f}{'*' if f else ''}"
                        for m, f in zip(repeat.medians_ms, repeat.flagged, strict=True))
    loads = ", ".join(f"{100 * x:.0f}%" for x in repeat.other_loads)
    print(f"repeat: one program ({repeat.threads} threads) measured {len(repeat.medians_ms)} "
          f"times: {medians} ms (* flagged)")
    print(f"repeat: CPU share other processes used meanwhile: {loads}")
    print(f"repeat spread (max-min)/median: {100 * repeat.spread:.1f}% (goal <= "
          f"{100 * GOAL_SPREAD:.0f}%: {'met' if repeat.spread <= GOAL_SPREAD else 'NOT met'})")
    print(f"host floor: fixed CPU work (1 thread) timed the same way, in between: "
          f"{100 * host.spread:.1f}% spread"
          + (" (the host alone is noisier than the goal)" if host.spread > GOAL_SPREAD else ""))
    print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} CPUs "
          "(other work on the machine widens the spread)")
    return 0
