"""Find a network's slots: every supported `nn.Conv2d`, its shape, and its allowed genes.

Shapes come from one forward pass (eval mode, no grad) on zeros of the input shape.
Which convs may change their output channel count comes from the `torch.fx` graph:
a conv's output may shrink (gene `bottleneck`) when every path from it passes only
through channel-wise operations (BatchNorm2d, activations, pooling, dropout) and
ends as the input of other slot convs, so no residual add, concatenation, reshape,
linear layer or network output sees it. The BatchNorms on those paths and the convs
they end in shrink with it. A conv called more than once, or feeding a depthwise
conv, keeps its channel count. If the model cannot be traced, no slot gets
`bottleneck`.

Convs the layer genome cannot describe (dilation, non-square kernels or strides,
asymmetric or string padding, non-zero padding modes) are not slots; they stay as
they are.
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

from evo.errors import UsageError
from evo.networks.base import Slot
from evo.networks.threads import torch_threads
from genomes.genes import (
    GENES,
    MAX_SPLIT_PARTS,
    NEURAL_GENES,
    PROGRAM_GENES,
    Bottleneck,
    Depthwise,
    GeneError,
    Group,
    SplitChannels,
    SplitRows,
    UnrollChannels,
)
from genomes.plan import initial_plan
from genomes.spec import LayerSpec, SpecError

CHANNEL_CHANGING = ("bottleneck",)
CHANNEL_PRESERVING = tuple(g.name for g in NEURAL_GENES if g.name not in CHANNEL_CHANGING)
PROGRAM = tuple(g.name for g in PROGRAM_GENES)

_CHANNELWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus, nn.Identity,
    nn.Dropout, nn.Dropout2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
_CHANNELWISE_FUNCTIONS = {
    F.relu, F.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish,
    F.hardswish, F.hardsigmoid, F.hardtanh, F.softplus, F.dropout, F.dropout2d, F.max_pool2d,
    F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, torch.relu, torch.relu_,
    torch.sigmoid, torch.tanh,
}
_CHANNELWISE_METHODS = {"relu", "relu_", "sigmoid", "tanh", "contiguous", "clone"}


@dataclass(frozen=True)
class ConvSite:
    """Where a slot's conv sits in the traced graph."""

    shrinks: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    measure_at: str | None = None
    can_shrink: bool = False


def find_slots(module: nn.Module, input_shape: tuple[int, ...],
               model: str) -> tuple[tuple[Slot, ...], tuple[int, ...]]:
    """The slots of `module` at `input_shape`, and the shape of its output."""
    inputs, output_shape = _conv_inputs(module, input_shape, model)
    convs = {name: m for name, m in module.named_modules() if isinstance(m, nn.Conv2d)}
    if not convs:
        raise UsageError(f"model {model}: has no nn.Conv2d layer to transform")
    specs: dict[str, LayerSpec] = {}
    for name, conv in convs.items():
        if name in inputs:
            spec = conv_spec(conv, inputs[name])
            if spec is not None:
                specs[name] = spec
    if not specs:
        raise UsageError(f"model {model}: none of its {len(convs)} nn.Conv2d layers is a plain "
                         f"conv the genome can describe (square kernel, no dilation, zero padding)")
    sites = _graph_sites(module, specs)
    slots = []
    for name, spec in specs.items():
        site = sites.get(name, ConvSite())
        neural = CHANNEL_CHANGING + CHANNEL_PRESERVING if site.can_shrink else CHANNEL_PRESERVING
        allowed = tuple(name for name in neural if can_apply(spec, name))
        program = tuple(gene for gene in PROGRAM if can_apply(spec, gene))
        slots.append(Slot(name, spec, allowed + program, shrinks=site.shrinks, feeds=site.feeds,
                          measure_at=site.measure_at or name))
    order = {name: i for i, name in enumerate(inputs)}
    slots.sort(key=lambda s: order[s.id])
    return tuple(slots), output_shape


def _trial_genes(name: str, spec: LayerSpec):
    """Parameterisations of neural gene `name` to try on `spec`'s untransformed layer:
    if none applies, no parameterisation does (their preconditions only get stricter
    with larger parameters)."""
    low = min(spec.in_channels, spec.out_channels)
    if name == "bottleneck":
        return [Bottleneck(f) for f in range(2, 65)]
    if name == "group":
        return [Group(g) for g in range(2, min(low, 1024) + 1)]
    if name == "depthwise":
        return [Depthwise()]
    if name == "split_channels":
        return [SplitChannels((1,) * parts) for parts in range(2, MAX_SPLIT_PARTS + 1)]
    if name == "unroll_channels":
        return [UnrollChannels(u, 1) for u in range(spec.groups, min(low, 4096), spec.groups)]
    return [SplitRows(parts) for parts in range(2, MAX_SPLIT_PARTS + 1)]


