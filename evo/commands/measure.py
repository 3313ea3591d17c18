"""`evo measure`: the latency of a network under a genome, slot by slot."""

from __future__ import annotations

import argparse
import json
import sys

from evo.commands.formats import add_format_options, wants_json

HELP = ("Measure a network's conv layers (its slots) under a genome with TVM, or estimate "
        "them analytically; print each slot's latency and their sum.")

EXAMPLES = """examples:
  # the untransformed network, estimated analytically (no TVM build)
  evo measure --model tiny --evaluator analytic
  # an exported winner's genome, built and timed with TVM
  evo measure --model tiny --genome runs/demo/winner/genome.json
  # everything measured again, as JSON
  evo measure --model resnet20 --no-cache --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo import options as o

    parser.add_argument("--model", required=True, metavar="M",
                        help="zoo name (e.g. tiny, resnet18) or path/to/file.py:factory")
    parser.add_argument("--genome", metavar="FILE",
                        help="network genome JSON (default: the untransformed network)")
    parser.add_argument("--input-shape", metavar="N,C,H,W",
                        help="input shape (default 1,3,32,32)")
    parser.add_argument("--evaluator", choices=("tvm", "analytic"), default="tvm",
                        help="tvm: build and time each layer (default); analytic: a "
                             "deterministic roofline estimate, no build")
    parser.add_argument("--jobs", type=o.JOBS.arg(), metavar="N",
                        help="parallel builds (default: all cores)")
    parser.add_argument("--threads", type=o.THREADS.arg(), metavar="N",
                        help="runtime threads while timing (default: all cores)")
    parser.add_argument("--cache", metavar="PATH", default=None,
                        help="measurement cache shared by runs "
                             "(default ~/.cache/evo/measurements.sqlite, or "
                             "$EVO_CACHE/measurements.sqlite)")
    parser.add_argument("--no-cache", action="store_true",
                        help="measure everything again and store nothing")
    parser.add_argument("--target", metavar="JSON", type=o.target_arg,
                        help='TVM target as JSON or TVM\'s "llvm -mcpu=CPU" (default: llvm '
                             'for this CPU, e.g. \'{"kind": "llvm", "mcpu": "znver4"}\')')
    parser.add_argument("--runner", metavar="rpc://HOST:PORT/KEY",
                        help="time on a device behind a TVM RPC tracker instead of here")
    parser.add_argument("--backend", choices=("loky", "dask"), default="loky",
                        help="where builds run: local worker processes (loky, default) or a "
                             "Dask cluster (needs --scheduler)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address for --backend dask, e.g. tcp://host:8786")
    parser.add_argument("--build-timeout", type=o.BUILD_TIMEOUT_S.arg(), default=60.0, metavar="S",
                        help="kill a build after S seconds and record an error (default 60)")
    add_format_options(parser, '{"total_ms": ..., "slots": [{"id": ..., "ms": ..., '
                               '"cached": ...}, ...]} (no progress bar)')


def run(args: argparse.Namespace) -> int:
    from evo.errors import UsageError
    from evo.measure import (
        LayerJob,
        check_measurement_options,
        default_measurement_cache,
        make_evaluator,
    )
    from evo.networks import load_network, parse_input_shape, transform_network
    from genomes.genome import NetworkGenome, load_genome_file

    if args.no_cache and args.cache:
        raise UsageError("--cache and --no-cache contradict each other")
    check_measurement_options(args.evaluator, args.runner, args.backend, args.scheduler)
    shape = parse_input_shape(args.input_shape) if args.input_shape else None
    genome = NetworkGenome()
    if args.genome:
        genome = load_genome_file(args.genome)
        if not isinstance(genome, NetworkGenome):
            raise UsageError(f"{args.genome}: expected a network genome "
                             '({"schema": 1, "layers": {...}}), got a bare list of genes')
    network = load_network(args.model, shape)
    transform = transform_network(network, genome, plans_only=True)
    if transform.error is not None:
        raise UsageError(f"{args.genome}: {transform.error}")
    cache = None if args.no_cache else (args.cache or default_measurement_cache())
    evaluator = make_evaluator(args.evaluator, target=args.target, jobs=args.jobs,
                               cache_path=cache, runner=args.runner, backend=args.backend,
                               scheduler=args.scheduler, build_timeout_s=args.build_timeout,
                               threads=args.threads, preflight=True)
    slot_ids = list(transform.plans)
    jobs = [LayerJob(transform.plans[s].spec, genome.layer(s)) for s in slot_ids]
    try:
        results = evaluator.measure(jobs, progress=_progress(len(jobs), wants_json(args)))
    finally:
        evaluator.close()
    failed = any(not r.ok for r in results)
    total = None if failed else sum(r.median_ms for r in results)
    slots = [{"id": s, "spec": job.spec.short(), "genes": len(job.genome), "ms": r.median_ms,
              "spread": r.spread, "repeats": r.repeats, "threads": r.threads,
              "cached": r.cached, "flagged": r.flagged, "error": r.error}
             for s, job, r in zip(slot_ids, jobs, results, strict=True)]
    distinct = len({job.key for job in jobs})
    if wants_json(args):
        print(json.dumps({"model": args.model, "evaluator": args.evaluator, "total_ms": total,
                          "distinct_programs": distinct, "cache": cache, "slots": slots}))
    else:
        _print_table(slots, total, distinct, args.evaluator, cache)
    return 1 if failed else 0


def _progress(total: int, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, desc="measure", unit="slot", file=sys.stderr, leave=False)
    return bar.update


def _print_table(slots: list[dict], total: float | None, distinct: int, evaluator: str,
                 cache: str | None) -> None:
    width = max(len(s["id"]) for s in slots)
    print(f"{'slot':<{width}}  {'layer':<28} {'genes':>5} {'ms':>9} {'spread':>7}  source")
    for s in slots:
        if s["error"]:  # a build's error may end with its stderr's last lines
            error = s["error"].replace("\n", "\n" + " " * (width + 2))
            print(f"{s['id']:<{width}}  {s['spec']:<28} {s['genes']:>5}  error: {error}")
            continue
        source = "cache" if s["cached"] else evaluator
        flag = "  flagged" if s["flagged"] else ""
        print(f"{s['id']:<{width}}  {s['spec']:<28} {s['genes']:>5} {s['ms']:>9.4f} "
              f"{100 * s['spread']:>6.1f}%  {source}{flag}")
    cached = sum(s["cached"] for s in slots)
    shown = "failed (see errors above)" if total is None else f"{total:.4f} ms"
    print(f"total: {shown} = sum over {len(slots)} slots ({distinct} distinct programs; "
          f"threads {slots[0]['threads']})")
    if any(s["flagged"] for s in slots):
        print("flagged: the spread stayed above 10 % or other processes kept the CPUs busy "
              "while timing, even after a re-measurement")
    print(f"from cache: {cached} of {len(slots)} slots"
          + (f" ({cache})" if cache else " (cache off)"))
