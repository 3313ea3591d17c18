"""`evo genome show`: what a genome does to a layer: pieces, FLOPs and parameters."""

from __future__ import annotations

import argparse

HELP = "Inspect a genome file: `evo genome show FILE --layer CI,CO,H,W,K,STRIDE`."

EXAMPLES = """examples:
  # one slot of an exported winner (tiny's layer1.conv2 is 32->32 3x3/s1 on 16x16)
  evo genome show runs/demo/winner/genome.json --slot layer1.conv2 --layer 32,32,16,16,3,1
  # a layer genome (a JSON list of genes) on a 16->32 3x3 stride-2 conv on 32x32
  evo genome show layer.json --layer 16,32,32,32,3,2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    sub.required = True
    show = sub.add_parser("show", help="print the pieces, FLOPs and parameter count",
                          description="Decode a layer genome for a layer and print its pieces "
                                      "(channel and row ranges, groups), schedules, FLOPs and "
                                      "parameters, against the untransformed layer.",
                          epilog=EXAMPLES, formatter_class=parser.formatter_class)
    show.add_argument("file", metavar="FILE", help="genome JSON: a list of genes, or a network "
                                                   "genome (then choose a layer with --slot)")
    show.add_argument("--layer", required=True, metavar="CI,CO,H,W,K,STRIDE",
                      help="the layer the genome applies to")
    show.add_argument("--slot", help="which layer of a network genome to show")


def run(args: argparse.Namespace) -> int:
    from evo.analysis.order import in_order
    from evo.errors import UsageError
    from genomes.genome import LayerGenome, decode_layer, load_genome_file
    from genomes.plan import initial_plan
    from genomes.spec import parse_layer_option

    spec = parse_layer_option(args.layer)
    loaded = load_genome_file(args.file)
    if isinstance(loaded, LayerGenome):
        genome = loaded
    elif args.slot is not None:
        if args.slot not in loaded.layers:
            raise UsageError(f"{args.file}: no slot {args.slot!r} "
                             f"(slots: {', '.join(in_order(loaded.layers)) or 'none'})")
        genome = loaded.layers[args.slot]
    elif len(loaded.layers) == 1:
        genome = next(iter(loaded.layers.values()))
    else:
        raise UsageError(f"{args.file}: a network genome with {len(loaded.layers)} layers; "
                         f"choose one with --slot")
    decoded = decode_layer(spec, genome)
    if not decoded.ok:
        raise UsageError(f"{args.file}: does not apply to layer {spec.short()}: {decoded.error}")
    plan, base = decoded.plan, initial_plan(spec)
    print(f"layer   {spec.short()}  (output {'x'.join(map(str, plan.out_shape))})")
    print(f"genome  {genome.describe()}")
    print(f"hash    {genome.hash()}")
    print(f"pieces  {len(plan.pieces)}")
    for index, (piece, schedule) in enumerate(zip(plan.pieces, plan.schedules, strict=True)):
        print(f"  [{index}] {piece.describe(spec)}  flops {piece.flops(spec):,}  "
              f"params {piece.params(spec):,}")
        print(f"       schedule {_schedule_text(schedule)}")
    print(f"FLOPs   {plan.flops:,}  ({plan.flops / base.flops:.3f}x of {base.flops:,})")
    print(f"params  {plan.params:,}  ({plan.params / base.params:.3f}x of {base.params:,})")
    return 0


def _schedule_text(schedule) -> str:
    from dataclasses import fields

    from genomes.plan import ScheduleConfig

    default = ScheduleConfig()
    changed = [f"{f.name}={getattr(schedule, f.name)}" for f in fields(schedule)
               if getattr(schedule, f.name) != getattr(default, f.name)]
    return " ".join(changed) or "(default, unscheduled)"
