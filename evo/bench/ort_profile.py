"""Where ONNX Runtime spends a network's inference, conv by conv.

`ort_conv_times` runs the network as the `onnxruntime` peer does (`evo.bench.peers`:
the same export and session settings) with ONNX Runtime's profiler on, and reads its
per-node kernel times. ORT folds BatchNorm into the conv and fuses ReLU (and often
the residual add) into it, and runs most convs in its blocked NCHWc layout, adding
reorder nodes between layouts; a conv node's time therefore covers what our network
spends in a conv program plus its batch norm and ReLU kernels.

Conv nodes are returned in the order they ran, with the conv workload their input,
weight and output shapes give, so a caller can match them to a network's slots
(`match_slots`).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from evo.bench.conv_workloads import ConvShape, slot_shape
from evo.networks import Network


@dataclass(frozen=True)
class OrtConv:
    """One conv node of ORT's optimised graph: the conv workload its input and weight
    shapes give (None when the profiler did not report them) and its median
    milliseconds per inference."""

    node: str
    shape: ConvShape | None
    ms: float


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

    from evo.bench.peers import _example, onnx_export, ort_session_options

    example = _example(input_shape)
    model = onnx_export(module.eval(), example)
    with tempfile.TemporaryDirectory(prefix="evo-ort-") as folder:
        options = ort_session_options(threads)
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
                                args.get("input_type_shape", []),
                                args.get("output_type_shape", [])))
    convs, other = [], 0.0
    for node, (_, op, inputs, outputs) in sorted(first.items(), key=lambda item: item[1][0]):
        per_call = durations[node][1:] or durations[node]  # the warm-up run left out
        ms = statistics.median(per_call) * len(durations[node]) / calls
        if op in ("Conv", "FusedConv", "NchwcConv"):
            convs.append(OrtConv(node, _workload(inputs, outputs), ms))
        else:
            other += ms
    return OrtProfile(tuple(convs), other, version)


def _workload(inputs: list[dict], outputs: list[dict]) -> ConvShape | None:
    """The conv workload of a node from its logical shapes: data [N, C, H, W], weight
    [O, C/groups, k, k] and output [N, O', H', W'] (the profiler reports these even for
    NCHWc kernels; only the output's channels may be padded to a whole block)."""
    try:
        data, weight, out = (list(next(iter(t.values())))
                             for t in (*inputs[:2], outputs[0]))
        _, c, h, w = data
        o, per_group, kernel, _ = weight
        _, _, out_h, _ = out
    except (StopIteration, TypeError, ValueError, IndexError):
        return None
    if not (per_group and out_h):
        return None
    return ConvShape(c, o, h, w, kernel, max(1, h // out_h), c // per_group)


def match_slots(network: Network, profile: OrtProfile) -> dict[str, float] | None:
    """Each slot's ORT conv time: for each slot in order, the first node not yet taken
    that computes the slot's workload (ORT may run a block's shortcut conv before its
    second conv); None when a slot finds none. Nodes no slot takes (DenseNet's batch
    norms before a conv, run by ORT as depthwise 1x1 convs) are left out."""
    taken: set[int] = set()
    out = {}
    for slot in network.slots:
        shape = slot_shape(slot.spec)
        index = next((i for i, conv in enumerate(profile.convs)
                      if i not in taken and _computes(conv.shape, shape)), None)
        if index is None:
            return None
        taken.add(index)
        out[slot.id] = profile.convs[index].ms
    return out


def _computes(node: ConvShape | None, slot: ConvShape) -> bool:
    """Whether a node's workload is the slot's; NCHWc pads a conv's output channels
    (and its weight) to a whole block of 8 (AVX2) or 16 (AVX-512)."""
    if node is None:
        return False
    padded = {slot.out_channels, *(-(-slot.out_channels // b) * b for b in (8, 16))}
    return node.out_channels in padded and replace(node, out_channels=slot.out_channels) == slot
