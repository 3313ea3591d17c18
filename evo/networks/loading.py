"""`load_network`: a zoo name, `path/to/file.py:factory` or `package.module:factory`."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from evo.errors import UsageError
from evo.networks.base import Network
from evo.networks.slots import find_slots
from evo.networks.zoo import DEFAULT_INPUT_SHAPE, ZOO


def load_network(model: str, input_shape: tuple[int, ...] | None = None,
                 seed: int = 0) -> Network:
    """Build the model (seeded) and find its slots at `input_shape` (default 1,3,32,32).

    Raises UsageError with one line for an unknown name, a missing file, module or
    function, a factory that fails or returns no `nn.Module`, a failing forward pass,
    or a model without a conv the genome can describe.
    """
    shape = check_input_shape(DEFAULT_INPUT_SHAPE if input_shape is None else input_shape)
    factory, identity = resolve_factory(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            module = factory()
        except Exception as exc:  # the user's factory: any failure is bad input
            raise UsageError(f"model {model}: the factory raised {type(exc).__name__}: "
                             f"{_first_line(exc)}"[:300]) from None
    if not isinstance(module, nn.Module):
        raise UsageError(f"model {model}: the factory returned {type(module).__name__}, "
                         f"not a torch.nn.Module")
    module.train()
    slots, output_shape = find_slots(module, shape, model)
    return Network(model, shape, slots, module, identity, output_shape)


def parse_input_shape(text: str) -> tuple[int, ...]:
    """The CLI form `N,C,H,W`, e.g. `1,3,32,32`."""
    try:
        values = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected N,C,H,W integers") from None
    return check_input_shape(values)


def check_input_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(shape)
    if len(shape) != 4 or not all(isinstance(v, int) and v > 0 for v in shape):
        raise UsageError(f"input shape {shape}: expected 4 positive integers N,C,H,W")
    return shape


def resolve_factory(model: str) -> tuple[Callable[[], object], str]:
    """The callable that builds `model`, and a string identifying the model exactly."""
    if model in ZOO:
        return ZOO[model], f"zoo:{model}@{_zoo_digest()}"
    if ":" not in model:
        raise UsageError(f"unknown model {model!r} (zoo: {', '.join(ZOO)}; "
                         f"or path/to/file.py:factory or package.module:factory)")
    where, name = model.rsplit(":", 1)
    if not name.isidentifier():
        raise UsageError(f"model {model}: {name!r} is not a function name")
    if where.endswith(".py") or "/" in where or "\\" in where:
        namespace, identity = _load_file(Path(where))
    else:
        namespace, identity = _load_module(where)
    factory = getattr(namespace, name, None)
    if factory is None:
        raise UsageError(f"model {model}: {where} has no function {name!r}")
    if not callable(factory):
        raise UsageError(f"model {model}: {name!r} is a {type(factory).__name__}, not callable")
    return factory, f"{identity}:{name}"


def _zoo_digest() -> str:
    """A hash of every zoo network's source file (tiny reuses resnet's block, and so on)."""
    files = sorted({inspect.getsourcefile(factory) or "" for factory in ZOO.values()})
    digest = hashlib.sha256()
    for name in files:
        digest.update(Path(name).read_bytes())
    return digest.hexdigest()[:16]


def _load_file(path: Path):
    if not path.is_file():
        raise UsageError(f"model file {path}: no such file")
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"model file {path}: cannot read ({exc.strerror})") from None
    digest = hashlib.sha256(source).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(f"evo_user_model_{digest}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"model file {path}: not a Python file")
    namespace = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = namespace  # dataclasses in the file look it up
    try:
        spec.loader.exec_module(namespace)
    except Exception as exc:  # the user's file: any failure is bad input
        sys.modules.pop(spec.name, None)
        raise UsageError(f"model file {path}: importing it raised {type(exc).__name__}: "
                         f"{_first_line(exc)}"[:300]) from None
    return namespace, f"file:{path.resolve()}@{digest}"


def _load_module(name: str):
    try:
        namespace = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise UsageError(f"model module {name}: not found ({exc.name})") from None
    except Exception as exc:  # the user's package: any failure is bad input
        raise UsageError(f"model module {name}: importing it raised {type(exc).__name__}: "
                         f"{_first_line(exc)}"[:300]) from None
    identity = f"module:{name}"
    file = getattr(namespace, "__file__", None)
    if file:
        with contextlib.suppress(OSError):
            identity += "@" + hashlib.sha256(Path(file).read_bytes()).hexdigest()[:16]
    return namespace, identity


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
