"""Run this exported network's convolutions, compiled by TVM, on this machine.

Written by `evo export`; needs only numpy and TVM (apache-tvm 0.27). Each conv
layer (slot) is one library in tvm/ with the function `main(data, w0, .., output)`;
tvm/weights.npz holds its weights already laid out for it, tvm/manifest.json the
shapes. Bias (if the conv has one) is added after the call.

    python run_tvm.py            # every conv on a random input: output shape, time, total
    python run_tvm.py --threads 4  # (default: the run's thread count, tvm/manifest.json)
    python run_tvm.py --check    # every conv on the input saved at export, compared with
                                 # the output PyTorch gave (exit 1 on a mismatch)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import tvm

HERE = Path(__file__).resolve().parent / "tvm"


def load_slots(folder: Path = HERE) -> list[dict]:
    """The manifest's slots, each with its loaded library and weight arrays."""
    manifest = json.loads((folder / "manifest.json").read_text())
    with np.load(folder / "weights.npz", allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    slots = []
    for slot in manifest["slots"]:
        slots.append({**slot, "module": tvm.runtime.load_module(str(folder / slot["library"])),
                      "weight_arrays": [arrays[k] for k in slot["weights"]],
                      "bias_array": arrays[slot["bias"]] if slot["bias"] else None})
    return slots


def set_threads(threads: int) -> int:
    """Fix TVM's thread pool to `threads` (call before running anything); the count."""
    os.environ.setdefault("TVM_NUM_THREADS", str(threads))
    tvm.get_global_func("runtime.config_threadpool")(-3, threads,
                                                     [str(i) for i in range(threads)])
    return int(tvm.get_global_func("runtime.NumThreads")())


def _arguments(slot: dict, x: np.ndarray, device) -> list:
    arrays = [x, *slot["weight_arrays"], np.zeros(slot["output_shape"], dtype="float32")]
    return [tvm.runtime.tensor(np.ascontiguousarray(a, dtype="float32"), device) for a in arrays]


def run_slot(slot: dict, x: np.ndarray) -> np.ndarray:
    """The conv's output for input `x` (shape `slot["input_shape"]`)."""
    args = _arguments(slot, x, tvm.cpu())
    slot["module"]["main"](*args)
    out = args[-1].numpy()
    if slot["bias_array"] is not None:
        out = out + slot["bias_array"].reshape(1, -1, 1, 1)
    return out


def time_slot(slot: dict, x: np.ndarray, repeat: int = 5) -> float:
    """Median milliseconds of one call."""
    device = tvm.cpu()
    timer = slot["module"].time_evaluator("main", device, number=10, repeat=repeat,
                                          min_repeat_ms=50)
    return float(np.median(timer(*_arguments(slot, x, device)).results) * 1e3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the exported convolutions with TVM.")
    parser.add_argument("--check", action="store_true",
                        help="compare each conv's output with PyTorch's, saved at export")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (default 5)")
    default = json.loads((HERE / "manifest.json").read_text()).get("threads", 1)
    parser.add_argument("--threads", type=int, default=default,
                        help=f"runtime threads (default {default}, the run's)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be positive")
    os.environ["TVM_NUM_THREADS"] = str(args.threads)
    threads = set_threads(args.threads)
    slots = load_slots()
    rng = np.random.default_rng(0)
    if args.check:
        with np.load(HERE / "check.npz", allow_pickle=False) as check:
            expected = {k: check[k] for k in check.files}
    worst = total = 0.0
    for slot in slots:
        if args.check:
            out = run_slot(slot, expected[f"{slot['id']}/input"])
            want = expected[f"{slot['id']}/output"]
            error = float(np.max(np.abs(out - want)) / (np.max(np.abs(want)) + 1e-12))
            worst = max(worst, error)
            print(f"{slot['id']:<32} {'x'.join(map(str, out.shape)):<16} "
                  f"relative error {error:.2e}")
        else:
            x = rng.standard_normal(slot["input_shape"]).astype("float32")
            out = run_slot(slot, x)
            ms = time_slot(slot, x, args.repeat)
            total += ms
            print(f"{slot['id']:<32} {'x'.join(map(str, out.shape)):<16} {ms:.4f} ms")
    if args.check:
        ok = worst < 1e-4
        print(f"{len(slots)} convs checked against PyTorch: "
              f"{'match' if ok else 'MISMATCH'} (worst relative error {worst:.2e})")
        return 0 if ok else 1
    print(f"{'total':<32} {len(slots):<16} {total:.4f} ms ({threads} threads; the convs "
          f"alone, see run_network.py for the whole network)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
