"""The program-only search against MetaSchedule, conv by conv, in one sitting.

    .venv/bin/python -m benchmarks.per_conv BENCH [--threads N] [--json]
    .venv/bin/python -m benchmarks.per_conv --template MODEL [--schedule template|channels]
        [--threads N] [--json]

BENCH is a folder `evo bench --model M --time-budget T` made, so its MetaSchedule
row was tuned with the same wall-clock budget as the program-only search (unless
`--metaschedule-trials-per-task` said otherwise). Both networks are compiled (the
program-only search's best with our conv programs; MetaSchedule's library as the
bench exported it, BENCH/metaschedule/network.so), checked against PyTorch and
profiled inside the network (`evo.bench.op_profile`). Kernels are matched by conv
workload (`evo.bench.conv_workloads`): a row per distinct conv shape, with the slots
that have it and the milliseconds per inference each compilation spends on it;
then the rest (batch norm, ReLU, adds, pooling, linear) and the VM's own calls.
The best peer of today, ONNX Runtime, is a third column (`evo.bench.ort_profile`: its
profiler's per-node times, conv nodes matched to slots by workload; its end to end
is timed as the `onnxruntime` peer row). `--template MODEL` needs no bench: a zoo
network with one fixed schedule on every conv (the template, where every search
starts, or `channels`, vectorized over output channels with packed weights) against
ONNX Runtime alone.

MetaSchedule's conv kernels include what TVM fused into them (batch norm's
multiply-add, the residual add, ReLU), and ORT's include the folded batch norm and
fused ReLU; so do ours since 2026-12-02 (`to_relax` fuses a conv's BatchNorm, and the
residual add and ReLU after it, into its program; what it cannot fuse runs as
separate kernels, counted under "other").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TVM_NUM_THREADS", "2")

import tvm  # noqa: E402

from benchmarks.profile_rows import bench_genomes  # noqa: E402
from evo.bench.conv_workloads import (  # noqa: E402
    ConvShape,
    slot_shape,
    tvm_conv_workloads,
    tvm_kernel_conv,
)
from evo.bench.end_to_end import genome_end_to_end, measured  # noqa: E402
from evo.bench.metaschedule import LIBRARY, RECORD  # noqa: E402
from evo.bench.op_profile import Breakdown  # noqa: E402
from evo.bench.ort_profile import match_slots, ort_conv_times  # noqa: E402
from evo.bench.peers import peer_end_to_end  # noqa: E402
from evo.bench.relax_import import program_symbol  # noqa: E402
from evo.errors import UsageError  # noqa: E402
from evo.networks import Network, load_network  # noqa: E402
from evo.search.variation import SEED_SCHEDULES, seed_genome  # noqa: E402
from evo.target import make_target  # noqa: E402
from genomes.genome import NetworkGenome  # noqa: E402


def per_shape_ms(breakdown: Breakdown, shape_of: dict[str, ConvShape]) -> tuple[
        dict[ConvShape, float], dict[str, float]]:
    """Milliseconds per conv workload, and per kind for every kernel that is not a
    matched conv ("other" includes a conv kernel whose workload is unknown)."""
    convs: dict[ConvShape, float] = defaultdict(float)
    rest: dict[str, float] = defaultdict(float)
    for kernel in breakdown.kernels:
        shape = shape_of.get(kernel.symbol)
        if shape is None:
            rest[kernel.kind if kernel.kind != "conv" else "other"] += kernel.ms
        else:
            convs[shape] += kernel.ms
    return dict(convs), dict(rest)


def compare(bench: Path, threads: int) -> dict:
    """A bench folder's program-only best, MetaSchedule library and ONNX Runtime."""
    facts = bench_genomes(str(bench), [])
    network, config = facts.network, facts.config
    library_path = bench / "metaschedule" / LIBRARY
    if not library_path.is_file():
        raise UsageError(f"{bench}: no metaschedule/{LIBRARY} (bench made with "
                         f"--metaschedule-trials-per-task 0?)")
    name, genome = next((n, g) for n, g in facts.genomes.items()
                        if n.startswith("program-only"))
    library = tvm.runtime.load_module(str(library_path))
    theirs = measured(network.module, library, network.input_shape, threads, True, 0.0,
                      library=library_path)
    tuning = json.loads((bench / "metaschedule" / RECORD).read_text())["tuning"]
    return {"bench": str(bench), **_compare(network, config.target, name, genome,
                                            (theirs, tuning), threads)}


def compare_template(model: str, threads: int, schedule: str = "template") -> dict:
    """A zoo network with one fixed schedule on every conv (the template, where every
    search starts, or the second seed, `evo.search.variation.CHANNEL_SCHEDULE`) against
    ONNX Runtime; no search, no MetaSchedule."""
    network = load_network(model)
    genome = seed_genome(network.slots, SEED_SCHEDULES[schedule])
    return {"bench": None, **_compare(network, None, f"{schedule} schedule", genome, None,
                                      threads)}


