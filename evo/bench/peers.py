"""Peers: what a user would deploy instead of this project, each one benchmark row.

    row = peer_end_to_end("onnxruntime", module, (1, 3, 32, 32), threads=2)

- `torch_compile`: `torch.compile(module)`, inductor, default mode, with
  `torch.set_num_threads(threads)` while it compiles and runs; `torch_compile_max_autotune`
  is the same with `mode="max-autotune"` (not in `DEFAULT_PEERS`: it tunes for long).
- `onnxruntime`: the module exported by `torch.onnx.export` (opset 17, see `onnx_export`),
  run by an `InferenceSession` on the CPU execution provider with all graph optimisations
  (`ORT_ENABLE_ALL`), `threads` intra-op threads and one inter-op thread.
- `openvino`: the same ONNX model read by `openvino.Core().read_model` and compiled for
  the CPU plugin with the latency hint, `threads` inference threads and f32 inference
  precision (on a CPU with bf16 the plugin otherwise computes in bf16, which is not the
  other rows' arithmetic and misses their tolerance); imported without OpenVINO's usage
  telemetry (`import_openvino`).

Each row is checked against PyTorch on the TVM rows' input and tolerance
(`evo.bench.compile.compare`) and timed by `evo.bench.timing.time_callable`, the input
bound once. Everything runs under `torch.no_grad` with the module in eval mode (its mode
and torch's thread count are restored). A failure (package missing, export, conversion
or compile error, an exception while running) is the row's one-line error, never an
exception; a mismatch is the error too, with the latency still reported.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from evo.bench.compile import compare, torch_reference
from evo.bench.end_to_end import EndToEnd, mismatch
from evo.bench.timing import time_callable

Infer = Callable[[np.ndarray], np.ndarray]
OPSET = 17


@dataclass(frozen=True)
class Built:
    """A peer ready to run: `infer(input) -> output`, the threads it uses, its version
    and the settings it was built with (and, for an ONNX-based peer, the ONNX model)."""

    infer: Infer
    threads: int
    version: str
    settings: dict
    onnx: bytes | None = None  # the ONNX model it runs, for an ONNX-based peer


class PeerError(Exception):
    """One stage of building or running a peer failed; the message is the row's error."""


@contextlib.contextmanager
def stage(what: str) -> Iterator[None]:
    """Turn any exception in the block into a one-line PeerError naming `what`; a missing
    package says which and how to install it."""
    try:
        yield
    except PeerError:
        raise
    except ImportError as exc:
        name = getattr(exc, "name", None) or "a package it needs"
        raise PeerError(f"{name} is not installed (pip install -e '.[bench]')") from None
    except Exception as exc:  # noqa: BLE001 - exporters and runtimes raise many types
        raise PeerError(f"{what}: {last_line(exc)}") from None


def _torch_compile(mode: str) -> Callable[[nn.Module, np.ndarray, int], Built]:
    def build(module: nn.Module, example: np.ndarray, threads: int) -> Built:
        torch._dynamo.reset()  # a fresh compile: no guards or recompile limit carried over
        compiled = torch.compile(module, backend="inductor", mode=mode)

        def infer(data: np.ndarray) -> np.ndarray:
            return compiled(torch.from_numpy(data)).numpy()

        with stage("torch.compile"):
            infer(example)  # compiles
        return Built(infer, torch.get_num_threads(), torch.__version__,
                     {"backend": "inductor", "mode": mode})

    return build


def _onnxruntime(module: nn.Module, example: np.ndarray, threads: int) -> Built:
    return onnxruntime_from(onnx_export(module, example), threads)


def onnxruntime_from(model: bytes, threads: int) -> Built:
    """The `onnxruntime` peer running the ONNX model `model` (see the module doc)."""
    with stage("import"):
        import onnxruntime as ort
    options = ort_session_options(threads)
    with stage("ONNX Runtime session"):
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return Built(lambda data: session.run(None, {name: data})[0], threads, ort.__version__,
                 {"provider": "CPUExecutionProvider",
                  "graph_optimization_level": "ORT_ENABLE_ALL",
                  "intra_op_num_threads": threads, "inter_op_num_threads": 1,
                  "opset": OPSET}, model)


