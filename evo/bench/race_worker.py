"""One contender of `evo.bench.head_to_head`, in a process of its own:

    python -m evo.bench.race_worker KIND FILE N,C,H,W THREADS SEED

KIND is `tvm` (FILE: a .so that `evo bench` exported), `onnxruntime` or `openvino`
(FILE: an ONNX model that `evo bench` exported); never a file from a user. The worker
loads the network, runs it once, prints `ready`, then answers each `go` line on stdin
with one line on stdout: the mean milliseconds per inference over a window of
WINDOW_S seconds (after one warm-up inference), sent once the process has gone idle
(`_settle`); `quit` or the end of stdin ends it. A
failure to load prints one line on stderr and exits 1.
"""

from __future__ import annotations

import os
import sys
import time

WINDOW_S = 0.25
WINDOW_VARIABLE = "EVO_RACE_WINDOW_S"  # the parent sets it
SETTLE_LIMIT_S = 2.0


def main(argv: list[str]) -> int:
    kind, path, shape, threads, seed = argv
    os.environ["TVM_NUM_THREADS"] = threads  # before TVM's thread pool starts
    # the protocol has stdout to itself: whatever a runtime prints goes to stderr
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        infer = _load(kind, path, int(threads))
        import numpy as np

        input_shape = tuple(int(n) for n in shape.split(","))
        data = np.random.default_rng(int(seed)).standard_normal(input_shape).astype("float32")
        run = infer(data)
        run()
    except Exception as exc:  # noqa: BLE001 - one line for the parent, whatever failed
        from evo.bench.peers import last_line

        print(f"{kind}: {last_line(exc)}", file=sys.stderr)
        return 1
    window = float(os.environ.get(WINDOW_VARIABLE, WINDOW_S))
    print("ready", file=answers, flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        run()  # warm-up
        count, start = 0, time.perf_counter()
        while True:
            run()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= window:
                break
        _settle()
        print(f"{elapsed / count * 1e3:.6f}", file=answers, flush=True)
    return 0


def _settle(limit_s: float = SETTLE_LIMIT_S) -> None:
    """Wait until this process uses no CPU: after its last task TVM's thread pool spins
    for about 0.2 s (resnet20, 2 threads: a whole core for 170 ms), which would slow
    the next contender down by up to 2x."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        used = time.process_time()
        time.sleep(0.02)
        if time.process_time() - used < 0.002:
            return


def _load(kind: str, path: str, threads: int):
    """`infer(data) -> run`: `run()` runs one inference on `data`, bound once."""
    if kind == "tvm":
        import tvm
        from tvm import relax

        from evo.bench.timing import set_tvm_threads

        set_tvm_threads(threads)
        vm = relax.VirtualMachine(tvm.runtime.load_module(path), tvm.cpu())
        main = vm["main"]

        def bind_tvm(data):
            arg = tvm.runtime.tensor(data, tvm.cpu())
            return lambda: main(arg)

        return bind_tvm
    from pathlib import Path

    from evo.bench.peers import ONNX_PEERS

    build = ONNX_PEERS.get(kind)
    if build is None:
        raise ValueError(f"unknown kind {kind!r}")
    built = build(Path(path).read_bytes(), threads)
    return lambda data: (lambda: built.infer(data))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
