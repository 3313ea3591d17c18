"""How the search makes candidates: the seeds of generation 0, mutation and crossover.

`Variation` adapts the genome operators (`operators/`) to one network. It sees the
network only as a `NetworkView` (slots, effective specs, a validity check), so
operators stay ignorant of capacity and latency. Every draw comes from the RNG
the engine passes in; nothing here keeps random state of its own.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genomes.genes import (
    CacheWrite,
    Fuse,
    InnerKh,
    Pack,
    Parallel,
    Reorder,
    Tile,
    TilePad,
    Unroll,
    Vectorize,
    Winograd,
    admitted,
)
from genomes.genome import LayerGenome, NetworkGenome
from genomes.spec import LayerSpec
from operators import (
    SHARE_RATE,
    SPREAD_RATE,
    Change,
    crossover,
    mutate,
    share,
    slot_weights,
    spread,
)
from operators.network import SlotLike

# A schedule that is good on x86 CPUs for most conv shapes: register tiles of 8
# output channels x 16 output columns, vectorized along the columns, accumulated in
# a local buffer, outer loops fused and run in parallel. Seeded into generation 0
# as a program-only individual so the search starts from a sensible program.
TEMPLATE_SCHEDULE = LayerGenome((
    Tile("co", 8), Tile("ow", 16), Vectorize("ow"), CacheWrite(), Fuse(3), Parallel(),
    Unroll(64),
))

# Vectorized over output channels with weights packed OIHW8o, as ONNX Runtime's NCHWc
# kernels are, instead of along output columns: the template vectorizes columns that a
# stride of 2 makes strided, and loses 1.6-2.7x to ONNX Runtime on every strided conv of
# resnet18/resnet20, where this schedule comes within 0.82-1.07x of it
# (benchmarks/RESULTS.md, "Against ONNX Runtime, conv by conv"). The second seed.
CHANNEL_SCHEDULE = LayerGenome((
    Tile("co", 8), Pack(8), Tile("ow", 8), Vectorize("co"), CacheWrite(), Fuse(3),
    Parallel(), Unroll(64),
))
# The register tile of AVX-512: 16 output channels (one 16-lane vector, weights packed
# to match) x 2 rows x 4 columns, 8 accumulators. Timed with cold caches on resnet18
# (benchmarks/RESULTS.md, "The program side"; AMD EPYC Zen 4, 2 threads): 1.2-2.0x faster
# than the better of the two schedules above on every strided conv, the fastest seed
# there and on the 4x4 convs.
CHANNEL16_SCHEDULE = LayerGenome((
    Tile("co", 16), Pack(16), Vectorize("co"), Tile("oh", 2), Tile("ow", 4), CacheWrite(),
    Fuse(3), Parallel(), Unroll(16),
))
# Winograd F(4x4, 3x3) (`genomes.tvm_winograd`): its matrix products vectorized over 16
# output channels with packed weights, 4 tiles each, accumulated in registers. Only on
# 3x3 convs at stride 1, where it ran resnet18's 64- and 128-channel convs 1.6x and 1.9x
# faster than the best direct schedule (same table); with few tiles (a 4x4 output is
# one) it loses.
WINOGRAD_SCHEDULE = LayerGenome((
    Winograd(4), Tile("co", 16), Pack(16), Vectorize("co"), Tile("ow", 4), CacheWrite(),
    Fuse(3), Parallel(), Unroll(16),
))
# Winograd F(2x2, 3x3), products over 32 output channels x 4 tiles: fewer tiles' worth of
# transforms and weights 1.8x the direct conv's (F(4x4): 4x); the fastest seed on
# resnet18's 8x8 convs (same table).
WINOGRAD2_SCHEDULE = LayerGenome((
    Winograd(2), Tile("co", 32), Pack(32), Vectorize("co"), Tile("ow", 4), CacheWrite(),
    Fuse(3), Parallel(), Unroll(16),
))
# The program-only seeds of generation 0, by the name in their operator ("initial:NAME"):
# the five above, and each direct-conv one run in parallel over bands of output rows
# (outer loops reordered oh, co, ow and the outer two fused) with the padded input made
# once per band (`tile_pad`). On resnet20's convs those were 1.3-3.4x faster than the
# plain seeds, on resnet18's convs of 16x16 and more 1.1-1.3x (its stem 2.1x); on its
# 8x8 and 4x4 convs with 256-512 input channels, with too few bands for two threads, up
# to 1.9x slower (benchmarks/RESULTS.md, "Padding inside the tile"). Generation 1 takes
# the fastest seed conv by conv.
SEED_SCHEDULES = {"template": TEMPLATE_SCHEDULE, "channels": CHANNEL_SCHEDULE,
                  "channels16": CHANNEL16_SCHEDULE, "winograd": WINOGRAD_SCHEDULE,
                  "winograd2": WINOGRAD2_SCHEDULE}
ROW_BANDS = (Reorder(("oh", "co", "ow")), Fuse(2), TilePad())
SEED_SCHEDULES.update({f"{name}+tile_pad": LayerGenome(SEED_SCHEDULES[name].genes + ROW_BANDS)
                       for name in ("template", "channels", "channels16")})
# MetaSchedule's winning kernel for resnet20's 16->16 convs in our genes: a register tile
# of 4 output channels x 4 rows x 16 columns (vectorized along the columns), bands of
# rows in parallel with the padded input made per band, and the kernel-row loop inside
# the tile (`inner_kh`), so a tile's 6 input rows serve all 3 kernel rows. On resnet20's
# 16->16 and 32->32 convs 1.28x and 1.18x faster than the best seed above, and the
# combined seeds 1.14x faster end to end; on resnet18 it wins no conv (Intel Xeon,
# 2026-12-03, one sitting; benchmarks/RESULTS.md, "The kernel rows inside the tile").
SEED_SCHEDULES["rows"] = LayerGenome((
    Tile("co", 4), Tile("oh", 4), Tile("ow", 16), Vectorize("ow"), Parallel(), Unroll(512),
    InnerKh()) + ROW_BANDS)


def allows(slot: SlotLike, schedule: LayerGenome) -> bool:
    """Whether `slot` admits every gene of `schedule` (`genomes.genes.admitted`: allowed
    there, or a program gene that does nothing on its shape)."""
    return all(admitted(g, slot.allowed, slot.spec) for g in schedule.genes)


def template_genome(slots: Sequence[SlotLike],
                    schedule: LayerGenome = TEMPLATE_SCHEDULE) -> NetworkGenome:
    """`schedule` (the template by default) on every slot that allows all its genes (not
    checked to decode)."""
    return NetworkGenome({slot.id: schedule for slot in slots if allows(slot, schedule)})


def seed_genome(slots: Sequence[SlotLike], schedule: LayerGenome) -> NetworkGenome:
    """`schedule` on every slot that allows all its genes, the template on the others
    (which allow it): a seed's network as `Variation.seeds` builds it, before checking
    that each layer decodes."""
    return NetworkGenome({slot.id: schedule if allows(slot, schedule) else TEMPLATE_SCHEDULE
                          for slot in slots})


@dataclass(frozen=True)
class Proposal:
    """A candidate before it is an individual: genome, parent ids, operator, what changed."""

    genome: NetworkGenome
    parents: tuple[int, ...] = ()
    operator: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class CachedView:
    """A `NetworkView` over a decode function, memoised by genome hash.

    `decode(genome)` returns `(specs by slot id, error)`; the search provides it
    from `evo.networks.transform_network` without building torch modules.
    """

    def __init__(self, slots: Sequence[SlotLike],
                 decode: Callable[[NetworkGenome], tuple[dict[str, LayerSpec], str | None]],
                 cache_size: int = 4096) -> None:
        self._slots = tuple(slots)
        self._decode = decode
        self._cache: OrderedDict[str, tuple[dict[str, LayerSpec], str | None]] = OrderedDict()
        self._cache_size = cache_size

    @property
    def slots(self) -> Sequence[SlotLike]:
        return self._slots

    def _decoded(self, genome: NetworkGenome) -> tuple[dict[str, LayerSpec], str | None]:
        key = genome.hash()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        decoded = self._cache[key] = self._decode(genome)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return decoded

    def spec_of(self, genome: NetworkGenome, slot_id: str) -> LayerSpec | None:
        specs, error = self._decoded(genome)
        return None if error else specs.get(slot_id)

    def check(self, genome: NetworkGenome) -> str | None:
        return self._decoded(genome)[1]


def fastest_per_slot(measured: Sequence[tuple[NetworkGenome, dict[str, float | None]]],
                     ) -> tuple[NetworkGenome, list[int]] | None:
    """Program-only genomes and their measured ms per slot -> the genome taking each
    slot's layer from the genome fastest on it, and which genome (index) each slot came
    from; None unless every genome is program-only, all have the same slots, every slot
    is measured in each, and the result differs from every one of them."""
    if len(measured) < 2:
        return None
    slots = set(measured[0][0].layers)
    if any(set(genome.layers) != slots or genome.neural.layers for genome, _ in measured):
        return None
    layers, chosen = {}, []
    for slot_id in sorted(slots):
        times = [ms.get(slot_id) for _, ms in measured]
        if any(t is None for t in times):
            return None
        fastest = min(range(len(measured)), key=lambda i: times[i])
        layers[slot_id] = measured[fastest][0].layer(slot_id)
        chosen.append(fastest)
    if len(set(chosen)) < 2:
        return None
    return NetworkGenome(layers), chosen


class Variation:
    """Mutation, crossover and initial individuals for one network."""

    def __init__(self, view: CachedView, neural: bool = True, initial_genes: int = 4,
                 max_attempts: int = 20, share_rate: float = SHARE_RATE,
                 spread_rate: float = SPREAD_RATE) -> None:
        self.view = view
        self.neural = neural
        self.initial_genes = initial_genes
        self.max_attempts = max_attempts
        self.share_rate = share_rate
        self.spread_rate = spread_rate if neural else 0.0
        self.weights = slot_weights(view)

    def template(self) -> NetworkGenome | None:
        """The original network with `TEMPLATE_SCHEDULE` on every slot that allows it,
        or None if that does not decode."""
        genome = template_genome(self.view.slots)
        if not genome.layers or self.view.check(genome) is not None:
            return None
        return genome

    def seeds(self) -> list[Proposal]:
        """Fixed members of generation 0 after the original, program-only: the template
        schedule on every slot, if it decodes; then each other seed schedule
        (`SEED_SCHEDULES`) on every slot where it applies and decodes, the template on the
        others, if that is another genome."""
        template = self.template()
        if template is None:
            return []
        out = [Proposal(template, (), "initial:template", {"slots": list(template.layers)})]
        for name, schedule in SEED_SCHEDULES.items():
            if schedule is TEMPLATE_SCHEDULE:
                continue
            genome, slots = template, []
            allowed = template_genome(self.view.slots, schedule).layers
            for slot_id in template.layers:
                trial = NetworkGenome({**genome.layers, slot_id: schedule})
                if slot_id in allowed and self.view.check(trial) is None:
                    genome = trial
                    slots.append(slot_id)
            if slots:
                out.append(Proposal(genome, (), f"initial:{name}", {"slots": slots}))
        return out

    def initial(self, rng: np.random.Generator, program_only: bool) -> Proposal | None:
        """A mutant of the original network: the template schedule (where it applies)
        plus `initial_genes` insertions, program genes only if `program_only`; None if
        no valid mutant came out of this draw.

        Mutants start from the template because a conv left as unscheduled loops is
        tens of times slower than a scheduled one: mutants of the bare original would
        all lose to the template and generation 0 would be wasted."""
        genome = self.template() or NetworkGenome()
        added: list[dict] = []
        neural = self.neural and not program_only
        for _ in range(self.initial_genes):
            change = self._retry(lambda g=genome: mutate(
                rng, g, self.view, neural, self.weights, {"insert": 1.0}))
            if change is None:
                break
            genome = change.genome
            added.append(change.detail)
        if not added:
            return None
        kind = "program" if program_only or not self.neural else "any"
        return Proposal(genome, (), f"initial:{kind}", {"inserted": added})

    def mutate(self, rng: np.random.Generator, genome: NetworkGenome) -> Change | None:
        """With probability `share_rate`, `share` one slot's sequence with the slots of
        its shape; with probability `spread_rate` (neural searches only), `spread` one
        slot's neural genes to the slots of its kind (one draw each); otherwise, or when
        that gives nothing, one mutation of one slot (retried up to `max_attempts`
        draws)."""
        draw = rng.random()
        if draw < self.share_rate:
            shared = share(rng, genome, self.view, self.neural, self.weights)
            if shared is not None:
                return shared
        elif draw < self.share_rate + self.spread_rate:
            spreaded = spread(rng, genome, self.view, self.weights)
            if spreaded is not None:
                return spreaded
        return self._retry(lambda: mutate(rng, genome, self.view, self.neural, self.weights))

    def crossover(self, rng: np.random.Generator, first: NetworkGenome,
                  second: NetworkGenome) -> Change | None:
        """A child of two parents (retried up to `max_attempts` draws)."""
        return self._retry(lambda: crossover(rng, first, second, self.view))

    def _retry(self, draw: Callable[[], Change | None]) -> Change | None:
        for _ in range(self.max_attempts):
            change = draw()
            if change is not None:
                return change
        return None