def can_apply(spec: LayerSpec, name: str) -> bool:
    """Whether gene `name` applies to `spec`'s untransformed layer with some parameters
    (a program gene with its defaults: all apply to every conv but `winograd`, which needs
    a 3x3 conv at stride 1, and `inline_pad` and `tile_pad`, which do nothing on an
    unpadded conv)."""
    plan = initial_plan(spec)
    if name not in CHANNEL_CHANGING + CHANNEL_PRESERVING:
        trials = [GENES[name]()]
        if not trials[0].acts_on(spec):
            return False
    else:
        trials = _trial_genes(name, spec)
    for gene in trials:
        try:
            gene.apply(plan)
        except GeneError:
            continue
        return True
    return False


def _conv_inputs(module: nn.Module, input_shape: tuple[int, ...],
                 model: str) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
    """Input shape of every conv at its first call, in call order; and the output shape."""
    seen: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            def record(_m, args, name=name):
                if args and isinstance(args[0], torch.Tensor):
                    seen.setdefault(name, tuple(args[0].shape))
            handles.append(m.register_forward_pre_hook(record))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), torch_threads(1):
            out = module(torch.zeros(input_shape))
    except Exception as exc:  # the user's model: any failure is bad input
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        shape = ",".join(map(str, input_shape))
        raise UsageError(f"model {model}: forward pass on input shape {shape} failed: "
                         f"{type(exc).__name__}: {first}"[:300]) from None
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise UsageError(f"model {model}: forward returned {type(out).__name__}, not a tensor")
    return seen, tuple(out.shape)


def conv_spec(conv: nn.Conv2d, shape: tuple[int, ...]) -> LayerSpec | None:
    """The conv's LayerSpec at NCHW input `shape`, or None if the genome cannot describe it."""
    if len(shape) != 4 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return None
    k, s, p, d = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    if k[0] != k[1] or s[0] != s[1] or p[0] != p[1] or d != (1, 1):
        return None
    n, c, h, w = shape
    try:
        return LayerSpec(c, conv.out_channels, h, w, k[0], s[0], p[0], conv.groups, n)
    except SpecError:
        return None


def _graph_sites(module: nn.Module, specs: dict[str, LayerSpec]) -> dict[str, ConvSite]:
    """Where each slot conv's output goes, from the fx graph ({} if it cannot be traced)."""
    try:
        graph = fx.Tracer().trace(module)
    except Exception:  # untraceable user code: be conservative
        return {}
    modules = dict(module.named_modules())
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    sites = {}
    for node in graph.nodes:
        if node.op == "call_module" and node.target in specs:
            sites[node.target] = _site(node, modules, specs, calls)
    return sites


def _site(node: fx.Node, modules: dict[str, nn.Module], specs: dict[str, LayerSpec],
          calls: Counter) -> ConvSite:
    name = node.target
    measure_at = None
    users = list(node.users)
    if (len(users) == 1 and users[0].op == "call_module"
            and isinstance(modules.get(users[0].target), nn.BatchNorm2d)
            and calls[users[0].target] == 1 and users[0].args[:1] == (node,)):
        measure_at = users[0].target
    shrinks: list[str] = []
    feeds: list[str] = []
    ok = calls[name] == 1
    frontier = [node]
    while ok and frontier:
        current = frontier.pop()
        for user in current.users:
            if not _only_input(user, current):
                ok = False
            elif user.op == "call_module" and user.target in specs:
                consumer = specs[user.target]
                depthwise = consumer.groups > 1 and consumer.groups == consumer.in_channels
                ok = calls[user.target] == 1 and not depthwise
                feeds.append(user.target)
            elif user.op == "call_module" and isinstance(modules.get(user.target),
                                                         nn.BatchNorm2d):
                ok = calls[user.target] == 1
                shrinks.append(user.target)
                frontier.append(user)
            elif _channelwise(user, modules):
                frontier.append(user)
            else:
                ok = False
            if not ok:
                break
    ok = ok and bool(feeds)
    return ConvSite(tuple(dict.fromkeys(shrinks)) if ok else (),
                    tuple(dict.fromkeys(feeds)) if ok else (), measure_at, ok)


def _only_input(user: fx.Node, value: fx.Node) -> bool:
    """`value` is the first positional argument of `user` and no other graph value is used."""
    if not user.args or user.args[0] is not value:
        return False
    others: list[fx.Node] = []
    fx.node.map_arg((user.args[1:], user.kwargs), others.append)
    return not others


def _channelwise(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        m = modules.get(node.target)
        return isinstance(m, _CHANNELWISE_MODULES) and not isinstance(m, nn.PReLU)
    if node.op == "call_function":
        return node.target in _CHANNELWISE_FUNCTIONS or node.target is operator.pos
    if node.op == "call_method":
        return node.target in _CHANNELWISE_METHODS
    return False
