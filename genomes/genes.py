"""Genes: the transformations a layer genome is a sequence of.

Every gene acts on a `LayerPlan` and may name one piece (`piece=i`) or, with
`piece=None`, act on every piece. Neural genes change what the layer computes
(its pieces); program genes change only how a piece runs (its `ScheduleConfig`).
A gene whose precondition does not hold raises `GeneError` with a sentence that
names the gene, the piece and the reason; `genomes.decode` turns it into a value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from genomes.plan import (
    OUTER_AXES,
    REDUCTION_AXES,
    TILE_AXES,
    LayerPlan,
    Piece,
    ScheduleConfig,
    winograd_fits,
)
from genomes.spec import LayerSpec, conv_out_size


class GeneError(ValueError):
    """A gene's precondition does not hold on the plan it is applied to."""


class GenomeFormatError(ValueError):
    """A gene or genome document is malformed; the message names the bad field."""


MAX_TILE = 64
MAX_SPLIT_PARTS = 8
UNROLL_STEPS = (0, 4, 16, 64, 512)
PACK_FACTORS = (1, 4, 8, 16, 32)
WINOGRAD_TILES = (2, 4)


@dataclass(frozen=True)
class Gene:
    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    piece: int | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.piece is not None and (not _is_int(self.piece) or self.piece < 0):
            raise GenomeFormatError(f"{self.name}.piece must be null or an integer >= 0")
        self._check()

    def _check(self) -> None:
        """Static validation of parameters; raise GenomeFormatError."""

    def apply(self, plan: LayerPlan) -> LayerPlan:
        targets = self._targets(plan)
        pieces: list[Piece] = []
        schedules: list[ScheduleConfig] = []
        for index, (piece, schedule) in enumerate(zip(plan.pieces, plan.schedules, strict=True)):
            if index in targets:
                new = self._apply_piece(plan, index, piece, schedule)
                pieces.extend(p for p, _ in new)
                schedules.extend(s for _, s in new)
            else:
                pieces.append(piece)
                schedules.append(schedule)
        return replace(plan, pieces=tuple(pieces), schedules=tuple(schedules))

    def _targets(self, plan: LayerPlan) -> set[int]:
        if self.piece is None:
            return set(range(len(plan.pieces)))
        if self.piece >= len(plan.pieces):
            raise GeneError(f"{self.label()}: the layer has only {len(plan.pieces)} piece(s)")
        return {self.piece}

    def _apply_piece(self, plan: LayerPlan, index: int, piece: Piece,
                     schedule: ScheduleConfig) -> list[tuple[Piece, ScheduleConfig]]:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The gene's parameters (without `piece`), JSON-ready."""
        out = {}
        for f in fields(self):
            if f.name == "piece":
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> dict[str, Any]:
        return {"gene": self.name, **self.params(), "piece": self.piece}

    def label(self) -> str:
        args = ", ".join(
            ",".join(map(str, v)) if isinstance(v, list) else str(v) for v in self.params().values()
        )
        where = "" if self.piece is None else f" @piece{self.piece}"
        return f"{self.name}({args}){where}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------- neural genes


@dataclass(frozen=True)
class NeuralGene(Gene):
    kind: ClassVar[str] = "neural"


