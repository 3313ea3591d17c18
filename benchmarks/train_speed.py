"""Training throughput (images per second) of `evo train`'s step, per speed option.

    .venv/bin/python -m benchmarks.train_speed [--models tiny,resnet20,...] [--steps N]
        [--threads 2] [--compile] [--out benchmarks/results/train-speed.json]

For each network it times the real training step (`evo.training.trainer.train_step`:
augmentation, scaling, forward, loss, backward, SGD update) on batches of 128 random
uint8 images, after warm-up steps, under these configurations, each adding one
change to the one before:

    before        the step as `evo train` ran it before: augmentation on float images,
                  float32, NCHW (the pre-speed-up pipeline)
    uint8         images stay uint8 through the augmentation, scaled per batch
    channels_last the module and its inputs in NHWC
    bf16          convs and matmuls under bfloat16 autocast (the default where the CPU
                  has native bfloat16)
    compile       torch.compile of the module (only with --compile; its compile time
                  is reported separately)

Networks: tiny, resnet20, resnet18 and `resnet20-dw` (resnet20 with depthwise on every
slot that allows it). Throughput depends on the machine and on what else runs: compare
rows of one run only. The CPU, its flags and the thread count are recorded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from evo.host import _cpu_model
from evo.networks import load_network, transform_network
from evo.training.augment import augment
from evo.training.data import TrainData
from evo.training.speed import StepOptions, native_bf16
from evo.training.trainer import train_step
from genomes.genome import NetworkGenome

MODELS = ("tiny", "resnet20", "resnet20-dw", "resnet18")
BATCH = 128


def network(name: str) -> torch.nn.Module:
    """A freshly initialised zoo network, or resnet20-dw (depthwise wherever it applies)."""
    base = load_network("resnet20" if name == "resnet20-dw" else name, (1, 3, 32, 32), seed=0)
    genome = NetworkGenome()
    if name == "resnet20-dw":
        layers = {}
        for slot in base.slots:
            trial = NetworkGenome.from_json({"schema": 1, "layers": {
                slot.id: [{"gene": "depthwise"}]}})
            if transform_network(base, trial, seed=0).error is None:
                layers[slot.id] = [{"gene": "depthwise"}]
        genome = NetworkGenome.from_json({"schema": 1, "layers": layers})
    transform = transform_network(base, genome, seed=0)
    assert transform.error is None, transform.error
    return transform.module


def _data(images: int) -> TrainData:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 10, (images,), generator=generator)
    mean = torch.tensor([0.49, 0.48, 0.45]).view(1, 3, 1, 1)
    std = torch.tensor([0.25, 0.24, 0.26]).view(1, 3, 1, 1)
    return TrainData(x, y, x[:BATCH], y[:BATCH], mean, std, "random uint8 images")


def measure(name: str, config: str, steps: int, warmup: int) -> dict:
    """Images per second of `steps` training steps of `name` under `config`."""
    options = {"before": StepOptions("fp32", False), "uint8": StepOptions("fp32", False),
               "channels_last": StepOptions("fp32", True), "bf16": StepOptions("bf16", True),
               "compile": StepOptions("bf16", True, compile=True)}[config]
    module = network(name)
    module.train()
    step_module = options.prepare(module)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9,
                                weight_decay=5e-4)
    data = _data(BATCH * 4)
    generator = torch.Generator().manual_seed(1)

    def one(i: int) -> None:
        index = torch.arange(BATCH) + (i % 4) * BATCH
        x = data.x_train[index]
        x = augment(x.float(), generator) / 255.0 if config == "before" else augment(
            x, generator)
        train_step(step_module, optimizer, data, x, data.y_train[index], options)

    started = time.perf_counter()
    for i in range(warmup):
        one(i)
    warm = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(steps):
        one(i)
    seconds = time.perf_counter() - started
    return {"model": name, "config": config, "steps": steps, "batch": BATCH,
            "images_per_second": steps * BATCH / seconds, "warmup_seconds": warm}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    configs = ["before", "uint8", "channels_last", "bf16"] + (["compile"] if args.compile
                                                              else [])
    rows = []
    print(f"{'model':12} {'config':14} {'images/s':>9} {'vs before':>9}", flush=True)
    for name in args.models.split(","):
        steps = max(2, args.steps // 4) if name == "resnet18" else args.steps
        for config in configs:
            row = measure(name, config, steps, args.warmup)
            base = next(r for r in rows + [row] if r["model"] == name)
            row["vs_before"] = row["images_per_second"] / base["images_per_second"]
            rows.append(row)
            print(f"{name:12} {config:14} {row['images_per_second']:9.0f} "
                  f"{row['vs_before']:8.2f}x", flush=True)
    result = {"cpu": _cpu_model(), "native_bf16": native_bf16(), "threads": args.threads,
              "torch": torch.__version__, "when": time.strftime("%Y-%m-%d %H:%M"),
              "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