def _compare(network: Network, target: str | None, name: str, genome: NetworkGenome,
             metaschedule: tuple | None, threads: int) -> dict:
    ours = genome_end_to_end(network, genome, make_target(target), threads, 0)
    rows_checked = [("ours", ours)] + ([("MetaSchedule", metaschedule[0])]
                                       if metaschedule else [])
    for label, row in rows_checked:
        if not row.ok:
            raise UsageError(f"{label}: {row.error}")
    slots: dict[ConvShape, list[str]] = defaultdict(list)
    our_shapes = {}
    for slot in network.slots:
        shape = slot_shape(slot.spec)
        slots[shape].append(slot.id)
        our_shapes[program_symbol(slot.id)] = shape
    our_convs, our_rest = per_shape_ms(ours.breakdown, our_shapes)
    their_convs: dict[ConvShape, float] = {}
    their_rest: dict[str, float] = {}
    if metaschedule:
        workloads = tvm_conv_workloads(network.module, network.input_shape, make_target(target))
        their_shapes = {k.symbol: workloads[c] for k in metaschedule[0].breakdown.kernels
                        if (c := tvm_kernel_conv(k.symbol)) in workloads}
        their_convs, their_rest = per_shape_ms(metaschedule[0].breakdown, their_shapes)
    ort = _onnxruntime(network, threads, our_shapes)
    rows = [{"shape": shape.describe(), "slots": slots.get(shape, []),
             "program_only_ms": our_convs.get(shape), "metaschedule_ms": their_convs.get(shape),
             "onnxruntime_ms": ort["convs"].get(shape) if ort["convs"] is not None else None}
            for shape in sorted(set(our_convs) | set(their_convs))]
    return {"model": network.name, "program_only": name,
            "metaschedule": metaschedule[1] if metaschedule else None, "threads": threads,
            "onnxruntime": ort["about"],
            "latency_ms": {"program_only": ours.latency.median_ms,
                           "metaschedule": metaschedule[0].latency.median_ms
                           if metaschedule else None,
                           "onnxruntime": ort["latency_ms"]},
            "convs": rows,
            "rest_ms": {"program_only": our_rest, "metaschedule": their_rest,
                        "onnxruntime": ort["rest"]}}


def _onnxruntime(network, threads: int, our_shapes: dict[str, ConvShape]) -> dict:
    """ORT's milliseconds per conv workload (None when a slot's workload is not among
    its conv nodes), the rest, and its timed end to end; an error is a value."""
    row = peer_end_to_end("onnxruntime", network.module, network.input_shape, threads)
    if not row.ok:
        return {"about": row.error, "convs": None, "rest": {}, "latency_ms": None}
    profile = ort_conv_times(network.module, network.input_shape, threads)
    by_slot = match_slots(network, profile)
    convs = None
    if by_slot is not None:
        convs = defaultdict(float)
        for slot, ms in by_slot.items():
            convs[our_shapes[program_symbol(slot)]] += ms
    return {"about": f"ONNX Runtime {profile.version}" + (
                "" if by_slot is not None else "; a slot's workload is not among its convs"),
            "convs": convs, "rest": {"other": profile.other_ms},
            "latency_ms": row.latency.median_ms}


def format_table(result: dict) -> str:
    tuning = result["metaschedule"]
    columns = ("program_only", "metaschedule", "onnxruntime")
    against = "no MetaSchedule" if tuning is None else (
        f"MetaSchedule ({tuning['tasks']} tasks, {tuning.get('measured')} trials measured, "
        f"{tuning.get('seconds')} s of tuning, stopped by {tuning.get('stopped')})")
    lines = [f"{result['model']}: {result['program_only']} against {against} "
             f"and {result['onnxruntime']}; {result['threads']} threads; ms per inference",
             f"{'conv workload':28} {'slots':>5} {'ours':>9} {'MS':>9} {'ORT':>9} "
             f"{'MS/ours':>8} {'ORT/ours':>8}"]

    def cell(value: float | None) -> str:
        return f"{value:9.3f}" if value is not None else f"{'-':>9}"

    def ratio(theirs: float | None, ours: float | None) -> str:
        return f"{theirs / ours:7.2f}x" if ours and theirs else f"{'-':>8}"

    for row in result["convs"]:
        values = [row[f"{c}_ms"] for c in columns]
        lines.append(f"{row['shape']:28} {len(row['slots']):5d} "
                     f"{' '.join(cell(v) for v in values)} "
                     f"{ratio(values[1], values[0])} {ratio(values[2], values[0])}")
    for kind in ("other", "runtime"):
        values = [result["rest_ms"][c].get(kind) for c in columns]
        lines.append(f"{kind:28} {'':5} {' '.join(cell(v) for v in values)}")
    values = [result["latency_ms"][c] for c in columns]
    lines.append(f"{'end to end (timed)':28} {'':5} {' '.join(cell(v) for v in values)} "
                 f"{ratio(values[1], values[0])} {ratio(values[2], values[0])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench", type=Path, metavar="BENCH", nargs="?")
    parser.add_argument("--template", metavar="MODEL",
                        help="instead of a bench: this zoo network with the template "
                             "schedule against ONNX Runtime")
    parser.add_argument("--schedule", choices=tuple(SEED_SCHEDULES), default="template",
                        help="with --template: a seed schedule (evo.search.variation) on "
                             "every conv it applies to, the template on the others "
                             "(default template; channels: vectorized over output "
                             "channels; winograd: F(4x4) on 3x3 convs at stride 1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if (args.bench is None) == (args.template is None):
        print("error: give a BENCH folder or --template MODEL", file=sys.stderr)
        return 2
    try:
        result = (compare(args.bench, args.threads) if args.bench is not None
                  else compare_template(args.template, args.threads, args.schedule))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
