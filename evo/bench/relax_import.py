"""A whole PyTorch network as one Relax IRModule whose convs run our scheduled programs.

The module is traced with `torch.fx` (each `TransformedConv` kept as one call) and
translated by TVM's fx importer, except for three kinds of module:

- `TransformedConv` (and subclasses, e.g. with a bias): a `relax.call_tir` to the
  PrimFunc `genomes.tvm_decoder.to_tvm(plan)` of its plan, with the pieces' weights
  packed by `pack_weights` and bound as constants;
- plain `nn.Conv2d`: the same, with the plan given for its name, else the untransformed
  layer with the program genes `schedule` applied (`own_convs=False` keeps TVM's
  own `conv2d` instead, for the MetaSchedule baseline; a conv the genome cannot
  describe, e.g. dilated, also keeps it and is listed in `fallback`);
- `nn.BatchNorm2d`: inference batch norm with the running statistics, as a per-channel
  multiply and add.

With `fuse_epilogues` (the default) a conv of ours whose only consumer is a BatchNorm
computes that BatchNorm in its own kernel (`genomes.tvm_decoder.Epilogue`), and with
it the residual add and the ReLU that follow when each is the only consumer of what
comes before it (a post-activation ResNet block: conv, bn, add, relu), as ONNX
Runtime's fused convs do. A conv bias is folded into the BatchNorm's shift. Our conv
PrimFuncs are marked scheduled and opaque, so TVM's pipeline neither fuses them with
neighbours nor re-schedules them; everything else goes through it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import tvm
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from tvm import relax
from tvm.relax.frontend.torch.fx_translator import TorchFXImporter

from evo.errors import UsageError
from evo.networks.slots import conv_spec
from genomes.genome import LayerGenome, decode_layer
from genomes.plan import LayerPlan
from genomes.torch_decoder import TransformedConv
from genomes.tvm_decoder import Epilogue, pack_weights, to_tvm

OPAQUE = 8  # relax OpPatternKind.kOpaque: never fused with other operators
IMPORT_VERSION = 2  # bump when the Relax graph of a network changes (tuning records key)


class ConvProgramError(RuntimeError):
    """TVM rejected the schedule of one conv's plan; the message names the conv."""


@dataclass(frozen=True)
class RelaxNetwork:
    """A network as a Relax module: `main(input) -> output`, weights bound as constants.

    `plans` maps each conv compiled with our programs to the plan used; `fallback`
    names the convs compiled by TVM's own `conv2d`; `fused` maps each conv of ours
    that computes its epilogue to what it fused ("bn", "bn+add", "bn+relu",
    "bn+add+relu").
    """

    mod: tvm.IRModule
    input_shape: tuple[int, ...]
    plans: dict[str, LayerPlan] = field(default_factory=dict)
    fallback: tuple[str, ...] = ()
    fused: dict[str, str] = field(default_factory=dict)


@dataclass
class _Chain:
    """A conv and the consumers fused into its kernel; `last` is where it is emitted."""

    conv: fx.Node
    bn: fx.Node
    add: fx.Node | None = None
    residual: fx.Node | None = None
    relu: fx.Node | None = None
    call: tuple | None = None  # (plan, program, weights, bias) once the conv is reached

    @property
    def last(self) -> fx.Node:
        return self.relu or self.add or self.bn

    @property
    def kind(self) -> str:
        return "+".join(k for k, n in (("bn", self.bn), ("add", self.add),
                                       ("relu", self.relu)) if n is not None)


_PENDING = object()  # the value of a node whose result only the end of its chain uses


