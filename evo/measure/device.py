"""The measurement process: times compiled layer programs, one at a time.

Run as `python -m evo.measure.device [RUNNER]` by `evo.measure.runner`, with
`TVM_NUM_THREADS` set to the thread count to use. It reads one JSON request a
line on stdin and writes one JSON reply a line on its original stdout (anything
else printed, by TVM included, goes to stderr). The first line it writes says
it is ready and how many threads the runtime really uses.

Without RUNNER it times on this machine's CPU. With `rpc://HOST:PORT/KEY` it
asks the TVM RPC tracker at HOST:PORT for a device registered under KEY, uploads
each library there and times it remotely. The remote runtime uses at most the
server's own maximum thread count (start `rpc_server` with `TVM_NUM_THREADS=N`);
`threads`, when given, lowers it, and the count really used is reported. When a
program fails and the RPC session turns out to be dead, the reply says
`"blame": "unclear"` and the process exits (the next request starts a new one).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from evo.measure.interference import OtherLoad
from evo.measure.timing import TimingPolicy, time_program


@dataclass(frozen=True)
class RpcAddress:
    host: str
    port: int
    key: str


def parse_runner(text: str | None) -> RpcAddress | None:
    """None for local measurement, an RpcAddress for `rpc://HOST:PORT/KEY`.

    Raises ValueError with a one-line reason for anything else.
    """
    if text is None or text in ("", "local"):
        return None
    form = "expected rpc://HOST:PORT/KEY"
    if not text.startswith("rpc://"):
        raise ValueError(f"--runner {text!r}: {form}")
    address, _, key = text[len("rpc://"):].partition("/")
    host, _, port = address.rpartition(":")
    if not host or not key or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--runner {text!r}: {form}")
    return RpcAddress(host, int(port), key)


class LocalDevice:
    """This machine's CPU; the thread count comes from TVM_NUM_THREADS."""

    local = True

    def __init__(self) -> None:
        import tvm

        self.tvm = tvm
        self.device = tvm.cpu(0)
        self.threads = int(tvm.get_global_func("runtime.NumThreads")())

    def load(self, library: Path):
        return self.tvm.runtime.load_module(str(library))

    def unload(self, library: Path) -> None:
        pass

    def alive(self) -> bool:
        return True


class RpcDevice:
    """A device behind a TVM RPC tracker (its other load is not known here)."""

    local = False

    def __init__(self, address: RpcAddress, threads: int | None) -> None:
        from tvm import rpc

        try:  # TVM itself would retry a refused connection for a minute
            socket.create_connection((address.host, address.port), timeout=10).close()
        except OSError as exc:
            raise ConnectionError(f"cannot reach the RPC tracker at {address.host}:"
                                  f"{address.port} ({exc.strerror or exc})") from None
        tracker = rpc.connect_tracker(address.host, address.port)
        if address.key not in tracker.summary()["queue_info"]:
            raise LookupError(f"no RPC server is registered under key {address.key!r} at "
                              f"{address.host}:{address.port}")
        self.session = tracker.request(address.key, priority=1, session_timeout=0)
        self.device = self.session.cpu(0)
        if threads:  # at most the server's own maximum (its TVM_NUM_THREADS)
            self.session.get_function("runtime.config_threadpool")(1, threads)  # 1: big cores
        self.threads = int(self.session.get_function("runtime.NumThreads")())

    def load(self, library: Path):
        self.session.upload(str(library), target=library.name)
        return self.session.load_module(library.name)

    def unload(self, library: Path) -> None:
        self.session.remove(library.name)

    def alive(self) -> bool:
        """Whether the session still answers."""
        try:
            self.session.get_function("runtime.NumThreads")()
        except Exception:  # noqa: BLE001 - any failure means the session is gone
            return False
        return True


def time_library(device, library: Path, spec_json: dict, genome_json: list,
                 policy: TimingPolicy) -> dict:
    """Load one library on `device`, time its `main` on random data, return the reply."""
    import numpy as np

    from evo.tvm_runtime import tvm_arguments
    from genomes.genome import LayerGenome, decode_layer
    from genomes.spec import LayerSpec

    spec = LayerSpec.from_json(spec_json)
    plan = decode_layer(spec, LayerGenome.from_json(genome_json)).plan
    if plan is None:
        return {"error": "decode failed in the measurement process"}
    rng = np.random.default_rng(0)
    data = rng.random((spec.batch, spec.in_channels, spec.height, spec.width), dtype=np.float32)
    weights = [rng.random(piece.weight_shape(spec), dtype=np.float32) for piece in plan.pieces]
    module = device.load(library)
    try:
        arguments = tvm_arguments(plan, data, weights, device.device)

        def time_runs(number: int, repeat: int) -> tuple[list[float], float]:
            evaluator = module.time_evaluator("main", device.device, number=number,
                                              repeat=repeat, min_repeat_ms=0)
            with OtherLoad() as load:
                results = list(evaluator(*arguments).results)
            return results, load.share if device.local else 0.0

        timing = time_program(time_runs, policy)
    finally:
        device.unload(library)
    return {"median_ms": timing.median_ms, "spread": timing.spread, "repeats": timing.repeats,
            "flagged": timing.flagged, "other_load": timing.other_load,
            "threads": device.threads, "error": None}


def serve(runner: str | None, threads: int | None) -> None:
    """Answer requests on stdin until it closes."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints (TVM's too) must not corrupt the replies
    try:
        address = parse_runner(runner)
        device = LocalDevice() if address is None else RpcDevice(address, threads)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        replies.write(json.dumps({"fatal": f"{type(exc).__name__}: {exc}"[:500]}) + "\n")
        return
    replies.write(json.dumps({"ready": True, "threads": device.threads}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = time_library(device, Path(request["library"]), request["spec"],
                                 request["genome"], TimingPolicy(**request["policy"]))
        except Exception as exc:  # noqa: BLE001 - a failing program is a value
            lines = str(exc).strip().splitlines()
            reply = {"error": f"run: {type(exc).__name__}: {lines[-1] if lines else ''}"[:500]}
            if not device.alive():
                replies.write(json.dumps({**reply, "blame": "unclear"}) + "\n")
                return
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    # tvm_ffi imports torch when it can (seconds of start-up, never needed here)
    sys.modules.setdefault("torch", None)
    _threads = os.environ.get("TVM_NUM_THREADS")
    serve(sys.argv[1] if len(sys.argv) > 1 else None, int(_threads) if _threads else None)
