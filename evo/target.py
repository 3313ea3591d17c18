"""The TVM target to compile for: an llvm target, the host CPU detected by default.

A `--target` is JSON (`{"kind": "llvm", "mcpu": "znver3"}`) or TVM's older string
form (`llvm -mcpu=znver3 -mattr=+avx2,+fma`, which TVM 0.27 itself no longer
parses: it is turned into the dict here, typed by the llvm kind's attribute
schema). Only CPU (`llvm`) targets are accepted, as every program is timed on a
CPU. TVM takes an unknown `mcpu` or `mtriple` without complaint and LLVM later
falls back to a generic CPU with a log line; both are refused here instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import tvm

from evo.errors import TargetError

EXAMPLE = '\'{"kind": "llvm", "mcpu": "znver4"}\''


def host_target_config() -> dict[str, Any]:
    """`{"kind": "llvm", "mcpu": <this CPU>}`, e.g. znver4 on AMD Zen 4."""
    from tvm.target import codegen

    config: dict[str, Any] = {"kind": "llvm"}
    cpu = codegen.llvm_get_system_cpu()
    if cpu and cpu != "generic":
        config["mcpu"] = cpu
    return config


def make_target(option: str | dict | None = None) -> tvm.target.Target:
    """A Target from None (the host), a dict, a JSON string or TVM's string form
    (`llvm -mcpu=...`); raises TargetError with one line for anything else."""
    config = host_target_config() if option is None else _config(option)
    try:
        target = tvm.target.Target(config)
    except Exception as exc:  # noqa: BLE001 - TVM raises its own error types
        lines = str(exc).strip().splitlines()
        raise TargetError(f"--target {option!r}: {lines[-1] if lines else exc}") from None
    _check_llvm(target, option)
    return target


def target_json(option: str | dict) -> str:
    """`option` validated (see `make_target`) and written as a JSON object."""
    make_target(option)
    return json.dumps(_config(option))


def target_key(target: tvm.target.Target) -> str:
    """A stable string identifying the target, for cache keys."""
    return str(target)


def _config(option: str | dict) -> dict[str, Any]:
    config: Any = option
    if isinstance(option, str):
        text = option.strip()
        if text.startswith(("{", "[", '"')):
            try:
                config = json.loads(text)
            except json.JSONDecodeError:
                raise TargetError(f"--target {option!r}: not JSON (expected e.g. {EXAMPLE} "
                                  "or 'llvm -mcpu=znver4')") from None
        else:
            config = _from_string_form(option)
    if not isinstance(config, dict) or "kind" not in config:
        raise TargetError(f"--target {option!r}: expected a JSON object with a \"kind\"")
    if config["kind"] != "llvm":
        raise TargetError(f"--target {option!r}: kind {config['kind']!r} is not supported; "
                          "evo compiles for and times on CPUs (kind \"llvm\")")
    return config


def _from_string_form(text: str) -> dict[str, Any]:
    """`llvm -mcpu=x -mattr=+a,+b -num-cores=4 -fast-math` as a dict for TVM."""
    kind, *options = text.split() or [""]
    if kind != "llvm":
        return {"kind": kind}  # refused by the caller
    schema = tvm.target.TargetKind.options_from_name("llvm")
    config: dict[str, Any] = {"kind": "llvm"}
    for option in options:
        name, has_value, value = option.lstrip("-").partition("=")
        kind_of = schema.get(name)
        if not option.startswith("-") or kind_of is None:
            raise TargetError(f"--target {text!r}: unknown option {option!r} for llvm")
        try:
            config[name] = _typed(kind_of, value if has_value else None)
        except ValueError:
            raise TargetError(f"--target {text!r}: {option!r} needs a {kind_of} value"
                              ) from None
    return config


def _typed(kind: str, value: str | None) -> Any:
    if kind == "bool":
        if value is None or value.lower() in ("1", "true"):
            return True
        if value.lower() in ("0", "false"):
            return False
        raise ValueError(value)
    if value is None or value == "":
        raise ValueError(kind)
    if kind == "int":
        return int(value)
    if kind.startswith("Array"):
        return [item for item in value.split(",") if item]
    return value


def _check_llvm(target: tvm.target.Target, option: object) -> None:
    """Refuse an mcpu or mtriple LLVM does not know (TVM would fall back silently)."""
    from tvm.target import codegen

    triple = str(target.attrs.get("mtriple") or codegen.llvm_get_system_triple())
    cpu = str(target.attrs.get("mcpu") or "generic")
    with _stderr_captured():  # LLVM logs its fallback; the error below says it in one line
        valid = bool(codegen.llvm_is_valid_cpu(cpu, triple))
        triple_ok = valid or bool(codegen.llvm_is_valid_cpu("generic", triple))
    if not triple_ok:
        raise TargetError(f"--target {option!r}: mtriple {triple!r} is not a target this "
                          "LLVM knows")
    if not valid:
        raise TargetError(f"--target {option!r}: mcpu {cpu!r} is not a CPU LLVM knows for "
                          f"{triple} (this machine's is "
                          f"{host_target_config().get('mcpu', 'generic')!r})")


@contextlib.contextmanager
def _stderr_captured() -> Iterator[None]:
    """Keep what native code writes to file descriptor 2 meanwhile off the terminal."""
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
