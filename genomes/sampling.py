"""Random genes and layer genomes that apply to a given layer.

Used by `evo verify`, the property tests and the mutation operators. Every draw
comes from the explicit `numpy.random.Generator` passed in.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from genomes.genes import (
    GENES,
    NEURAL_GENES,
    PACK_FACTORS,
    PROGRAM_GENES,
    UNROLL_STEPS,
    WINOGRAD_TILES,
    Bottleneck,
    CacheWrite,
    Depthwise,
    Fuse,
    Gene,
    GeneError,
    Group,
    InlinePad,
    InnerKh,
    Pack,
    Parallel,
    Reorder,
    ReorderReduction,
    SplitChannels,
    SplitRows,
    Tile,
    TilePad,
    Unroll,
    UnrollChannels,
    Vectorize,
    Winograd,
)
from genomes.genome import LayerGenome
from genomes.plan import OUTER_AXES, REDUCTION_AXES, TILE_AXES, LayerPlan, initial_plan
from genomes.spec import LayerSpec

ALL_GENE_NAMES = tuple(GENES)
NEURAL_GENE_NAMES = tuple(g.name for g in NEURAL_GENES)
PROGRAM_GENE_NAMES = tuple(g.name for g in PROGRAM_GENES)
TILE_FACTORS = (1, 2, 4, 8, 16, 32, 64)


def random_gene(rng: np.random.Generator, plan: LayerPlan,
                allowed: Collection[str] = ALL_GENE_NAMES) -> Gene:
    """One gene of a kind in `allowed`, with parameters drawn to suit `plan`.

    The gene is not guaranteed to apply (check with `gene.apply`); parameters are
    drawn from values that usually do, such as divisors of the channel counts.
    """
    names = sorted(allowed)
    if not names:
        raise ValueError("no gene kinds allowed")
    name = names[int(rng.integers(len(names)))]
    index = None if rng.random() < 0.6 else int(rng.integers(len(plan.pieces)))
    piece = plan.pieces[0 if index is None else index]
    return _DRAW[name](rng, plan, piece, index)


def random_layer_genome(rng: np.random.Generator, spec: LayerSpec, length: int,
                        allowed: Collection[str] = ALL_GENE_NAMES,
                        attempts: int = 20) -> LayerGenome:
    """A genome of up to `length` genes, each of which applied when it was drawn."""
    plan = initial_plan(spec)
    genes: list[Gene] = []
    for _ in range(length):
        for _ in range(attempts):
            gene = random_gene(rng, plan, allowed)
            try:
                plan = gene.apply(plan)
            except GeneError:
                continue
            genes.append(gene)
            break
    return LayerGenome(tuple(genes))


def _choice(rng: np.random.Generator, values):
    return values[int(rng.integers(len(values)))]


def _divisors(n: int, candidates) -> list[int]:
    return [c for c in candidates if n % c == 0] or [2]


def _draw_bottleneck(rng, plan, piece, index):
    return Bottleneck(_choice(rng, (2, 2, 4)), piece=index)


def _draw_group(rng, plan, piece, index):
    common = np.gcd(piece.in_channels, piece.out_channels) // piece.groups
    return Group(_choice(rng, _divisors(common, (2, 4, 8, 16))), piece=index)


def _draw_depthwise(rng, plan, piece, index):
    return Depthwise(piece=index)


def _draw_split_channels(rng, plan, piece, index):
    parts = _choice(rng, (2, 2, 4))
    size = piece.out_channels // parts if piece.out_channels % parts == 0 else 1
    common = max(1, int(np.gcd(piece.in_channels, max(size, 1))) // piece.groups)
    groups = tuple(_choice(rng, _divisors(common, (1, 1, 2, 4, 8))) for _ in range(parts))
    return SplitChannels(groups, piece=index)


def _draw_unroll_channels(rng, plan, piece, index):
    limit = min(piece.in_channels, piece.out_channels)
    options = [u for u in (4, 8, 16, 32, 64, 128) if u < limit and u % piece.groups == 0] or [1]
    u = _choice(rng, options)
    common = int(np.gcd(piece.in_channels - u, piece.out_channels - u)) if u < limit else 1
    common = max(1, common // piece.groups)
    return UnrollChannels(u, _choice(rng, _divisors(common, (1, 2, 4, 8))), piece=index)


def _draw_split_rows(rng, plan, piece, index):
    return SplitRows(_choice(rng, (2, 2, 4)), piece=index)


def _draw_tile(rng, plan, piece, index):
    return Tile(_choice(rng, TILE_AXES), _choice(rng, TILE_FACTORS), piece=index)


def _draw_reorder(rng, plan, piece, index):
    return Reorder(tuple(rng.permutation(list(OUTER_AXES)).tolist()), piece=index)


def _draw_reorder_reduction(rng, plan, piece, index):
    return ReorderReduction(tuple(rng.permutation(list(REDUCTION_AXES)).tolist()), piece=index)


_DRAW = {
    "bottleneck": _draw_bottleneck,
    "group": _draw_group,
    "depthwise": _draw_depthwise,
    "split_channels": _draw_split_channels,
    "unroll_channels": _draw_unroll_channels,
    "split_rows": _draw_split_rows,
    "tile": _draw_tile,
    "reorder": _draw_reorder,
    "reorder_reduction": _draw_reorder_reduction,
    "vectorize": lambda rng, plan, piece, index: Vectorize(_choice(rng, ("co", "ow")), piece=index),
    "fuse": lambda rng, plan, piece, index: Fuse(int(rng.integers(1, 5)), piece=index),
    "parallel": lambda rng, plan, piece, index: Parallel(piece=index),
    "unroll": lambda rng, plan, piece, index: Unroll(_choice(rng, UNROLL_STEPS[1:]), piece=index),
    "cache_write": lambda rng, plan, piece, index: CacheWrite(piece=index),
    "pack": lambda rng, plan, piece, index: Pack(_choice(rng, PACK_FACTORS[1:]), piece=index),
    "inline_pad": lambda rng, plan, piece, index: InlinePad(piece=index),
    "tile_pad": lambda rng, plan, piece, index: TilePad(piece=index),
    "inner_kh": lambda rng, plan, piece, index: InnerKh(piece=index),
    "winograd": lambda rng, plan, piece, index: Winograd(_choice(rng, WINOGRAD_TILES),
                                                         piece=index),
}
assert set(_DRAW) == set(GENES), "every gene needs a sampler"
