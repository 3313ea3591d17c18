"""Compile every conv (slot) of a transformed network with TVM into `DIR/tvm/`:

    <slot>.so       the compiled layer (lib.export_library), function `main`
    weights.npz     each slot's weights in the layout its function expects (+ bias)
    check.npz       each slot's input and PyTorch output on one seeded network input
    manifest.json   target, threads, and per slot: library, shapes, weight and bias keys

and `DIR/run_tvm.py`, a script that loads and runs them (numpy and TVM only).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evo.errors import UsageError
from evo.outputs import replacing, write_text
from genomes.plan import LayerPlan
from genomes.tvm_decoder import pack_weights

TEMPLATE = Path(__file__).with_name("run_tvm_template.py")
TVM_FILES = ["run_tvm.py"]  # in the export folder, besides its tvm/
TVM_DATA_FILES = ["weights.npz", "check.npz", "manifest.json"]  # in its tvm/


def library_names(plans: dict[str, LayerPlan]) -> list[str]:
    """The file name of each slot's compiled library, in order: its index and its id,
    any character but letters, digits, `.`, `_` and `-` made `_` (an id may hold `/`)."""
    return [f"{index:03d}_{re.sub(r'[^A-Za-z0-9._-]', '_', slot)}.so"
            for index, slot in enumerate(plans)]


def slot_io(module: nn.Module, slots: list[str], input_shape: tuple[int, ...],
            seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each slot's input and output when `module` (eval mode) runs on a seeded input."""
    captured: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    hooks = []
    for slot in slots:
        def hook(_m, inputs, output, slot=slot):
            captured[slot] = (inputs[0].detach().numpy().copy(),
                              output.detach().numpy().copy())
        hooks.append(module.get_submodule(slot).register_forward_hook(hook))
    generator = torch.Generator().manual_seed(seed)
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(torch.randn(input_shape, generator=generator))
    finally:
        module.train(was_training)
        for h in hooks:
            h.remove()
    return captured


def export_tvm(out: str | Path, module: nn.Module, plans: dict[str, LayerPlan],
               input_shape: tuple[int, ...], target, threads: int = 1) -> dict[str, Any]:
    """Compile each slot's plan into `out/tvm/` with the weights of `module`; returns
    the manifest (`threads`: run_tvm.py's default thread count). Raises UsageError if
    a slot does not compile."""
    from evo.target import target_key
    from evo.tvm_runtime import CompileError, compile_plan

    folder = Path(out) / "tvm"
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for library, (slot, plan) in zip(library_names(plans), plans.items(), strict=True):
        conv = module.get_submodule(slot)
        weights = [w.detach().numpy() for w in conv.weights()]
        keys = [f"{slot}/w{i}" for i in range(len(weights))]
        arrays.update(zip(keys, pack_weights(plan, weights), strict=True))
        bias = getattr(conv, "bias", None)
        if bias is not None:
            arrays[f"{slot}/bias"] = bias.detach().numpy()
        try:
            lib = compile_plan(plan, target)
        except CompileError as exc:
            raise UsageError(f"slot {slot} does not compile with TVM: {exc}") from None
        with replacing(folder / library) as temporary:
            lib.export_library(str(temporary))
        spec = plan.spec
        shape = [spec.batch, spec.in_channels, spec.height, spec.width]
        entries.append({"id": slot, "library": library, "input_shape": shape,
                        "output_shape": list(plan.out_shape), "weights": keys,
                        "bias": f"{slot}/bias" if bias is not None else None,
                        "pieces": len(plan.pieces)})
    with replacing(folder / "weights.npz") as temporary:
        np.savez(temporary, **arrays)
    check = {}
    for slot, (x, y) in slot_io(module, list(plans), input_shape).items():
        check[f"{slot}/input"], check[f"{slot}/output"] = x, y
    with replacing(folder / "check.npz") as temporary:
        np.savez(temporary, **check)
    manifest = {"target": target_key(target), "threads": threads, "slots": entries}
    write_text(folder / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    with replacing(Path(out) / "run_tvm.py") as temporary:
        shutil.copyfile(TEMPLATE, temporary)
    return manifest
