"""The `analytic` evaluator: a deterministic roofline-style latency estimate.

For dry runs and for tests that need exact reproducibility; no TVM build, no
timing. Each piece of the decoded plan costs
`max(flops / compute rate, bytes / bandwidth) + overhead`, plus the padded-input
copy and, for several pieces, the assembly of the output. The compute rate starts
from a naive scalar loop nest (1.7 GFLOP/s a core, measured on this project's
AVX2-class machine) and is multiplied by what the program genes buy there:

- vectorize: the lanes of the inner tile of the vectorized axis (up to two
  8-lane vectors); `co` vectors need weights packed at least that wide to be
  efficient; `ow` vectors of a strided conv read strided input columns, which costs
  them half their gain at stride 2 (measured: the template, vectorized along `ow`,
  runs resnet18's stride-2 convs 1.6-2.7x slower than packed `co` vectors);
  reading the input through bounds checks (`inline_pad`) mostly defeats
  vectorization; the padded copy made tile by tile (`tile_pad`) costs a quarter of
  the separate pass;
- register blocking: with `cache_write`, the accumulator tile
  (co x oh x ow inner tiles) held in vector registers, best at about 8 of the
  16 registers, slower again when it spills;
- parallel: the outermost (fused) loop's extent shared among the threads;
- unroll: a small gain up to 64, a small loss for 512 (code bloat);
- winograd: the products' fewer multiply-adds at the same rate, plus the tile
  transforms at four times the scalar rate (unrolled straight-line code).

The rate is capped at a per-core peak. Reorders and the `ci` tile barely matter
here and are priced accordingly. The figures are plausible, not predictions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from evo.errors import UsageError
from evo.measure.cache import CacheContext
from evo.measure.evaluator import CachingEvaluator, available_cores
from evo.measure.types import LayerJob, LayerMeasurement
from genomes.genome import decode_layer
from genomes.plan import (
    LayerPlan,
    Piece,
    ScheduleConfig,
    largest_divisor_at_most,
    winograd_fits,
    winograd_tiles,
)

MODEL_VERSION = "analytic-1"
SCALAR_GFLOPS = 1.7
PEAK_GFLOPS = 100.0
BANDWIDTH_GBS = 12.0
VECTOR_LANES = 8
VECTOR_REGISTERS = 16
PIECE_OVERHEAD_MS = 0.002
PARALLEL_OVERHEAD_MS = 0.005
UNROLL_GAIN = {0: 1.0, 4: 1.03, 16: 1.05, 64: 1.05, 512: 0.92}
TILE_PAD_SHARE = 0.25


def estimate_plan_ms(plan: LayerPlan, threads: int) -> float:
    """Estimated latency of the whole plan in milliseconds (deterministic)."""
    total = sum(piece_ms(plan, index, threads) for index in range(len(plan.pieces)))
    if not plan.is_single_full_piece():
        out_bytes = 4 * math.prod(plan.out_shape)
        total += 2 * out_bytes / (BANDWIDTH_GBS * 1e6)
    return total


def _winograd_ms(plan: LayerPlan, index: int, direct_ms: float, cores: float) -> float:
    """A Winograd piece: the products' share of the direct conv's multiply-adds,
    alpha^2 / (9 m^2), at the direct conv's rate, plus both transforms at the
    rate of unrolled straight-line code, four times the naive loops' (about alpha^3
    operations per tile and channel, either way)."""
    spec, piece, m = plan.spec, plan.pieces[index], plan.schedules[index].winograd
    alpha = m + 2
    tiles = spec.batch * math.prod(winograd_tiles(spec, piece, m))
    transforms = alpha ** 3 * tiles * (piece.in_channels + piece.out_channels)
    return (direct_ms * alpha ** 2 / (9 * m * m)
            + transforms / (4 * SCALAR_GFLOPS * cores * 1e6))


def piece_ms(plan: LayerPlan, index: int, threads: int) -> float:
    spec, piece, config = plan.spec, plan.pieces[index], plan.schedules[index]
    inner = _inner_tiles(plan, piece, config)
    gflops = min(SCALAR_GFLOPS * _vector_gain(plan, index, inner) * _blocking_gain(inner, config)
                 * UNROLL_GAIN.get(config.unroll, 1.0) * _reduction_order_gain(config),
                 PEAK_GFLOPS)
    cores = _parallel_cores(plan, piece, config, inner, threads)
    compute_ms = piece.flops(spec) / (gflops * cores * 1e6)
    if config.winograd and winograd_fits(spec):
        compute_ms = _winograd_ms(plan, index, compute_ms, cores)
    in_bytes = 4 * spec.batch * piece.in_channels * piece.rows * spec.width
    out_bytes = 4 * spec.batch * piece.out_channels * piece.out_rows(spec) * spec.out_width
    memory_ms = (in_bytes + 4 * piece.params(spec) + 2 * out_bytes) / (BANDWIDTH_GBS * 1e6)
    overhead = PIECE_OVERHEAD_MS + (PARALLEL_OVERHEAD_MS if config.parallel else 0.0)
    pad_ms = 0.0
    if spec.padding > 0 and not config.inline_pad:
        padded = in_bytes * (piece.rows + 2 * spec.padding) * (spec.width + 2 * spec.padding)
        padded /= piece.rows * spec.width
        pad_ms = (in_bytes + padded) / (BANDWIDTH_GBS * 1e6 * (2 if config.vectorize else 1))
        pad_ms /= min(threads, 2) if config.parallel else 1
        if config.tile_pad:  # copied tile by tile, in cache, in the conv's parallel region
            pad_ms *= TILE_PAD_SHARE
    return max(compute_ms, memory_ms) + pad_ms + overhead


def _inner_tiles(plan: LayerPlan, piece: Piece, config: ScheduleConfig) -> dict[str, int]:
    extents = {"co": piece.out_channels, "oh": piece.out_rows(plan.spec),
               "ow": plan.spec.out_width, "ci": piece.in_channels // piece.groups}
    return {axis: largest_divisor_at_most(extent, config.tile(axis))
            for axis, extent in extents.items()}


def _vector_gain(plan: LayerPlan, index: int, inner: dict[str, int]) -> float:
    config = plan.schedules[index]
    if config.vectorize is None or inner[config.vectorize] < 2:
        return 0.9 if config.inline_pad and plan.spec.padding else 1.0
    lanes = min(inner[config.vectorize], 2 * VECTOR_LANES)
    efficiency = 0.9
    if config.vectorize == "co":
        packed = largest_divisor_at_most(plan.pieces[index].out_channels, config.pack)
        efficiency = 0.9 if packed >= lanes else 0.55
    elif config.vectorize == "ow" and plan.spec.stride > 1:
        efficiency = 0.9 / plan.spec.stride
    gain = max(lanes * efficiency, 1.0)
    if config.inline_pad and plan.spec.padding:
        gain = 0.9 * (1 + 0.15 * (gain - 1))
    return gain


def _blocking_gain(inner: dict[str, int], config: ScheduleConfig) -> float:
    lanes = min(inner[config.vectorize], VECTOR_LANES) if config.vectorize else 1
    accumulators = math.ceil(inner["co"] * inner["oh"] * inner["ow"] / max(lanes, 1))
    if not config.cache_write:
        return min(accumulators, 4) ** 0.25
    gain = min(accumulators, 8) ** 0.6
    if accumulators > 12:  # the tile no longer fits the registers: spills
        gain *= 12 / accumulators
    return max(gain, 0.5)


def _reduction_order_gain(config: ScheduleConfig) -> float:
    return 1.0 if config.reduction_order[0] == "ci" else 0.97


def _parallel_cores(plan: LayerPlan, piece: Piece, config: ScheduleConfig,
                    inner: dict[str, int], threads: int) -> float:
    """How many cores the piece effectively uses: the parallel loop's extent split
    into equal shares (imbalance counted), 90 % efficient."""
    if not config.parallel or threads < 2:
        return 1.0
    extents = {"co": piece.out_channels, "oh": piece.out_rows(plan.spec),
               "ow": plan.spec.out_width}
    depth = min(config.fuse, 1 + len(config.outer_order))
    extent = plan.spec.batch
    for axis in config.outer_order[:depth - 1]:
        extent *= extents[axis] // inner[axis]
    if extent < 2:
        return 1.0
    used = extent / math.ceil(extent / threads)
    return max(1.0, 0.9 * used)


class AnalyticEvaluator(CachingEvaluator):
    """Estimates instead of measurements, with the same result shape (spread 0)."""

    name = "analytic"

    def __init__(self, cache_path: str | Path | None = None, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise UsageError(f"--threads {threads}: must be >= 1")
        self.threads = threads or available_cores()
        super().__init__(cache_path)

    def context(self) -> CacheContext:
        return CacheContext("analytic", MODEL_VERSION, self.threads, self.name, "model")

    def _measure_new(self, jobs: list[LayerJob]) -> Iterator[tuple[LayerJob, LayerMeasurement]]:
        for job in jobs:
            yield job, self.estimate(job)

    def estimate(self, job: LayerJob) -> LayerMeasurement:
        decoded = decode_layer(job.spec, job.genome)
        if not decoded.ok:
            return LayerMeasurement.failed(f"decode: {decoded.error}", self.threads)
        return LayerMeasurement(round(estimate_plan_ms(decoded.plan, self.threads), 9), 0.0, 1,
                                self.threads)
