"""Which machine measured: a small JSON-ready description of the host, and how two differ.

A run records the host of every session that ran it (`evo.store.run_store`), so a
search moved to another machine (a new VM after a reboot, a checkout restored
elsewhere) is noticed: its stored latencies came from one CPU and the new ones
from another, and selection would compare them as if they were alike.
"""

from __future__ import annotations

import platform
import socket
from typing import Any

# What makes latencies comparable; `hostname` is recorded but not compared (a VM
# may get a new name on the same hardware, and the same name on new hardware).
COMPARED = ("cpu", "mcpu", "cores", "tvm", "device")


def describe_host(runner: str | None = None) -> dict[str, Any]:
    """This machine as measurement sees it: CPU model, the CPU LLVM detects (`mcpu`),
    the cores this process may use, TVM's version, and the device that times
    (`local` or the `rpc://` runner)."""
    import tvm

    from evo.measure.evaluator import available_cores
    from evo.target import host_target_config

    return {"cpu": _cpu_model(), "mcpu": host_target_config().get("mcpu", "generic"),
            "cores": available_cores(), "tvm": tvm.__version__,
            "device": runner or "local", "hostname": socket.gethostname()}


def host_changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The compared fields that differ, as `field A -> B` strings (empty: same host)."""
    return [f"{key} {before.get(key)!r} -> {now.get(key)!r}" for key in COMPARED
            if before.get(key) != now.get(key)]


def same_host(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return not host_changes(a, b)


def distinct_hosts(sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct machines `sessions` ran on, in order of first use, each with its
    session ids; sessions that recorded no machine (older stores) are left out."""
    hosts: list[dict[str, Any]] = []
    for session in sessions:
        host = session.get("host")
        if host is None:
            continue
        for known in hosts:
            if same_host(known["host"], host):
                known["sessions"].append(session["id"])
                break
        else:
            hosts.append({"host": host, "sessions": [session["id"]]})
    return hosts


def host_label(host: dict[str, Any]) -> str:
    """One line, e.g. `AMD EPYC 9R14 (znver4, 2 cores, TVM 0.27.0, local)`."""
    return (f"{host.get('cpu')} ({host.get('mcpu')}, {host.get('cores')} cores, "
            f"TVM {host.get('tvm')}, {host.get('device')})")


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what `platform` knows elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
