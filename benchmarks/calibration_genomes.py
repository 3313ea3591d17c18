"""The neural genomes of resnet20 the capacity calibration study trains.

Fixed for the study (a change makes new jobs, never reuses results): uniform
genomes (one gene on every slot it fits), per-stage ones, shapes the 2-hour
searches found (depthwise nearly everywhere), and seeded random mixtures of every
neural gene (bottleneck, group, depthwise, Seq1 `split_channels`, Seq2
`unroll_channels`, Seq3 `split_rows`). Every genome is checked to apply.

    .venv/bin/python -m benchmarks.calibration_genomes           # list them, FLOPs
    .venv/bin/python -m benchmarks.calibration_genomes --write   # (re)generate FROZEN

The study reads the genomes from FROZEN (benchmarks/results/), so a later change of
a gene's preconditions cannot silently change what the study trained; `generate`
makes the list afresh.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from evo.networks import Network, load_network, transform_network
from genomes.genome import NetworkGenome

MODEL = "resnet20"
STEM = "conv1"
RANDOM_GENOMES = 18
FROZEN = Path(__file__).resolve().parent / "results" / "calibration-resnet20-genomes.json"
RANDOM_SEED = 20261201
SEARCH_LIKE = 4


def _gene(name: str, **params: Any) -> dict[str, Any]:
    return {"gene": name, **params, "piece": None}


def _slots(network: Network) -> list[str]:
    return [s.id for s in network.slots if s.id != STEM]


def _stage(slot: str) -> int:
    return int(slot.split(".")[0].removeprefix("layer")) if slot.startswith("layer") else 0


def _applies(network: Network, layers: dict[str, list[dict]]) -> bool:
    genome = NetworkGenome.from_json({"schema": 1, "layers": layers})
    return transform_network(network, genome, seed=0).error is None


def _uniform(network: Network, gene: dict, where=lambda slot: True) -> dict[str, list]:
    """`gene` on every non-stem slot `where` accepts and the gene fits."""
    layers = {}
    for slot in _slots(network):
        if where(slot) and _applies(network, {slot: [gene]}):
            layers[slot] = [gene]
    return layers


def _conv1s(slot: str) -> bool:
    return slot.endswith(".conv1")


CHOICES = (
    [_gene("group", groups=g) for g in (2, 4, 8)]
    + [_gene("depthwise")]
    + [_gene("bottleneck", factor=f) for f in (2, 4)]
    + [_gene("split_channels", groups=list(g)) for g in ((1, 2), (1, 4), (2, 8), (1, 1, 4, 4))]
    + [_gene("unroll_channels", u=8, groups=g) for g in (2, 4)]
    + [_gene("split_rows", parts=p) for p in (2, 4)]
)


def _random(network: Network, rng: np.random.Generator, p: float) -> dict[str, list]:
    """Each non-stem slot changed with probability `p` by one or two genes from CHOICES
    (redrawn until they apply)."""
    layers: dict[str, list] = {}
    for slot in _slots(network):
        if rng.random() >= p:
            continue
        for _ in range(50):
            count = 1 if rng.random() < 0.75 else 2
            genes = [CHOICES[int(i)] for i in rng.choice(len(CHOICES), count, replace=False)]
            if _applies(network, {**layers, slot: genes}):
                layers[slot] = genes
                break
    return layers


def _search_like(network: Network, rng: np.random.Generator) -> dict[str, list]:
    """Shaped like the 2-hour searches' winners: depthwise on most slots (p 0.8), the
    rest group(4), group(8), a Seq1 split or unchanged."""
    others = [_gene("group", groups=4), _gene("group", groups=8),
              _gene("split_channels", groups=[1, 4]), None]
    layers: dict[str, list] = {}
    for slot in _slots(network):
        gene = _gene("depthwise") if rng.random() < 0.8 else others[int(rng.integers(4))]
        if gene is not None and _applies(network, {**layers, slot: [gene]}):
            layers[slot] = [gene]
    return layers


def study_genomes() -> dict[str, dict[str, Any]]:
    """Name -> network genome JSON, in the order the study trains them (from FROZEN)."""
    return json.loads(FROZEN.read_text())


def generate(network: Network | None = None) -> dict[str, dict[str, Any]]:
    """The study's genomes made afresh, in training order."""
    network = network or load_network(MODEL, (1, 3, 32, 32), seed=0)
    dw, u = _gene("depthwise"), _uniform
    named: dict[str, dict[str, list]] = {
        "original": {},
        "g2-all": u(network, _gene("group", groups=2)),
        "g4-all": u(network, _gene("group", groups=4)),
        "g8-all": u(network, _gene("group", groups=8)),
        "g16-all": u(network, _gene("group", groups=16)),
        "dw-all": u(network, dw),
        "bn2-conv1s": u(network, _gene("bottleneck", factor=2)),
        "bn4-conv1s": u(network, _gene("bottleneck", factor=4)),
        "seq1-12-all": u(network, _gene("split_channels", groups=[1, 2])),
        "seq1-14-all": u(network, _gene("split_channels", groups=[1, 4])),
        "seq1-28-all": u(network, _gene("split_channels", groups=[2, 8])),
        "seq2-u8g4-all": u(network, _gene("unroll_channels", u=8, groups=4)),
        "seq2-u8g8-all": u(network, _gene("unroll_channels", u=8, groups=8)),
        "seq3-2-all": u(network, _gene("split_rows", parts=2)),
        "seq3-4-all": u(network, _gene("split_rows", parts=4)),
        "dw-stage1": u(network, dw, lambda s: _stage(s) == 1),
        "dw-stage2": u(network, dw, lambda s: _stage(s) == 2),
        "dw-stage3": u(network, dw, lambda s: _stage(s) == 3),
        "g4-stage1": u(network, _gene("group", groups=4), lambda s: _stage(s) == 1),
        "g4-stage3": u(network, _gene("group", groups=4), lambda s: _stage(s) == 3),
        "bn2-stage3": u(network, _gene("bottleneck", factor=2), lambda s: _stage(s) == 3),
        "dw-conv1s": u(network, dw, _conv1s),
        "dw-conv2s": u(network, dw, lambda s: s.endswith(".conv2")),
        "g2-conv2s": u(network, _gene("group", groups=2), lambda s: s.endswith(".conv2")),
        "dw-but-transitions": u(network, dw, lambda s: not s.startswith(
            ("layer2.0.conv1", "layer3.0.conv1"))),
        "dw-but-last": u(network, dw, lambda s: s != "layer3.2.conv2"),
        "dw-but-stage3": u(network, dw, lambda s: _stage(s) != 3),
    }
    g8 = _gene("group", groups=8)
    named["bn2-g8-all"] = {slot: ([_gene("bottleneck", factor=2)] if _conv1s(slot) else [])
                           + [g8] for slot in named["g8-all"]}
    named["bn2-g2-all"] = {slot: ([_gene("bottleneck", factor=2)] if _conv1s(slot) else [])
                           + [_gene("group", groups=2)] for slot in named["g2-all"]}
    named["minimal"] = {slot: [_gene("bottleneck", factor=4), _gene("group", groups=4)]
                        if _conv1s(slot) else [dw] for slot in named["dw-all"]}
    rng = np.random.default_rng(RANDOM_SEED)
    for i in range(RANDOM_GENOMES):
        p = (0.25, 0.5, 0.75, 1.0)[i % 4]
        named[f"random{i:02d}-p{int(p * 100)}"] = _random(network, rng, p)
    for i in range(SEARCH_LIKE):
        named[f"searchlike{i}"] = _search_like(network, rng)
    assert all(_applies(network, layers) for layers in named.values())
    return {name: {"schema": 1, "layers": layers} for name, layers in named.items()}


def main() -> int:
    network = load_network(MODEL, (1, 3, 32, 32), seed=0)
    from evo.capacity.proxies import flops

    base = flops(network.module, (1, 3, 32, 32))
    if "--write" in sys.argv[1:]:
        FROZEN.write_text(json.dumps(generate(network), indent=1) + "\n")
    genomes = study_genomes()
    for name, genome in genomes.items():
        module = transform_network(network, NetworkGenome.from_json(genome), seed=0).module
        share = flops(module, (1, 3, 32, 32)) / base
        print(f"{name:22} {100 * share:6.1f} % FLOPs  {len(genome['layers']):2d} slots changed")
    print(f"{len(genomes)} genomes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
