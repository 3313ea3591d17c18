"""Time one exported network in a process of its own, for
`evo.bench.timing.time_across_processes`:

    python -m evo.bench.timing_child LIBRARY N,C,H,W THREADS SEED

LIBRARY is the .so that function just exported (never a file from a user). Prints the
`Latency` as one JSON line on stdout.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    library, shape, threads, seed = argv
    os.environ["TVM_NUM_THREADS"] = threads  # before TVM's thread pool starts
    import tvm
    from tvm import relax

    from evo.bench.timing import time_vm

    vm = relax.VirtualMachine(tvm.runtime.load_module(library), tvm.cpu())
    input_shape = tuple(int(n) for n in shape.split(","))
    latency = time_vm(vm, input_shape, int(threads), seed=int(seed))
    print(json.dumps(latency.to_json()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
