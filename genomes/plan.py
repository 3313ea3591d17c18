"""What a layer genome decodes to, before either backend sees it.

A `LayerPlan` is the layer after its genes were applied: a tuple of `Piece`s, each
an ordinary (possibly grouped) convolution over a range of the layer's input
channels and input rows, writing a block of the layer's output, plus one
`ScheduleConfig` per piece saying how that piece's loop nest runs. The torch and
TVM decoders both read a plan, so they cannot disagree about what is computed.
"""

from __future__ import annotations

from dataclasses import dataclass

from genomes.spec import LayerSpec, conv_out_size

OUTER_AXES = ("co", "oh", "ow")
REDUCTION_AXES = ("ci", "kh", "kw")
TILE_AXES = ("co", "oh", "ow", "ci")


@dataclass(frozen=True)
class Piece:
    """One convolution of a transformed layer.

    It reads input channels `[in_start, in_stop)` and input rows
    `[row_start, row_stop)` (zero-padded by the layer's padding on every border of
    that strip), and writes output channels `[out_start, out_stop)` and output rows
    `[out_row_start, out_row_start + out_rows)` of the layer's output.
    """

    out_start: int
    out_stop: int
    in_start: int
    in_stop: int
    groups: int
    row_start: int
    row_stop: int
    out_row_start: int

    @property
    def out_channels(self) -> int:
        return self.out_stop - self.out_start

    @property
    def in_channels(self) -> int:
        return self.in_stop - self.in_start

    @property
    def rows(self) -> int:
        return self.row_stop - self.row_start

    def out_rows(self, spec: LayerSpec) -> int:
        return conv_out_size(self.rows, spec.kernel, spec.stride, spec.padding)

    def weight_shape(self, spec: LayerSpec) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels // self.groups, spec.kernel, spec.kernel)

    def flops(self, spec: LayerSpec) -> int:
        return (2 * spec.batch * self.out_channels * self.out_rows(spec) * spec.out_width
                * (self.in_channels // self.groups) * spec.kernel ** 2)

    def params(self, spec: LayerSpec) -> int:
        co, cig, k, _ = self.weight_shape(spec)
        return co * cig * k * k

    def describe(self, spec: LayerSpec) -> str:
        rows = "" if self.rows == spec.height else f" rows {self.row_start}:{self.row_stop}"
        return (f"out {self.out_start}:{self.out_stop} <- in {self.in_start}:{self.in_stop}"
                f" groups {self.groups}{rows}")


@dataclass(frozen=True)
class ScheduleConfig:
    """How one piece's loop nest runs. Changes latency, never the result.

    Tile factors are requests: the decoder uses the largest divisor of the loop's
    extent that does not exceed the request, so every config applies to every piece.
    """

    tile_co: int = 1
    tile_oh: int = 1
    tile_ow: int = 1
    tile_ci: int = 1
    outer_order: tuple[str, ...] = OUTER_AXES
    reduction_order: tuple[str, ...] = REDUCTION_AXES
    vectorize: str | None = None
    fuse: int = 1
    parallel: bool = False
    unroll: int = 0
    cache_write: bool = False
    pack: int = 1
    inline_pad: bool = False
    tile_pad: bool = False  # pad inside each outer tile (ignored when inline_pad)
    inner_kh: bool = False  # the kh loop inside the register tile, outside its oh loop
    winograd: int = 0  # 0: the direct conv; m: Winograd F(m x m, 3 x 3)

    def tile(self, axis: str) -> int:
        return getattr(self, f"tile_{axis}")


@dataclass(frozen=True)
class LayerPlan:
    spec: LayerSpec
    pieces: tuple[Piece, ...]
    schedules: tuple[ScheduleConfig, ...]

    @property
    def out_channels(self) -> int:
        return max(p.out_stop for p in self.pieces)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (self.spec.batch, self.out_channels, self.spec.out_height, self.spec.out_width)

    @property
    def flops(self) -> int:
        return sum(p.flops(self.spec) for p in self.pieces)

    @property
    def params(self) -> int:
        return sum(p.params(self.spec) for p in self.pieces)

    def is_single_full_piece(self) -> bool:
        (piece,) = self.pieces if len(self.pieces) == 1 else (None,)
        return (piece is not None and piece.in_start == 0
                and piece.in_stop == self.spec.in_channels and piece.rows == self.spec.height)


def initial_plan(spec: LayerSpec) -> LayerPlan:
    """The untransformed layer: one piece, the default (naive) schedule."""
    piece = Piece(0, spec.out_channels, 0, spec.in_channels, spec.groups, 0, spec.height, 0)
    return LayerPlan(spec, (piece,), (ScheduleConfig(),))


def winograd_fits(spec: LayerSpec) -> bool:
    """Whether Winograd's F(m x m, 3 x 3) computes this layer: a 3x3 conv at stride 1."""
    return spec.kernel == 3 and spec.stride == 1


def winograd_tiles(spec: LayerSpec, piece: Piece, m: int) -> tuple[int, int]:
    """The m x m output tiles of one image of a piece: (tile rows, tile columns), the last
    of each partly outside the output when m does not divide it."""
    return -(-piece.out_rows(spec) // m), -(-spec.out_width // m)


def largest_divisor_at_most(extent: int, request: int) -> int:
    """The largest divisor of `extent` that is <= `request` (at least 1)."""
    for factor in range(min(extent, max(request, 1)), 0, -1):
        if extent % factor == 0:
            return factor
    return 1
