"""Where ONNX Runtime spends a network's inference, conv by conv.

`ort_conv_times` runs the network as the `onnxruntime` peer does (`evo.bench.peers`:
the same export and session settings) with ONNX Runtime's profiler on, and reads its
per-node kernel times. ORT folds BatchNorm into the conv and fuses ReLU (and often
the residual add) into it, and runs most convs in its blocked NCHWc layout, adding
reorder nodes between layouts; a conv node's time therefore covers what our network
spends in a conv program plus its batch norm and ReLU kernels.

Conv nodes are returned in the order they ran, with their output channels and spatial
size, so a caller can match them to a network's slots (`match_slots`).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from evo.networks import Network


@dataclass(frozen=True)
class OrtConv:
    """One conv node of ORT's optimised graph: output (channels, height, width), its
    median milliseconds per inference, and whether it runs in the blocked NCHWc layout
    (whose channels are padded up to a whole block: 8 with AVX2, 16 with AVX-512)."""

    node: str
    out: tuple[int, int, int]
    ms: float
    blocked: bool = False

    def computes(self, channels: int, height: int, width: int) -> bool:
        """Whether this node's output is `channels` x `height` x `width` (channels
        padded to a whole block in NCHWc)."""
        if self.out[1:] != (height, width):
            return False
        if not self.blocked:
            return self.out[0] == channels
        return self.out[0] in {-(-channels // block) * block for block in (8, 16)}


@dataclass(frozen=True)
class OrtProfile:
    """ORT's conv nodes in execution order, and the other nodes' total."""

    convs: tuple[OrtConv, ...]
    other_ms: float
    version: str


def ort_conv_times(module: nn.Module, input_shape: tuple[int, ...], threads: int = 2,
                   runs: int = 20) -> OrtProfile:
    """Profile `runs` inferences (after one warm-up) with ORT_ENABLE_ALL on `threads`
    threads; raises ImportError when onnxruntime is missing."""
    import onnxruntime as ort

    from evo.bench.peers import _example, onnx_export

    example = _example(input_shape)
    model = onnx_export(module.eval(), example)
    with tempfile.TemporaryDirectory(prefix="evo-ort-") as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "ort")
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        session.run(None, {name: example})
        for _ in range(runs):
            session.run(None, {name: example})
        events = json.loads(Path(session.end_profiling()).read_text())
    return _parse(events, runs + 1, ort.__version__)


def _parse(events: list[dict], calls: int, version: str) -> OrtProfile:
    durations: dict[str, list[float]] = defaultdict(list)
    first: dict[str, tuple[int, str, list]] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        durations[node].append(event["dur"] / 1000.0)
        args = event.get("args", {})
        first.setdefault(node, (len(first), args.get("op_name", ""),
                                args.get("output_type_shape", [])))
    convs, other = [], 0.0
    for node, (_, op, outputs) in sorted(first.items(), key=lambda item: item[1][0]):
        per_call = durations[node][1:] or durations[node]  # the warm-up run left out
        ms = statistics.median(per_call) * len(durations[node]) / calls
        if op in ("Conv", "FusedConv", "NchwcConv") and outputs:
            convs.append(OrtConv(node, _channels_and_size(outputs[0]), ms,
                                 blocked="nchwc" in node.lower()))
        else:
            other += ms
    return OrtProfile(tuple(convs), other, version)


def _channels_and_size(output: dict) -> tuple[int, int, int]:
    """(channels, height, width) of an output shape as the profiler reports it: NCHW,
    or [N, C/b, H, W, b]."""
    shape = next(iter(output.values()))
    if len(shape) == 5:
        return shape[1] * shape[4], shape[2], shape[3]
    return shape[1], shape[2], shape[3]


def match_slots(network: Network, profile: OrtProfile) -> dict[str, float] | None:
    """Each slot's ORT conv time, pairing slots and conv nodes in order; None when the
    counts or any output shape differ (ORT merged or split convs)."""
    slots = list(network.slots)
    if len(slots) != len(profile.convs):
        return None
    out = {}
    for slot, conv in zip(slots, profile.convs, strict=True):
        spec = slot.spec
        height = (spec.height + 2 * spec.padding - spec.kernel) // spec.stride + 1
        width = (spec.width + 2 * spec.padding - spec.kernel) // spec.stride + 1
        if not conv.computes(spec.out_channels, height, width):
            return None
        out[slot.id] = conv.ms
    return out
