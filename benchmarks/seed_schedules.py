"""Where a search starts, against the best peer: the seed schedules conv by conv,
combined, and raced end to end with ONNX Runtime.

    .venv/bin/python -m benchmarks.seed_schedules MODEL [--rounds 20] [--cold] [--json]
        [--without SEED]

Every seed schedule of generation 0 (`evo.search.variation.SEED_SCHEDULES`) on every conv
it applies to, each program compiled and timed alone under the search's protocol (warm,
as the search's fitness; `--cold`: weights and output flushed from the caches before each
run). The network taking each conv from the seed fastest on it, as generation 1's
`seeds:fastest` does; then that network, the template on every conv, and ONNX Runtime
running the original, each checked against PyTorch and raced head to head in interleaved
rounds (`evo.bench.head_to_head`). `--without SEED` races one more network, each conv
taking the fastest seed other than SEED: what that seed adds end to end. Distinct conv
shapes are timed once. Run it on an
otherwise idle machine; compare the ratios of one run, not milliseconds across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TVM_NUM_THREADS", "2")

from evo.bench.conv_throughput import time_conv_program  # noqa: E402
from evo.bench.end_to_end import genome_end_to_end  # noqa: E402
from evo.bench.head_to_head import Contender, race  # noqa: E402
from evo.bench.peers import peer_end_to_end  # noqa: E402
from evo.bench.timing import set_tvm_threads  # noqa: E402
from evo.errors import UsageError  # noqa: E402
from evo.measure.timing import TimingPolicy  # noqa: E402
from evo.networks import Network, load_network  # noqa: E402
from evo.search.variation import SEED_SCHEDULES, allows, template_genome  # noqa: E402
from evo.target import make_target  # noqa: E402
from evo.tvm_runtime import CompileError, compile_plan  # noqa: E402
from genomes.genome import NetworkGenome, decode_layer  # noqa: E402
from genomes.spec import LayerSpec  # noqa: E402

COLD = TimingPolicy(min_repeat_ms=0.0)  # one run per repeat, each after its own flush


def seed_times(network: Network, target, cold: bool) -> dict[LayerSpec, dict[str, float]]:
    """Per distinct conv shape, the ms of each seed schedule that applies to it."""
    times: dict[LayerSpec, dict[str, float]] = {}
    for slot in network.slots:
        if slot.spec in times:
            continue
        times[slot.spec] = {}
        for name, schedule in SEED_SCHEDULES.items():
            if not allows(slot, schedule):
                continue
            plan = decode_layer(slot.spec, schedule).plan
            try:
                library = compile_plan(plan, target)
            except CompileError as exc:
                print(f"  {slot.spec.short()} {name}: {exc}", file=sys.stderr)
                continue
            times[slot.spec][name] = (time_conv_program(library, plan, COLD, cold=True)
                                      if cold else time_conv_program(library, plan))
    return times


def fastest_seeds(times: dict[LayerSpec, dict[str, float]],
                  without: str | None = None) -> dict[LayerSpec, str | None]:
    """Per conv shape, the seed fastest on it other than `without` (None: no other)."""
    return {spec: min((n for n in row if n != without), key=row.get, default=None)
            for spec, row in times.items()}


def fastest_network(network: Network, times: dict[LayerSpec, dict[str, float]],
                    without: str | None = None) -> NetworkGenome | None:
    """Each conv from the seed fastest on its shape (other than `without`); None when a
    conv has no other seed."""
    picks = fastest_seeds(times, without)
    if None in picks.values():
        return None
    return NetworkGenome({s.id: SEED_SCHEDULES[picks[s.spec]] for s in network.slots})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a zoo network")
    parser.add_argument("--rounds", type=int, default=20, help="race rounds (default 20)")
    parser.add_argument("--cold", action="store_true",
                        help="time each conv with weights and output flushed first")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--without", metavar="SEED", choices=sorted(SEED_SCHEDULES),
                        help="also race the seeds' fastest network without this seed")
    args = parser.parse_args(argv)
    try:
        network = load_network(args.model)
    except UsageError as exc:
        print(f"seed_schedules: {exc}", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print("seed_schedules: --rounds must be at least 1", file=sys.stderr)
        return 2
    target = make_target()
    set_tvm_threads(2)
    times = seed_times(network, target, args.cold)
    fastest = fastest_seeds(times)
    names = list(SEED_SCHEDULES)
    if not args.json:
        print(f"{network.name}: each conv shape alone, ms ({'cold' if args.cold else 'warm'})")
        print(f"{'conv':28} {'slots':>5} " + " ".join(f"{n:>10}" for n in names) + "  fastest")
        for spec, row in times.items():
            count = sum(slot.spec == spec for slot in network.slots)
            cells = " ".join(f"{row[n]:10.4f}" if n in row else f"{'-':>10}" for n in names)
            print(f"{spec.short():28} {count:>5} {cells}  {fastest[spec]}", flush=True)
    genomes = {"template": template_genome(network.slots),
               "seeds_fastest": fastest_network(network, times)}
    errors: dict[str, str] = {}
    if args.without:
        without = fastest_network(network, times, args.without)
        if without is None:
            errors["seeds_fastest_without"] = f"a conv has no seed but {args.without}"
        else:
            genomes["seeds_fastest_without"] = without
    folder = Path(tempfile.mkdtemp(prefix="seed-schedules-"))
    entrants = []
    for name, genome in genomes.items():
        row = genome_end_to_end(network, genome, target, export_to=folder / f"{name}.so")
        if row.error:
            errors[name] = row.error
            continue
        entrants.append(Contender(name, "original", "tvm", folder / f"{name}.so"))
    peer = peer_end_to_end("onnxruntime", network.module, network.input_shape,
                           save_onnx=folder / "original.onnx")
    if peer.error:
        errors["onnxruntime"] = peer.error
    else:
        entrants.append(Contender("onnxruntime", "original", "onnxruntime",
                                  folder / "original.onnx"))
    result = race(entrants, network.input_shape, 2, rounds=args.rounds)
    errors.update(result.errors)
    ratios = {f"{theirs}/seeds_fastest": statistics.median(r)
              for theirs in ("template", "onnxruntime", "seeds_fastest_without")
              if (r := result.ratios(theirs, "seeds_fastest"))}
    if args.json:
        print(json.dumps({"model": network.name, "cold": args.cold,
                          "convs": [{"spec": spec.to_json(), "ms": row,
                                     "fastest": fastest[spec]} for spec, row in times.items()],
                          "race": result.to_json(), "ratios": ratios, "errors": errors}))
    else:
        print(f"end to end, {args.rounds} rounds: " + ", ".join(
            f"{c.name} {result.median_ms(c.name):.3f} ms" for c in entrants
            if result.median_ms(c.name) is not None))
        for key, value in ratios.items():
            print(f"  {key}: {value:.2f}x (median of the rounds' ratios)")
        for name, error in errors.items():
            print(f"  {name}: {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