@dataclass(frozen=True)
class Bottleneck(NeuralGene):
    """Shrink the output-channel range of each targeted piece to 1/factor."""

    name: ClassVar[str] = "bottleneck"
    factor: int = 2

    def _check(self) -> None:
        _require_int(self, "factor", 2, 64)

    def apply(self, plan: LayerPlan) -> LayerPlan:
        f = self.factor
        if self.piece is None:
            pieces = []
            for index, piece in enumerate(plan.pieces):
                co = piece.out_channels
                if piece.out_start % f or co % f or (co // f) % piece.groups:
                    raise GeneError(f"{self.label()}: piece {index} (out {piece.out_start}:"
                                    f"{piece.out_stop}, groups {piece.groups}) does not shrink "
                                    f"evenly by {f}")
                pieces.append(replace(piece, out_start=piece.out_start // f,
                                      out_stop=piece.out_stop // f))
            return replace(plan, pieces=tuple(pieces))
        (target,) = self._targets(plan)
        piece = plan.pieces[target]
        co = piece.out_channels
        if piece.rows != plan.spec.height:
            raise GeneError(f"{self.label()}: piece {target} covers only some rows; "
                            f"it cannot shrink alone")
        if co % f or (co // f) % piece.groups:
            raise GeneError(f"{self.label()}: piece {target} has {co} output channels, not "
                            f"divisible by {f} x groups {piece.groups}")
        cut = co - co // f
        pieces = [
            replace(p, out_stop=p.out_stop - cut) if i == target
            else replace(p, out_start=p.out_start - cut, out_stop=p.out_stop - cut)
            if p.out_start >= piece.out_stop else p
            for i, p in enumerate(plan.pieces)
        ]
        return replace(plan, pieces=tuple(pieces))


@dataclass(frozen=True)
class Group(NeuralGene):
    """Multiply each targeted piece's group count by `groups` (keep the diagonal blocks)."""

    name: ClassVar[str] = "group"
    groups: int = 2

    def _check(self) -> None:
        _require_int(self, "groups", 2, 1024)

    def _apply_piece(self, plan, index, piece, schedule):
        g = piece.groups * self.groups
        for what, count in (("input", piece.in_channels), ("output", piece.out_channels)):
            if count % g:
                raise GeneError(f"{self.label()}: piece {index} has {count} {what} channels, "
                                f"not divisible by {g} groups")
        return [(replace(piece, groups=g), schedule)]


@dataclass(frozen=True)
class Depthwise(NeuralGene):
    """Make each targeted piece depthwise: one group per input channel."""

    name: ClassVar[str] = "depthwise"

    def _apply_piece(self, plan, index, piece, schedule):
        ci, co = piece.in_channels, piece.out_channels
        if piece.groups == ci:
            raise GeneError(f"{self.label()}: piece {index} is already depthwise")
        if co % ci:
            raise GeneError(f"{self.label()}: piece {index} has {co} output channels, not a "
                            f"multiple of its {ci} input channels")
        return [(replace(piece, groups=ci), schedule)]


@dataclass(frozen=True)
class SplitChannels(NeuralGene):
    """Seq1: split a piece's output channels into len(groups) equal parts, each a conv
    over all of the piece's input channels with `groups[i]` times the piece's own
    group count (relative, as `group` is: a grouped or depthwise piece never becomes
    denser, so no connection the piece lacked is added)."""

    name: ClassVar[str] = "split_channels"
    groups: tuple[int, ...] = (1, 1)

    def _check(self) -> None:
        _require_int_tuple(self, "groups", 2, MAX_SPLIT_PARTS, 1, 1024)

    def _apply_piece(self, plan, index, piece, schedule):
        parts = len(self.groups)
        co = piece.out_channels
        if co % parts:
            raise GeneError(f"{self.label()}: piece {index} has {co} output channels, not "
                            f"divisible into {parts} parts")
        size = co // parts
        out = []
        for part, factor in enumerate(self.groups):
            g = piece.groups * factor
            if piece.in_channels % g or size % g:
                raise GeneError(f"{self.label()}: part {part} of piece {index} "
                                f"({piece.in_channels} in, {size} out) not divisible by {g} "
                                f"groups ({factor} x the piece's {piece.groups})")
            start = piece.out_start + part * size
            out.append((replace(piece, out_start=start, out_stop=start + size, groups=g), schedule))
        return out


@dataclass(frozen=True)
class UnrollChannels(NeuralGene):
    """Seq2: the first `u` output channels from a conv over all the piece's inputs with
    the piece's own group count; the rest from a conv with `groups` times that many
    groups over the piece's input channels from `u` on (relative, so a grouped piece
    never becomes denser)."""

    name: ClassVar[str] = "unroll_channels"
    u: int = 16
    groups: int = 2

    def _check(self) -> None:
        _require_int(self, "u", 1, 4096)
        _require_int(self, "groups", 1, 1024)

    def _apply_piece(self, plan, index, piece, schedule):
        ci, co, own = piece.in_channels, piece.out_channels, piece.groups
        if self.u >= co or self.u >= ci:
            raise GeneError(f"{self.label()}: u={self.u} must be below piece {index}'s "
                            f"{ci} input and {co} output channels")
        if self.u % own:
            raise GeneError(f"{self.label()}: u={self.u} is not divisible by piece {index}'s "
                            f"{own} groups")
        tail_groups = own * self.groups
        if (ci - self.u) % tail_groups or (co - self.u) % tail_groups:
            raise GeneError(f"{self.label()}: piece {index}'s remaining {ci - self.u} input and "
                            f"{co - self.u} output channels are not divisible by {tail_groups}")
        head = replace(piece, out_stop=piece.out_start + self.u, groups=own)
        tail = replace(piece, out_start=piece.out_start + self.u, in_start=piece.in_start + self.u,
                       groups=tail_groups)
        return [(head, schedule), (tail, schedule)]


@dataclass(frozen=True)
class SplitRows(NeuralGene):
    """Seq3: split a piece's input rows into `parts` strips, each its own conv with its
    own weights and zero padding at the strip borders; outputs stack along rows."""

    name: ClassVar[str] = "split_rows"
    parts: int = 2

    def _check(self) -> None:
        _require_int(self, "parts", 2, MAX_SPLIT_PARTS)

    def _apply_piece(self, plan, index, piece, schedule):
        spec = plan.spec
        if piece.rows % self.parts:
            raise GeneError(f"{self.label()}: piece {index} has {piece.rows} rows, not "
                            f"divisible into {self.parts} strips")
        strip = piece.rows // self.parts
        each = conv_out_size(strip, spec.kernel, spec.stride, spec.padding)
        if each < 1 or each * self.parts != piece.out_rows(spec):
            raise GeneError(f"{self.label()}: strips of {strip} rows at stride {spec.stride} "
                            f"do not tile piece {index}'s {piece.out_rows(spec)} output rows")
        return [
            (replace(piece, row_start=piece.row_start + i * strip,
                     row_stop=piece.row_start + (i + 1) * strip,
                     out_row_start=piece.out_row_start + i * each), schedule)
            for i in range(self.parts)
        ]


# --------------------------------------------------------------- program genes


@dataclass(frozen=True)
class ProgramGene(Gene):
    kind: ClassVar[str] = "program"
    # Where the gene acts, for listings, when not on every conv (`acts_on` or its
    # precondition says which).
    acts_where: ClassVar[str] = ""

    def _apply_piece(self, plan, index, piece, schedule):
        return [(piece, self.configure(schedule))]

    def configure(self, schedule: ScheduleConfig) -> ScheduleConfig:
        raise NotImplementedError

    def acts_on(self, spec: LayerSpec) -> bool:
        """Whether this gene can change the program of a conv shaped `spec` (all program
        genes can, but the two about padding on an unpadded conv)."""
        return True


@dataclass(frozen=True)
class Tile(ProgramGene):
    """Split a loop (co, oh, ow or the reduction ci) with an inner tile of `factor`."""

    name: ClassVar[str] = "tile"
    axis: str = "co"
    factor: int = 4

    def _check(self) -> None:
        _require_choice(self, "axis", TILE_AXES)
        _require_int(self, "factor", 1, MAX_TILE)

    def configure(self, schedule):
        return replace(schedule, **{f"tile_{self.axis}": self.factor})


@dataclass(frozen=True)
class Reorder(ProgramGene):
    """Interchange the outer (tile-level) spatial loops."""

    name: ClassVar[str] = "reorder"
    order: tuple[str, ...] = OUTER_AXES

    def _check(self) -> None:
        _require_permutation(self, "order", OUTER_AXES)

    def configure(self, schedule):
        return replace(schedule, outer_order=self.order)


@dataclass(frozen=True)
class ReorderReduction(ProgramGene):
    """Interchange the reduction loops (ci outer tile, kh, kw)."""

    name: ClassVar[str] = "reorder_reduction"
    order: tuple[str, ...] = REDUCTION_AXES

    def _check(self) -> None:
        _require_permutation(self, "order", REDUCTION_AXES)

    def configure(self, schedule):
        return replace(schedule, reduction_order=self.order)


@dataclass(frozen=True)
class Vectorize(ProgramGene):
    """Make the inner tile of `axis` (co or ow) the innermost loop and vectorize it."""

    name: ClassVar[str] = "vectorize"
    axis: str = "ow"

    def _check(self) -> None:
        _require_choice(self, "axis", ("co", "ow"))

    def configure(self, schedule):
        return replace(schedule, vectorize=self.axis)


@dataclass(frozen=True)
class Fuse(ProgramGene):
    """Fuse the `depth` outermost loops (batch, then the outer spatial tiles) into one."""

    name: ClassVar[str] = "fuse"
    depth: int = 2

    def _check(self) -> None:
        _require_int(self, "depth", 1, 4)

    def configure(self, schedule):
        return replace(schedule, fuse=self.depth)


@dataclass(frozen=True)
class Parallel(ProgramGene):
    """Run the outermost (possibly fused) loop on all runtime threads."""

    name: ClassVar[str] = "parallel"

    def configure(self, schedule):
        return replace(schedule, parallel=True)


@dataclass(frozen=True)
class Unroll(ProgramGene):
    """Unroll inner loops up to `max_step` iterations (TVM auto-unroll pragma)."""

    name: ClassVar[str] = "unroll"
    max_step: int = 16

    def _check(self) -> None:
        _require_choice(self, "max_step", UNROLL_STEPS)

    def configure(self, schedule):
        return replace(schedule, unroll=self.max_step)


@dataclass(frozen=True)
class CacheWrite(ProgramGene):
    """Accumulate each output tile in a local buffer computed at the innermost outer
    loop (cache_write + compute_at), then write it back."""

    name: ClassVar[str] = "cache_write"

    def configure(self, schedule):
        return replace(schedule, cache_write=True)


@dataclass(frozen=True)
class Pack(ProgramGene):
    """Pack the weights as [CO/x, CI, K, K, x] (OIHW[x]o) so x output channels are contiguous."""

    name: ClassVar[str] = "pack"
    factor: int = 8

    def _check(self) -> None:
        _require_choice(self, "factor", PACK_FACTORS)

    def configure(self, schedule):
        return replace(schedule, pack=self.factor)


@dataclass(frozen=True)
class InlinePad(ProgramGene):
    """Read the input through bounds checks instead of materialising a padded copy
    (undoes `tile_pad`)."""

    name: ClassVar[str] = "inline_pad"
    acts_where: ClassVar[str] = "padded convs"

    def configure(self, schedule):
        return replace(schedule, inline_pad=True, tile_pad=False)

    def acts_on(self, spec):
        return spec.padding > 0


@dataclass(frozen=True)
class TilePad(ProgramGene):
    """Materialise the padded copy of the input inside the conv's outermost (fused,
    parallel) loop: each iteration pads just the rows it reads, right before reading
    them, instead of a separate pass over the whole input before the conv (a second
    parallel region, whose copy has left the cache when the conv reads it). With
    `reorder(oh, co, ow)` and `fuse(2)` an iteration is a band of rows for every output
    channel, so each row is padded once. Undoes `inline_pad`; does nothing on an
    unpadded conv or under `winograd`."""

    name: ClassVar[str] = "tile_pad"
    acts_where: ClassVar[str] = "padded convs"

    def configure(self, schedule):
        return replace(schedule, tile_pad=True, inline_pad=False)

    def acts_on(self, spec):
        return spec.padding > 0


@dataclass(frozen=True)
class InnerKh(ProgramGene):
    """Run the kernel-row loop (kh) inside the register tile, just outside its row loop,
    instead of among the reduction loops around the tile: with `tile(oh, r)` the tile's
    r + kernel - 1 input rows are read once for all kernel rows rather than r rows once
    per kernel row (MetaSchedule's winning resnet20 kernels nest the reduction this way).
    Does nothing on a 1x1 conv or under `winograd`."""

    name: ClassVar[str] = "inner_kh"
    acts_where: ClassVar[str] = "kernels larger than 1x1"

    def configure(self, schedule):
        return replace(schedule, inner_kh=True)

    def acts_on(self, spec):
        return spec.kernel > 1


@dataclass(frozen=True)
class Winograd(ProgramGene):
    """Compute the piece with Winograd's minimal filtering F(m x m, 3 x 3), `tile` = m
    outputs a side per tile: input tiles and weights are transformed (the weights once,
    when they are laid out), multiplied channel by channel as a batched matrix product
    (alpha^2 = (m + 2)^2 products per tile instead of 9 m^2), and transformed back.
    Only for 3x3 convs at stride 1; the result equals the direct conv's up to float
    rounding. Under it `tile(co)`, `tile(ow)` and `tile(ci)` tile the product's output
    channels, tiles and reduction, `vectorize` picks co or the tiles, `pack` lays out the
    transformed weights; the other program genes keep their meaning or do nothing."""

    name: ClassVar[str] = "winograd"
    acts_where: ClassVar[str] = "3x3 convs at stride 1"
    tile: int = 2

    def _check(self) -> None:
        _require_choice(self, "tile", WINOGRAD_TILES)

    def _apply_piece(self, plan, index, piece, schedule):
        if not winograd_fits(plan.spec):
            raise GeneError(f"{self.label()}: needs a 3x3 conv at stride 1, this one is "
                            f"{plan.spec.kernel}x{plan.spec.kernel} at stride {plan.spec.stride}")
        return [(piece, self.configure(schedule))]

    def configure(self, schedule):
        return replace(schedule, winograd=self.tile)


NEURAL_GENES: tuple[type[Gene], ...] = (Bottleneck, Group, Depthwise, SplitChannels,
                                        UnrollChannels, SplitRows)
PROGRAM_GENES: tuple[type[Gene], ...] = (Tile, Reorder, ReorderReduction, Vectorize, Fuse,
                                         Parallel, Unroll, CacheWrite, Pack, InlinePad,
                                         TilePad, InnerKh, Winograd)
GENES: dict[str, type[Gene]] = {g.name: g for g in NEURAL_GENES + PROGRAM_GENES}


def gene_from_json(data: Any, where: str = "gene") -> Gene:
    """Parse one gene object; errors name the field, e.g. `layers.conv1[2].factor`."""
    if not isinstance(data, dict):
        raise GenomeFormatError(f"{where}: expected an object, got {type(data).__name__}")
    name = data.get("gene")
    if name not in GENES:
        raise GenomeFormatError(f"{where}.gene: unknown gene {name!r} "
                                f"(known: {', '.join(sorted(GENES))})")
    cls = GENES[name]
    allowed = {f.name for f in fields(cls)}
    unknown = set(data) - allowed - {"gene"}
    if unknown:
        raise GenomeFormatError(
            f"{where}: unknown field(s) for {name}: {', '.join(sorted(unknown))}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "gene"}
    try:
        return cls(**kwargs)
    except GenomeFormatError as exc:
        raise GenomeFormatError(f"{where}.{exc}") from None


def gene_fields(cls: type[Gene]) -> list[dataclasses.Field]:
    """The parameter fields of a gene class (without `piece`)."""
    return [f for f in fields(cls) if f.name != "piece"]


# ----------------------------------------------------------------- validators


def _require_int(gene: Gene, name: str, low: int, high: int) -> None:
    value = getattr(gene, name)
    if not _is_int(value) or not low <= value <= high:
        raise GenomeFormatError(f"{gene.name}.{name} must be an integer in [{low}, {high}], "
                                f"got {value!r}")


def _require_choice(gene: Gene, name: str, choices: tuple) -> None:
    value = getattr(gene, name)
    if value not in choices or isinstance(value, bool):
        raise GenomeFormatError(f"{gene.name}.{name} must be one of "
                                f"{', '.join(map(str, choices))}, got {value!r}")


def _require_permutation(gene: Gene, name: str, axes: tuple[str, ...]) -> None:
    value = getattr(gene, name)
    if not isinstance(value, tuple) or sorted(value) != sorted(axes):
        raise GenomeFormatError(f"{gene.name}.{name} must be a permutation of "
                                f"{', '.join(axes)}, got {value!r}")


def _require_int_tuple(gene: Gene, name: str, min_len: int, max_len: int, low: int,
                       high: int) -> None:
    value = getattr(gene, name)
    if (not isinstance(value, tuple) or not min_len <= len(value) <= max_len
            or not all(_is_int(v) and low <= v <= high for v in value)):
        raise GenomeFormatError(f"{gene.name}.{name} must be a list of {min_len} to {max_len} "
                                f"integers in [{low}, {high}], got {value!r}")


def admitted(gene: Gene, allowed: Collection[str], spec: LayerSpec) -> bool:
    """Whether a layer genome may carry `gene` on a conv shaped `spec` whose allowed gene
    kinds are `allowed`: a gene of an allowed kind, or a program gene that does nothing
    on this shape (so genomes written when such genes were listed as allowed, and seeds
    shared by every slot, still decode)."""
    return gene.name in allowed or (isinstance(gene, ProgramGene) and not gene.acts_on(spec))
