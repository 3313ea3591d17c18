"""The TVM target to compile for: an llvm dict target with the host CPU detected."""

from __future__ import annotations

import json
from typing import Any

import tvm

from evo.errors import TargetError


def host_target_config() -> dict[str, Any]:
    """`{"kind": "llvm", "mcpu": <this CPU>}`, e.g. znver4 on AMD Zen 4."""
    from tvm.target import codegen

    config: dict[str, Any] = {"kind": "llvm"}
    cpu = codegen.llvm_get_system_cpu()
    if cpu and cpu != "generic":
        config["mcpu"] = cpu
    return config


def make_target(option: str | dict | None = None) -> tvm.target.Target:
    """A Target from None (the host), a dict, or a JSON string such as `{"kind": "llvm"}`."""
    config: Any = option
    if option is None:
        config = host_target_config()
    elif isinstance(option, str):
        try:
            config = json.loads(option)
        except json.JSONDecodeError:
            raise TargetError(f"--target {option!r}: not JSON (expected e.g. "
                              '\'{"kind": "llvm", "mcpu": "znver4"}\')') from None
    if not isinstance(config, dict) or "kind" not in config:
        raise TargetError(f"--target {option!r}: expected a JSON object with a \"kind\"")
    try:
        return tvm.target.Target(config)
    except Exception as exc:  # noqa: BLE001 - TVM raises its own error types
        raise TargetError(f"--target {option!r}: {str(exc).strip().splitlines()[-1]}") from None


def target_key(target: tvm.target.Target) -> str:
    """A stable string identifying the target, for cache keys."""
    return str(target)
