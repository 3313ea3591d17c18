"""Run this exported network, compiled by TVM as one module, on this machine.

Written by `evo export`; needs only numpy and TVM (apache-tvm 0.27), not evo or torch.
network.so is a Relax VM executable with the function `main(input) -> output`;
network.json gives the input's name, shape and dtype, the output's, and the thread
count of the run. The script runs sample_input.npy, prints the largest absolute
difference to expected_output.npy (PyTorch's output at export) and the median latency,
and exits 1 when the two disagree beyond the tolerance in network.json.

    python run_network.py                # with the run's thread count
    python run_network.py --threads 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def set_threads(tvm, threads: int) -> int:
    """Fix TVM's thread pool to `threads` (before anything runs); the count in use."""
    os.environ.setdefault("TVM_NUM_THREADS", str(threads))
    tvm.get_global_func("runtime.config_threadpool")(-3, threads,
                                                     [str(i) for i in range(threads)])
    return int(tvm.get_global_func("runtime.NumThreads")())


def main(argv: list[str] | None = None) -> int:
    info = json.loads((HERE / "network.json").read_text())
    parser = argparse.ArgumentParser(description="Run the exported network with TVM.")
    parser.add_argument("--threads", type=int, default=info["threads"],
                        help=f"runtime threads (default {info['threads']}, the run's)")
    parser.add_argument("--repeat", type=int, default=10, help="timing repeats (default 10)")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeat < 1:
        parser.error("--threads and --repeat must be positive")
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # read when the pool starts
    import tvm
    from tvm import relax

    threads = set_threads(tvm, args.threads)
    device = tvm.cpu()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(HERE / info["library"])), device)
    data = np.load(HERE / info["sample_input"], allow_pickle=False)
    expected = np.load(HERE / info["expected_output"], allow_pickle=False)
    spec = info["input"]
    if list(data.shape) != spec["shape"] or str(data.dtype) != spec["dtype"]:
        print(f"sample input is {data.dtype}{list(data.shape)}, the network takes "
              f"{spec['dtype']}{spec['shape']}", file=sys.stderr)
        return 2
    arg = tvm.runtime.tensor(np.ascontiguousarray(data), device)
    got = vm[info["function"]](arg).numpy()
    if got.shape != expected.shape:
        diff, ok = float("inf"), False
    else:
        diff = float(np.max(np.abs(got - expected), initial=0.0))
        ok = bool(np.allclose(got, expected, rtol=info["rtol"], atol=info["atol"]))
    timer = vm.time_evaluator(info["function"], device, number=1, repeat=args.repeat,
                              min_repeat_ms=50)
    median_ms = float(np.median(timer(arg).results) * 1e3)
    print(f"output {'x'.join(map(str, got.shape))}: max abs diff to PyTorch {diff:.3e} "
          f"({'match' if ok else 'MISMATCH'}, rtol {info['rtol']:g}, atol {info['atol']:g})")
    print(f"latency {median_ms:.4f} ms (median of {args.repeat}, {threads} threads)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
