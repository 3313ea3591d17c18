"""`evo slots`: the conv layers of a network that a genome may transform."""

from __future__ import annotations

import argparse
import json

HELP = "List a network's slots (its conv layers): shape, FLOPs and which genes are allowed."

EXAMPLES = """examples:
  evo slots --model tiny
  evo slots --model densenet161 --json
  evo slots --model my_net.py:build --input-shape 1,3,224,224
"""

MODEL_HELP = ("a zoo network (tiny, resnet18, resnet34, resnet20, resnet56, resnext29_2x64d, "
              "densenet161), path/to/file.py:factory or package.module:factory (a callable "
              "returning an nn.Module)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="M", help=MODEL_HELP)
    parser.add_argument("--input-shape", default="1,3,32,32", metavar="N,C,H,W",
                        help="input shape the slots are measured at (default 1,3,32,32)")
    from evo.commands.formats import add_format_options

    add_format_options(parser, "a list, in network order: id, spec, flops, params, allowed "
                               "genes, and what shrinks with a bottleneck")


def run(args: argparse.Namespace) -> int:
    from evo.commands.formats import wants_json
    from evo.networks import load_network, parse_input_shape
    from evo.networks.slots import CHANNEL_PRESERVING, PROGRAM
    from genomes.genes import GENES

    network = load_network(args.model, parse_input_shape(args.input_shape))
    if wants_json(args):
        print(json.dumps([slot_json(slot) for slot in network.slots], indent=1))
        return 0
    total = sum(slot.spec.flops for slot in network.slots)
    shape = "x".join(map(str, network.input_shape))
    print(f"{network.name}: {len(network.slots)} slots, input {shape}, "
          f"{total / 1e6:,.1f} MFLOPs in slots")
    width = max(len("slot"), *(len(s.id) for s in network.slots))
    print(f"{'slot':<{width}}  {'layer':<32} {'MFLOPs':>9} {'params':>9}  bottleneck")
    for slot in network.slots:
        bottleneck = ("yes, shrinks " + ", ".join(slot.shrinks + slot.feeds)
                      if "bottleneck" in slot.allowed else "no")
        print(f"{slot.id:<{width}}  {slot.spec.short():<32} {slot.spec.flops / 1e6:>9,.1f} "
              f"{slot.spec.params:>9,}  {bottleneck}")
    lacking = {slot.id: [g for g in CHANNEL_PRESERVING if g not in slot.allowed]
               for slot in network.slots}
    exceptions = "; ".join(f"{slot_id} not {', '.join(genes)}"
                           for slot_id, genes in lacking.items() if genes)
    print(f"every slot allows {', '.join(CHANNEL_PRESERVING)} and the program genes "
          f"({', '.join(PROGRAM)})" + (f", except where they cannot apply: {exceptions}"
                                       if exceptions else ""))
    for gene in PROGRAM:
        where = [slot.id for slot in network.slots if gene in slot.allowed]
        if len(where) < len(network.slots):
            print(f"{gene} applies to {len(where)} of {len(network.slots)} slots"
                  + (f" ({GENES[gene].acts_where})" if GENES[gene].acts_where else "")
                  + (f": {', '.join(where)}" if where else ""))
    return 0


def slot_json(slot) -> dict:
    return {"id": slot.id, "spec": slot.spec.to_json(), "flops": slot.spec.flops,
            "params": slot.spec.params, "allowed": list(slot.allowed),
            "bottleneck_shrinks": list(slot.shrinks), "bottleneck_feeds": list(slot.feeds),
            "fisher_activation": slot.measure_at}
