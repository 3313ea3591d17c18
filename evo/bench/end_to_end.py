"""One benchmark row: a whole network compiled by TVM (or run eagerly, or by a peer of
`evo.bench.peers`), checked, timed.

Failures come back as values (`EndToEnd.error`), never as exceptions, except bad
input (an untraceable model, a plan for an unknown conv), which raises UsageError.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import tvm
from torch import nn

from evo.bench.compile import Agreement, check_against_torch, compile_network
from evo.bench.op_profile import Breakdown, profile_executable
from evo.bench.relax_import import ConvProgramError, to_relax
from evo.bench.timing import Latency, time_across_processes, time_torch
from evo.networks import Network, transform_network
from genomes.genome import LayerGenome, NetworkGenome
from genomes.plan import LayerPlan


@dataclass(frozen=True)
class EndToEnd:
    """A row's result: latency, agreement with PyTorch, or the error that stopped it.

    `convs` counts the convs compiled with our programs, `fused` those of them that
    compute their BatchNorm (and residual add and ReLU) in the same kernel,
    `fallback` names those compiled by TVM's own conv2d; `compile_seconds` is import
    plus compile time (for a peer: export, conversion and compilation). `peer` is a
    peer row's runtime, its version and the settings used (`evo.bench.peers`), None
    for TVM and eager rows. `artifact` is the file the row's network was kept in, for
    `evo.bench.head_to_head` to run it again: a TVM row's .so, an ONNX-based peer's
    model; None when it was not kept.
    """

    latency: Latency | None
    agreement: Agreement | None = None
    error: str | None = None
    compile_seconds: float = 0.0
    convs: int = 0
    fallback: tuple[str, ...] = field(default_factory=tuple)
    breakdown: Breakdown | None = None
    peer: dict | None = None
    fused: int = 0
    artifact: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.latency is not None

    def to_json(self) -> dict:
        return {
            "ms": None if self.latency is None else self.latency.median_ms,
            "latency": None if self.latency is None else self.latency.to_json(),
            "agreement": None if self.agreement is None else self.agreement.__dict__,
            "error": self.error, "compile_seconds": round(self.compile_seconds, 2),
            "convs": self.convs, "fused": self.fused, "fallback": list(self.fallback),
            "breakdown": None if self.breakdown is None else self.breakdown.to_json(),
            "peer": self.peer, "artifact": self.artifact,
        }


def tvm_end_to_end(module: nn.Module, input_shape: tuple[int, ...], target: tvm.target.Target,
                   plans: dict[str, LayerPlan] | None = None,
                   schedule: LayerGenome | None = None, threads: int = 2,
                   check: bool = True, export_to: Path | None = None) -> EndToEnd:
    """Compile `module` as one Relax module with our conv programs (see `to_relax`),
    check it against PyTorch on one random input, and time it. A mismatch is an error
    (the latency is still reported). `export_to`: keep the compiled network there (a
    .so, the row's `artifact`)."""
    start = time.perf_counter()
    try:
        network = to_relax(module, input_shape, plans=plans, schedule=schedule)
        executable = compile_network(network, target)
        if export_to is not None:
            export_to.parent.mkdir(parents=True, exist_ok=True)
            executable.export_library(str(export_to))
    except ConvProgramError as exc:
        return EndToEnd(None, error=str(exc), compile_seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - TVM raises many types; the row gets a value
        return EndToEnd(None, error=f"TVM compile: {_last_line(exc)}",
                        compile_seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    return replace(measured(module, executable, input_shape, threads, check, seconds,
                            len(network.plans), network.fallback, library=export_to),
                   fused=len(network.fused))


def measured(module: nn.Module, executable: tvm.runtime.Executable,
             input_shape: tuple[int, ...], threads: int, check: bool, compile_seconds: float,
             convs: int = 0, fallback: tuple[str, ...] = (),
             library: Path | None = None) -> EndToEnd:
    """Check (optionally), time (in fresh processes: `time_across_processes`) and
    profile (`evo.bench.op_profile`) a compiled network; a mismatch becomes the error.
    `library`: the .so `executable` was loaded from or exported to, if any (the row's
    `artifact`)."""
    agreement = check_against_torch(module, executable, input_shape) if check else None
    latency = time_across_processes(executable, input_shape, threads=threads, library=library)
    breakdown = profile_executable(executable, input_shape, threads=threads)
    return EndToEnd(latency, agreement, mismatch("TVM", agreement), compile_seconds, convs,
                    tuple(fallback), breakdown,
                    artifact=None if library is None else str(library))


def genome_end_to_end(network: Network, genome: NetworkGenome, target: tvm.target.Target,
                      threads: int = 2, seed: int = 0, check: bool = True,
                      export_to: Path | None = None) -> EndToEnd:
    """`network` transformed by `genome` (weights initialised from `seed`), compiled with
    the genome's conv programs, checked and timed; an inapplicable genome is the error.
    `export_to`: as in `tvm_end_to_end`."""
    transform = transform_network(network, genome, seed=seed)
    if not transform.ok:
        return EndToEnd(None, error=f"genome: {transform.error}")
    return tvm_end_to_end(transform.module, network.input_shape, target, plans=transform.plans,
                          threads=threads, check=check, export_to=export_to)


def torch_end_to_end(module: nn.Module, input_shape: tuple[int, ...],
                     threads: int = 2) -> EndToEnd:
    """PyTorch eager latency of `module` with `threads` intra-op threads."""
    return EndToEnd(time_torch(module, input_shape, threads=threads))


def mismatch(label: str, agreement: Agreement | None) -> str | None:
    """The row's error when `label`'s output disagrees with PyTorch, else None."""
    if agreement is None or agreement.matches:
        return None
    return (f"{label} output differs from PyTorch (max abs diff {agreement.max_abs_diff:.3g}, "
            f"max rel diff {agreement.max_rel_diff:.3g})")


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]