class _LeafTracer(fx.Tracer):
    """fx tracer that keeps every `TransformedConv` as a single module call."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, TransformedConv) or super().is_leaf_module(m, qualname)


def program_symbol(slot_id: str) -> str:
    """The kernel name of the conv program of the slot (module name) `slot_id`."""
    return "conv_" + slot_id.replace(".", "_")


def to_relax(module: nn.Module, input_shape: tuple[int, ...],
             plans: dict[str, LayerPlan] | None = None,
             schedule: LayerGenome | None = None, own_convs: bool = True,
             fuse_epilogues: bool = True) -> RelaxNetwork:
    """Translate `module` (run in eval mode; its mode is restored) at `input_shape`.

    `plans` overrides the plan of a conv by module name (for a `TransformedConv` the
    plan must have the module's pieces; only its schedules may differ). Raises
    UsageError if the module cannot be traced or uses an operator TVM cannot import,
    ConvProgramError if TVM rejects a plan's schedule.
    """
    plans = dict(plans or {})
    schedule = schedule or LayerGenome()
    training = module.training
    module.eval()
    try:
        graph_module = _trace(module, input_shape)
        importer = _Importer(graph_module, plans, schedule, own_convs,
                             fuse_epilogues and own_convs)
        try:
            mod = importer.from_fx(graph_module, [(tuple(input_shape), "float32")],
                                   keep_params_as_input=False, unwrap_unit_return_tuple=False,
                                   no_bind_return_tuple=False)
        except (ConvProgramError, UsageError):
            raise
        except Exception as exc:  # noqa: BLE001 - the importer asserts on unsupported ops
            raise UsageError(f"TVM cannot import the network: {_last_line(exc)}") from None
    finally:
        module.train(training)
    unused = sorted(set(plans) - set(importer.used_plans))
    if unused:
        raise UsageError(f"plan given for {unused[0]!r}, which is not a conv of the network")
    return RelaxNetwork(mod, tuple(input_shape), importer.used_plans, tuple(importer.fallback),
                        importer.fused)


def _trace(module: nn.Module, input_shape: tuple[int, ...]) -> fx.GraphModule:
    """The fx graph of `module` with every node's output shape recorded."""
    try:
        graph_module = fx.GraphModule(module, _LeafTracer().trace(module))
    except Exception as exc:  # noqa: BLE001 - user models fail tracing in many ways
        raise UsageError(f"the network cannot be traced by torch.fx: {_last_line(exc)}") from None
    with torch.no_grad():
        try:
            ShapeProp(graph_module).propagate(torch.zeros(input_shape))
        except Exception as exc:  # noqa: BLE001 - a wrong input shape surfaces here
            raise UsageError(f"the network does not run at input shape {tuple(input_shape)}: "
                             f"{_last_line(exc)}") from None
    return graph_module


class _Importer(TorchFXImporter):
    """TVM's fx importer with our convs and inference batch norm."""

    def __init__(self, graph_module: fx.GraphModule, plans: dict[str, LayerPlan],
                 schedule: LayerGenome, own_convs: bool, fuse: bool = False) -> None:
        super().__init__()
        self.plans = plans
        self.schedule = schedule
        self.own_convs = own_convs
        self.used_plans: dict[str, LayerPlan] = {}
        self.fallback: list[str] = []
        self.fused: dict[str, str] = {}
        types = {type(m) for m in graph_module.modules() if isinstance(m, TransformedConv)}
        self.convert_map.update(dict.fromkeys(types, self._transformed_conv))
        self.convert_map[nn.Conv2d] = self._plain_conv
        self.convert_map[nn.BatchNorm2d] = self._batch_norm
        self.chains: dict[fx.Node, _Chain] = {}
        if fuse:
            modules = dict(graph_module.named_modules())
            for node in graph_module.graph.nodes:
                chain = _chain_at(node, modules)
                if chain is None:
                    continue
                if chain.add in self.chains:  # both operands of an add end a chain: the
                    chain.add = chain.residual = chain.relu = None  # first takes it
                self.chains.update(dict.fromkeys(
                    [n for n in (chain.conv, chain.bn, chain.add, chain.relu) if n], chain))
            for key in (nn.ReLU, "relu", "relu_", "add", "iadd", "add_"):
                if key in self.convert_map:
                    self.convert_map[key] = self._in_chain(self.convert_map[key])

    def _in_chain(self, convert):
        """`convert`, except for a node of a fused chain (see `_step`)."""
        def wrapped(node: fx.Node, *rest):
            return self._step(node) if node in self.chains else convert(node, *rest)
        return wrapped

    def _step(self, node: fx.Node):
        """A chain's nodes before its last are pending; the last emits the fused call."""
        chain = self.chains[node]
        if node is not chain.last:
            return _PENDING
        plan, plain, weights, bias = chain.call
        bn = self.named_modules[chain.bn.target]
        scale, shift = _bn_affine(bn, plan.out_shape[1])
        if bias is not None:
            shift = shift + scale * bias.detach().cpu().double().numpy()
        residual = self.env[chain.residual] if chain.residual is not None else None
        epilogue = Epilogue(residual=residual is not None, relu=chain.relu is not None)
        program = to_tvm(plan, epilogue)
        if not program.ok:  # this schedule does not take an epilogue: separate kernels
            return self._unfused(chain, plan, plain, weights, scale, shift, residual)
        extra = [relax.const(scale.astype("float32")), relax.const(shift.astype("float32"))]
        out = self._emit_program(chain.conv, plan, program, weights,
                                 extra + ([residual] if residual is not None else []))
        self.fused[chain.conv.target] = chain.kind
        return out

    def _unfused(self, chain: _Chain, plan: LayerPlan, program, weights, scale: np.ndarray,
                 shift: np.ndarray, residual) -> relax.Var:
        """The chain as separate kernels: the conv's plain `program`, `x * scale + shift`
        (the bias folded into `shift`), the residual add and the ReLU."""
        out = self._emit_program(chain.conv, plan, program, weights, [])
        shape = (1, plan.out_shape[1], 1, 1)
        out = self.block_builder.emit(relax.op.add(
            relax.op.multiply(out, relax.const(scale.reshape(shape).astype("float32"))),
            relax.const(shift.reshape(shape).astype("float32"))))
        if residual is not None:
            out = self.block_builder.emit(relax.op.add(out, residual))
        if chain.relu is not None:
            out = self.block_builder.emit(relax.op.nn.relu(out))
        return out

    def _drop_chain(self, conv: fx.Node) -> None:
        """`conv` is compiled by TVM's own conv2d: its consumers are converted as usual."""
        chain = self.chains.get(conv)
        for node in (chain.conv, chain.bn, chain.add, chain.relu) if chain else ():
            self.chains.pop(node, None)

    def _plain_conv(self, node: fx.Node) -> relax.Var:
        conv = self.named_modules[node.target]
        spec = conv_spec(conv, _input_shape(node))
        if not self.own_convs or spec is None:
            self.fallback.append(node.target)
            self._drop_chain(node)
            return self._conv2d_module(node)
        plan = self.plans.get(node.target)
        if plan is None:
            decoded = decode_layer(spec, self.schedule)
            if decoded.plan is None:
                raise UsageError(f"conv {node.target}: schedule does not apply: {decoded.error}")
            plan = decoded.plan
        elif plan.spec != spec or not plan.is_single_full_piece() or \
                plan.pieces[0].groups != conv.groups:
            raise UsageError(f"conv {node.target}: the plan given does not match the conv "
                             f"({spec.short()})")
        return self._call_program(node, plan, [conv.weight], conv.bias)

    def _transformed_conv(self, node: fx.Node) -> relax.Var:
        conv = self.named_modules[node.target]
        plan = self.plans.get(node.target, conv.plan)
        if plan.spec != conv.plan.spec or plan.pieces != conv.plan.pieces:
            raise UsageError(f"conv {node.target}: the plan given has other pieces than the "
                             f"module's")
        n, c, h, w = _input_shape(node)
        if (n, c, h, w) != (plan.spec.batch, plan.spec.in_channels, plan.spec.height,
                            plan.spec.width):
            raise UsageError(f"conv {node.target}: plan is for input {plan.spec.short()} "
                             f"but the network gives {c}x{h}x{w} (batch {n})")
        return self._call_program(node, plan, conv.weights(), getattr(conv, "bias", None))

    def _call_program(self, node: fx.Node, plan: LayerPlan, weights: list[torch.Tensor],
                      bias: torch.Tensor | None) -> relax.Var:
        program = to_tvm(plan)
        if not program.ok:
            raise ConvProgramError(f"conv {node.target}: {program.error}")
        chain = self.chains.get(node)
        if chain is not None:  # emitted at the end of its chain
            chain.call = (plan, program, weights, bias)
            return _PENDING
        out = self._emit_program(node, plan, program, weights, [])
        if bias is not None:
            shaped = bias.detach().cpu().numpy().reshape(1, -1, 1, 1)
            out = self.block_builder.emit(relax.op.add(out, relax.const(shaped)))
        return out

    def _emit_program(self, node: fx.Node, plan: LayerPlan, program, weights, extra: list,
                      ) -> relax.Var:
        """A call of the scheduled `program` of conv `node` on its input, its packed
        weights (constants) and `extra` arguments (an epilogue's)."""
        func = (program.func.without_attr("global_symbol")
                .with_attr("op_pattern", OPAQUE).with_attr("tirx.is_scheduled", True))
        global_var = self.block_builder.add_func(func, program_symbol(node.target))
        arrays = pack_weights(plan, [w.detach().cpu().numpy() for w in weights])
        args = [self.env[node.args[0]], *(relax.const(a) for a in arrays), *extra]
        self.used_plans[node.target] = plan
        return self.block_builder.emit(
            relax.call_tir(global_var, args, relax.TensorType(plan.out_shape, "float32")))

    def _batch_norm(self, node: fx.Node) -> relax.Var:
        """Inference batch norm as `x * scale + shift` per channel (constants folded in
        float64), so it fuses with the ReLU or residual add after it; in a chain, fused
        into the conv's kernel instead."""
        if node in self.chains:
            return self._step(node)
        bn = self.named_modules[node.target]
        channels = _input_shape(node)[1]
        scale, shift = _bn_affine(bn, channels, node.target)
        shape = (1, channels, 1, 1)
        scaled = self.block_builder.emit(relax.op.multiply(
            self.env[node.args[0]], relax.const(scale.reshape(shape).astype("float32"))))
        return self.block_builder.emit(relax.op.add(
            scaled, relax.const(shift.reshape(shape).astype("float32"))))


def _bn_affine(bn: nn.BatchNorm2d, channels: int, name: str = "") -> tuple[np.ndarray, ...]:
    """Inference batch norm as per-channel (scale, shift), in float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise UsageError(f"batch norm {name or 'of a conv'} keeps no running statistics")

    def values(tensor: torch.Tensor | None, default: float) -> np.ndarray:
        if tensor is None:
            return np.full(channels, default)
        return tensor.detach().cpu().double().numpy()

    scale = values(bn.weight, 1.0) / np.sqrt(values(bn.running_var, 1.0) + bn.eps)
    return scale, values(bn.bias, 0.0) - values(bn.running_mean, 0.0) * scale


_ADDS = {operator.add, operator.iadd, torch.add}
_RELUS = {torch.relu, torch.nn.functional.relu}


def _only_user(node: fx.Node) -> fx.Node | None:
    return next(iter(node.users)) if len(node.users) == 1 else None


def _is_add(node: fx.Node) -> bool:
    binary = len(node.args) == 2 and not node.kwargs
    return binary and ((node.op == "call_function" and node.target in _ADDS)
                       or (node.op == "call_method" and node.target in ("add", "add_")))


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return type(modules.get(node.target)) is nn.ReLU
    if node.op == "call_function":
        return node.target in _RELUS
    return node.op == "call_method" and node.target in ("relu", "relu_")


def _chain_at(conv: fx.Node, modules: dict[str, nn.Module]) -> _Chain | None:
    """The fusable chain starting at `conv`: conv -> BatchNorm2d [-> add] [-> relu],
    each the only consumer of the one before (the add's other operand, of the same
    shape, is the residual); None when `conv` is not a conv followed by a BatchNorm."""
    module = modules.get(conv.target) if conv.op == "call_module" else None
    if not isinstance(module, nn.Conv2d | TransformedConv):
        return None
    bn = _only_user(conv)
    if bn is None or bn.op != "call_module" or \
            type(modules.get(bn.target)) is not nn.BatchNorm2d or bn.args[0] is not conv:
        return None
    chain = _Chain(conv, bn)
    after = _only_user(bn)
    if after is not None and _is_add(after):
        other = after.args[1] if after.args[0] is bn else after.args[0]
        shape = getattr(other, "meta", {}).get("tensor_meta")
        if isinstance(other, fx.Node) and other is not bn and shape is not None and \
                tuple(shape.shape) == tuple(bn.meta["tensor_meta"].shape):
            chain.add, chain.residual = after, other
            after = _only_user(after)
    if after is not None and _is_relu(after, modules):
        chain.relu = after
    return chain


def _input_shape(node: fx.Node) -> tuple[int, ...]:
    return tuple(node.args[0].meta["tensor_meta"].shape)


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return (f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__)[:300]