def ort_session_options(threads: int):
    """The `onnxruntime` peer's session options: every graph optimisation, `threads`
    intra-op threads, sequential execution, errors only in the log."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    return options


def import_openvino():
    """`import openvino` without its usage telemetry. OpenVINO's import sends a usage
    event (and writes ~/intel) unless the user opted out; with `openvino_telemetry`
    unimportable it falls back to its own no-op stub, so this blocks that import
    (`sys.modules["openvino_telemetry"] = None`) unless something already imported it."""
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)
    import openvino

    return openvino


def _openvino(module: nn.Module, example: np.ndarray, threads: int) -> Built:
    return openvino_from(onnx_export(module, example), threads)


def openvino_from(model: bytes, threads: int) -> Built:
    """The `openvino` peer running the ONNX model `model` (see the module doc)."""
    with stage("import"):
        ov = import_openvino()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
              "INFERENCE_PRECISION_HINT": "f32"}
    with stage("OpenVINO conversion"), tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "model.onnx")
        path.write_bytes(model)
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request = compiled.create_infer_request()

    def infer(data: np.ndarray) -> np.ndarray:
        return request.infer({0: data}, share_inputs=True)[0]

    used = int(compiled.get_property("INFERENCE_NUM_THREADS"))
    return Built(infer, used, ov.__version__.split("-")[0],
                 {"device": "CPU", **config, "opset": OPSET}, model)


# The peers that run an ONNX model, by name: what `evo.bench.head_to_head` can race from
# the model file a row kept.
ONNX_PEERS: dict[str, Callable[[bytes, int], Built]] = {"onnxruntime": onnxruntime_from,
                                                        "openvino": openvino_from}
PEERS: dict[str, tuple[str, str, Callable[[nn.Module, np.ndarray, int], Built]]] = {
    "torch_compile": ("torch.compile", "inductor, default mode", _torch_compile("default")),
    "torch_compile_max_autotune": ("torch.compile", "inductor, max-autotune",
                                   _torch_compile("max-autotune")),
    "onnxruntime": ("ONNX Runtime", f"CPU provider, ORT_ENABLE_ALL, opset {OPSET}",
                    _onnxruntime),
    "openvino": ("OpenVINO", f"CPU plugin, latency hint, f32, opset {OPSET}", _openvino),
}
DEFAULT_PEERS = ("torch_compile", "onnxruntime", "openvino")


def peer_end_to_end(peer: str, module: nn.Module, input_shape: tuple[int, ...],
                    threads: int = 2, check: bool = True, seed: int = 0,
                    save_onnx: Path | None = None) -> EndToEnd:
    """Build `module` with `peer` (a key of PEERS), check it against PyTorch (unless
    `check` is false) and time it; failures are the row's error (see the module doc).
    `save_onnx`: where an ONNX-based peer writes the model it ran (the row's
    `artifact`, for `evo.bench.head_to_head`)."""
    if peer not in PEERS:
        return EndToEnd(None, error=f"unknown peer {peer!r} (known: {', '.join(PEERS)})",
                        peer={"name": peer})
    label, _, build = PEERS[peer]
    info: dict = {"name": peer, "runtime": label}
    training, previous_threads = module.training, torch.get_num_threads()
    start = time.perf_counter()
    try:
        module.eval()
        torch.set_num_threads(threads)
        with torch.no_grad():
            with stage("build"):
                built = build(module, _example(input_shape), threads)
            info.update(version=built.version, settings=built.settings)
            seconds = time.perf_counter() - start
            data, expected = torch_reference(module, input_shape, seed)
            agreement = None
            if check:
                with stage("run"):
                    agreement = compare(np.array(built.infer(data)), expected)
            with stage("timing"):
                latency = time_callable(lambda: built.infer(data), built.threads)
    except PeerError as exc:
        return EndToEnd(None, error=f"{label}: {exc}", peer=info,
                        compile_seconds=time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous_threads)
        module.train(training)
    artifact = None
    if save_onnx is not None and built.onnx is not None:
        save_onnx.parent.mkdir(parents=True, exist_ok=True)
        save_onnx.write_bytes(built.onnx)
        artifact = str(save_onnx)
    return EndToEnd(latency, agreement, mismatch(label, agreement), seconds, peer=info,
                    artifact=artifact)


def describe_peer(peer: str, info: dict | None = None) -> str:
    """`runtime version (settings)` for a row's `what`, e.g. "ONNX Runtime 1.32.0 (CPU
    provider, ORT_ENABLE_ALL, opset 17)"; the version when `info` (the row's `peer`)
    has one."""
    if peer not in PEERS:
        return f"unknown peer {peer}"
    label, settings, _ = PEERS[peer]
    version = (info or {}).get("version")
    return f"{label}{f' {version}' if version else ''} ({settings})"


def onnx_export(module: nn.Module, example: np.ndarray) -> bytes:
    """`module` as an ONNX model (bytes) for a fixed input shape: `torch.onnx.export` at
    opset OPSET with the TorchScript exporter (`dynamo=False`; eval mode, constants
    folded, so BatchNorm folds into the conv before it). torch 2.13's default exporter
    (torch.export-based, needs onnxscript) implements opset 18 and up only: asked for
    17 it keeps 18 after a failed down-conversion, and takes ten times longer."""
    buffer = io.BytesIO()
    with stage("ONNX export"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module, (torch.from_numpy(example),), buffer, opset_version=OPSET,
                          dynamo=False, input_names=["input"], output_names=["output"])
    return buffer.getvalue()


def _example(input_shape: tuple[int, ...]) -> np.ndarray:
    return torch.randn(input_shape, generator=torch.Generator().manual_seed(1)).numpy()


def last_line(exc: BaseException) -> str:
    """`Type: last non-empty line of the message`, at most 300 characters."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return (f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__)[:300]
