"""The whole transformed network in deployable forms, usable without this project:

    network.so           one TVM module (Relax VM executable, `main(input) -> output`),
                         built as `evo bench` builds it (`to_relax` + `compile_network`)
    network.json         how to call it: input/output name, shape, dtype; target, threads,
                         tolerance
    run_network.py       runs network.so on the sample with only tvm and numpy
    network.pt2          `torch.export.export` of the module (`torch.export.load`)
    network.onnx         `torch.onnx.export`, opset 17, legacy exporter (as `evo bench`)
    sample_input.npy     one seeded input; expected_output.npy: PyTorch's output for it
    README.md            how to run each of the three

Each artefact is written whole under a temporary name (`evo.outputs`); one that fails
is reported as a one-line error and any older copy of it removed, so the folder never
mixes artefacts of two exports.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from evo.outputs import replacing, write_text
from genomes.plan import LayerPlan

TEMPLATE = Path(__file__).with_name("run_network_template.py")
SAMPLE, EXPECTED = "sample_input.npy", "expected_output.npy"
TVM_ARTEFACT = ["network.so", "network.json", "run_network.py"]
NETWORK_FILES = [*TVM_ARTEFACT, "network.pt2", "network.onnx", SAMPLE, EXPECTED, "README.md"]


def export_network(out: str | Path, module: nn.Module, input_shape: tuple[int, ...],
                   plans: dict[str, LayerPlan], target, threads: int,
                   seed: int = 0) -> dict[str, str | None]:
    """Write the files above into `out` (`target` None: no TVM module); returns each
    artefact ("tvm", "torch.export", "onnx") with None when written, else why not."""
    from evo.bench.compile import torch_reference

    out = Path(out)
    data, expected = torch_reference(module, input_shape, seed)
    for name, array in ((SAMPLE, data), (EXPECTED, expected)):
        with replacing(out / name) as temporary:
            np.save(temporary, array, allow_pickle=False)
    makers: dict[str, tuple[list[str], Callable[[], None]]] = {
        "torch.export": (["network.pt2"], lambda: _torch_export(out, module, data)),
        "onnx": (["network.onnx"], lambda: _onnx(out, module, data))}
    if target is not None:
        makers = {"tvm": (TVM_ARTEFACT, lambda: _tvm(out, module, input_shape, plans, target,
                                                     threads, expected.shape)), **makers}
    else:  # an older export's TVM module would not match this network
        for name in TVM_ARTEFACT:
            (out / name).unlink(missing_ok=True)
    status: dict[str, str | None] = {}
    for what, (files, make) in makers.items():
        try:
            make()
            status[what] = None
        except Exception as exc:  # noqa: BLE001 - exporters and TVM raise many types
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            status[what] = f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:300]
            for name in files:
                (out / name).unlink(missing_ok=True)
    write_text(out / "README.md", readme(status))
    return status


def _tvm(out: Path, module: nn.Module, input_shape: tuple[int, ...],
         plans: dict[str, LayerPlan], target, threads: int,
         output_shape: tuple[int, ...]) -> None:
    """network.so, then network.json and run_network.py, which describe it."""
    from evo.bench.compile import ATOL, RTOL, compile_network
    from evo.bench.relax_import import to_relax
    from evo.target import target_key

    executable = compile_network(to_relax(module, input_shape, plans=plans), target)
    with replacing(out / "network.so") as temporary:
        executable.export_library(str(temporary))
    info = {"library": "network.so", "function": "main", "target": target_key(target),
            "threads": threads, "input": {"name": "input", "shape": list(input_shape),
                                          "dtype": "float32"},
            "output": {"shape": list(output_shape), "dtype": "float32"},
            "sample_input": SAMPLE, "expected_output": EXPECTED, "rtol": RTOL, "atol": ATOL}
    write_text(out / "network.json", json.dumps(info, indent=2) + "\n")
    with replacing(out / "run_network.py") as temporary:
        shutil.copyfile(TEMPLATE, temporary)


def _torch_export(out: Path, module: nn.Module, data: np.ndarray) -> None:
    """network.pt2: the module in eval mode exported for the sample's shape."""
    training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(module, (torch.from_numpy(data),))
    finally:
        module.train(training)
    with replacing(out / "network.pt2") as temporary:
        torch.export.save(program, temporary)


def _onnx(out: Path, module: nn.Module, data: np.ndarray) -> None:
    """network.onnx, as `evo bench`'s onnxruntime peer exports it (input "input")."""
    from evo.bench.peers import onnx_export

    model = onnx_export(module, data)
    with replacing(out / "network.onnx") as temporary:
        temporary.write_bytes(model)


def readme(status: dict[str, str | None]) -> str:
    """The export folder's README.md: what each file is and how to run what was written."""
    parts = ["# Exported network\n\nWritten by `evo export`. `sample_input.npy` is one "
             "input, `expected_output.npy` PyTorch's output for it (`numpy.load`).\n"]
    if "tvm" in status:
        parts.append("## TVM (only `tvm` and `numpy` needed)\n\n" + (
            "`network.so` is the whole network compiled as one module (Relax VM "
            "executable, `main(input) -> output`; `network.json` gives shapes, dtype, "
            "target and threads):\n\n```\npython run_network.py [--threads N]\n```\n\n"
            "It prints the max abs difference to `expected_output.npy` and the median "
            "latency, and exits 1 when they disagree. In your own code:\n\n```python\n"
            "import numpy as np, tvm\nfrom tvm import relax\n"
            "vm = relax.VirtualMachine(tvm.runtime.load_module('network.so'), tvm.cpu())\n"
            "x = tvm.runtime.tensor(np.load('sample_input.npy'), tvm.cpu())\n"
            "y = vm['main'](x).numpy()\n```\n"
            if status["tvm"] is None else f"Not written: {status['tvm']}\n"))
    parts.append("## torch.export (`network.pt2`, needs only `torch`)\n\n" + (
        "```python\nimport numpy as np, torch\n"
        "program = torch.export.load('network.pt2')\n"
        "y = program.module()(torch.from_numpy(np.load('sample_input.npy')))\n```\n"
        if status["torch.export"] is None else f"Not written: {status['torch.export']}\n"))
    parts.append("## ONNX (`network.onnx`, opset 17, input `input`)\n\n" + (
        "```python\nimport numpy as np, onnxruntime as ort\n"
        "session = ort.InferenceSession('network.onnx', providers=['CPUExecutionProvider'])\n"
        "y = session.run(None, {'input': np.load('sample_input.npy')})[0]\n```\n"
        if status["onnx"] is None else f"Not written: {status['onnx']}\n"))
    parts.append("The PyTorch model with its weights (needs evo): "
                 "`evo.load_model('.')`; `run_tvm.py` runs each conv alone (if exported).\n")
    return "\n".join(parts)
