"""`train`: train the original or a transformed network and report its accuracy.

SGD with momentum and weight decay, a cosine learning rate (epoch e of E runs at
`lr * (1 + cos(pi * e / E)) / 2`), random-crop and flip augmentation. Accuracy is
measured after every epoch on the data's evaluation set (`TrainData.eval_name`: the
validation split of an `imagefolder:` source, the test set of the others).

After every epoch `OUT/checkpoint.pt` holds the model and optimizer (torch.save;
read back with weights_only=True), so the same command continues where a stopped
one left off. Each epoch's shuffle and augmentation come from a generator seeded by
(seed, epoch), so a resumed training makes the same draws as one never stopped.
Asking a training for more epochs than it has (finished or not) extends it: the
cosine schedule is re-planned over the new total from the epoch reached.

Steps run as `evo.training.speed` says: images stay uint8 until the augmented batch
is scaled, the module is channels-last, and `precision` bf16 runs convs under
bfloat16 autocast. The trained model is saved in the `evo export` layout with its
input normalisation, so `evo.load_model(OUT)` takes images scaled to [0, 1].
"""

from __future__ import annotations

import json
import math
import pickle
import time
import zipfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from evo.errors import UsageError
from evo.export.model_files import save_model
from evo.training.augment import augment
from evo.training.data import TrainData, load_train_data
from evo.training.speed import StepOptions, faster_precision, native_bf16
from genomes.genome import NetworkGenome

SETTINGS, CHECKPOINT, HISTORY = "train.json", "checkpoint.pt", "history.json"


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines the trained weights; a resume must match them
    (except `epochs`, which may grow)."""

    model: str
    genome: dict[str, Any]
    data: str
    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    augment: bool = True
    precision: str = "fp32"
    val_split: int = 5000
    split_seed: int = 0
    train_images: int = 0  # 0: all; else a class-balanced subset (`TrainData.training_subset`)

    def __post_init__(self) -> None:
        if not 1 <= self.epochs <= 100_000:
            raise UsageError("--epochs must be between 1 and 100000")
        if not 2 <= self.batch_size <= 1_000_000:
            raise UsageError("--batch-size must be at least 2")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError("--lr must be a positive number")
        if not 0 <= self.momentum < 1:
            raise UsageError("--momentum must be in [0, 1)")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise UsageError("--weight-decay must be a finite number >= 0")
        if not 0 <= self.seed < 2**63:
            raise UsageError("--seed must be an integer in [0, 2**63)")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UsageError(f"precision {self.precision!r}: auto, fp32 or bf16")
        if not 0 <= self.val_split <= 10_000_000:
            raise UsageError("--val-split must be >= 0")
        if not 0 <= self.split_seed < 2**63:
            raise UsageError("--split-seed must be an integer in [0, 2**63)")
        if not 0 <= self.train_images <= 10**9:
            raise UsageError("--train-images must be >= 0")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> dict[str, Any]:
        """A saved settings dict with the fields older versions did not write filled
        with the values those versions used."""
        defaults = {f.name: f.default for f in fields(cls) if f.name in
                    ("precision", "val_split", "split_seed",
                                                          "train_images")}
        return {**defaults, **saved}


def default_out(settings: TrainSettings) -> Path:
    """`runs/train-MODEL-GENOME-sSEED` (`-nN` added for `train_images` N), the same for
    the same command (so it resumes)."""
    name = settings.model.rsplit(":", 1)[-1] if ":" in settings.model else settings.model
    genome = NetworkGenome.from_json(settings.genome)
    tag = genome.hash()[:8] if genome.layers else "original"
    subset = f"-n{settings.train_images}" if settings.train_images else ""
    return Path("runs") / f"train-{name}-{tag}-s{settings.seed}{subset}"


def learning_rate(settings: TrainSettings, epoch: int) -> float:
    """The cosine schedule's rate for 0-based `epoch` of `settings.epochs`."""
    return settings.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / settings.epochs))


def train(settings: TrainSettings, out: str | Path, quiet: bool = False,
          resume_required: bool = False, options: StepOptions | None = None,
          data: TrainData | None = None) -> dict[str, Any]:
    """Train (or continue training) into `out`; returns the final history entry with
    `accuracy`, `evaluated_on` and `eval_images`. `data` may be given when already
    loaded (it must be what `settings.data` names). Precision "auto" becomes the saved
    training's, or the faster for this network (`evo.training.speed`); `options` give
    the layout and compilation, their precision is the settings'."""
    out = Path(out)
    state, saved_precision = _previous(out, settings, resume_required)
    data = data or load_train_data(settings.data, settings.val_split, settings.split_seed)
    data = data.training_subset(settings.train_images, settings.split_seed)
    module = _build(settings, data)
    if settings.precision == "auto":
        settings = replace(settings, precision=saved_precision or _auto_precision(
            module, data, settings.batch_size))
    options = replace(options or StepOptions(), precision=settings.precision)
    optimizer = torch.optim.SGD(module.parameters(), lr=settings.lr,
                                momentum=settings.momentum, weight_decay=settings.weight_decay)
    history: list[dict[str, Any]] = []
    if state is not None:
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = json.loads(state["history"])
    start = len(history)
    out.mkdir(parents=True, exist_ok=True)
    (out / SETTINGS).write_text(json.dumps(settings.to_json(), indent=2) + "\n")
    step_module = options.prepare(module)

    def say(text: str) -> None:
        print(text, flush=True) if quiet else tqdm.write(text)

    if data.note:
        say(data.note)
    if start:
        say(f"resuming {out} after epoch {start} of {settings.epochs}")
    steps = math.ceil(len(data.y_train) / settings.batch_size)
    bar = tqdm(total=settings.epochs * steps, initial=start * steps, unit="batch",
               disable=quiet, dynamic_ncols=True, desc="training")
    try:
        for epoch in range(start, settings.epochs):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(settings, epoch)
            entry = _epoch(step_module, module, optimizer, data, settings, options, epoch, bar)
            entry["accuracy"] = accuracy(module, data)
            history.append(entry)
            _checkpoint(out, module, optimizer, history)
            say(f"epoch {epoch + 1}/{settings.epochs}: loss {entry['loss']:.4f}, train "
                f"accuracy {entry['train_accuracy']:.4f}, {data.eval_kind} accuracy "
                f"{entry['accuracy']:.4f} ({entry['seconds']:.1f} s, "
                f"{entry['images_per_second']:.0f} images/s)")
    except KeyboardInterrupt:
        bar.close()
        print(f"stopped; run the same command to continue from epoch "
              f"{len(history)} (checkpoint in {out})", flush=True)
        raise
    bar.close()
    final = {**history[-1], "evaluated_on": data.eval_name, "eval_kind": data.eval_kind,
             "eval_images": len(data.y_test)}
    save_model(out, settings.model, (1, *data.sample_shape), settings.seed,
               NetworkGenome.from_json(settings.genome), module,
               {"normalisation": data.normalisation(),
                "trained": {"epochs": settings.epochs, "data": settings.data,
                            "precision": settings.precision,
                            "evaluated_on": data.eval_name,
                            "accuracy": final["accuracy"]}})
    return final


def accuracy(module: nn.Module, data: TrainData, batch: int = 500) -> float:
    """Top-1 accuracy on the evaluation set (eval mode, float32, no augmentation)."""
    module.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(data.y_test), batch):
            x = data.standardise(data.scale(data.x_test[i:i + batch]))
            correct += int((module(x).argmax(1) == data.y_test[i:i + batch]).sum())
    return correct / max(1, len(data.y_test))


def _epoch(step_module: nn.Module, module: nn.Module, optimizer: torch.optim.Optimizer,
           data: TrainData, settings: TrainSettings, options: StepOptions, epoch: int,
           bar: tqdm) -> dict[str, Any]:
    started = time.monotonic()
    generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
    order = torch.randperm(len(data.y_train), generator=generator)
    module.train()
    total_loss = torch.zeros((), dtype=torch.float64)
    correct = torch.zeros((), dtype=torch.int64)
    seen = 0
    for i in range(0, len(order), settings.batch_size):
        index = order[i:i + settings.batch_size]
        x = data.x_train[index]
        if settings.augment:
            x = augment(x, generator)
        y = data.y_train[index]
        loss, logits = train_step(step_module, optimizer, data, x, y, options)
        with torch.no_grad():
            total_loss += loss.double() * len(y)
            correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        bar.update(1)
        if bar.n % 20 == 0:
            bar.set_postfix_str(f"epoch {epoch + 1} loss {float(total_loss) / seen:.3f} "
                                f"acc {int(correct) / seen:.3f}")
    seconds = time.monotonic() - started
    return {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
            "loss": float(total_loss) / seen, "train_accuracy": int(correct) / seen,
            "seconds": seconds, "images_per_second": seen / seconds}


def train_step(step_module: nn.Module, optimizer: torch.optim.Optimizer, data: TrainData,
               x: torch.Tensor, y: torch.Tensor,
               options: StepOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on the (augmented, still uint8) batch `x`: scale, standardise, the
    forward under `options`' autocast, a float32 loss, backward, update. Returns the
    detached loss and the logits."""
    with options.autocast():
        logits = step_module(options.inputs(data.standardise(data.scale(x))))
    loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach()


def _auto_precision(module: nn.Module, data: TrainData, batch: int) -> str:
    """bf16 where the CPU has native bfloat16 and it trains this network faster."""
    if not native_bf16():
        return "fp32"
    classes = int(torch.cat([data.y_train, data.y_test]).max()) + 1
    choice, _ = faster_precision(module, data.sample_shape, max(classes, 2), batch)
    return choice


def _build(settings: TrainSettings, data: TrainData) -> nn.Module:
    from evo.networks import load_network, transform_network

    network = load_network(settings.model, (1, *data.sample_shape), seed=settings.seed)
    classes = network.output_shape[-1] if network.output_shape else None
    labels = torch.cat([data.y_train, data.y_test])
    if classes is not None and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise UsageError(f"--data {settings.data}: labels {int(labels.min())}.."
                         f"{int(labels.max())} do not fit a model with {classes} outputs")
    genome = NetworkGenome.from_json(settings.genome)
    transform = transform_network(network, genome, seed=settings.seed)
    if transform.error is not None:
        raise UsageError(f"--genome does not apply to {settings.model}: {transform.error}")
    return transform.module


def _previous(out: Path, settings: TrainSettings,
              resume_required: bool) -> tuple[dict[str, Any] | None, str | None]:
    """The checkpoint to continue from (None: start afresh), after checking it belongs
    to these settings, and the saved training's precision (None: no saved training).
    Precision "auto" matches any saved precision; `epochs` may grow."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    path = out / SETTINGS
    if not path.exists():
        if resume_required:
            raise UsageError(f"--resume: {out} holds no training to resume")
        if out.exists() and any(out.iterdir()):
            raise UsageError(f"--out {out}: not empty and not a training folder")
        return None, None
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: unreadable ({type(exc).__name__})") from None
    if not isinstance(saved, dict):
        raise UsageError(f"{path}: not a training settings file")
    saved = TrainSettings.from_saved(saved)
    mine = settings.to_json()
    ignored = {"epochs"} | ({"precision"} if settings.precision == "auto" else set())
    differ = sorted(k for k in set(mine) | set(saved)
                    if mine.get(k) != saved.get(k) and k not in ignored)
    if differ:
        raise UsageError(f"{out} holds a training with other settings ({', '.join(differ)}); "
                         f"use the same options to continue it, or another --out")
    if not (out / CHECKPOINT).exists():
        if resume_required:
            raise UsageError(f"--resume: {out} has no checkpoint yet (no epoch finished)")
        return None, saved.get("precision")
    state = load_checkpoint(out / CHECKPOINT)
    done = len(json.loads(state["history"]))
    if settings.epochs < done:
        raise UsageError(f"{out} has trained {done} epochs already; --epochs {settings.epochs} "
                         f"cannot shorten it (ask for {done} or more)")
    return state, saved.get("precision")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `_checkpoint`, read with weights_only=True."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError,
            ValueError) as exc:
        raise UsageError(f"{path}: not a checkpoint evo can read safely "
                         f"({type(exc).__name__})") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "history"} <= set(state):
        raise UsageError(f"{path}: not an evo training checkpoint")
    try:
        history = json.loads(state["history"])
        if not isinstance(history, list):
            raise ValueError
    except (TypeError, ValueError):
        raise UsageError(f"{path}: its history is damaged") from None
    return state


def _checkpoint(out: Path, module: nn.Module, optimizer: torch.optim.Optimizer,
                history: list[dict[str, Any]]) -> None:
    state = {"epoch": len(history), "model": module.state_dict(),
             "optimizer": optimizer.state_dict(), "history": json.dumps(history)}
    partial = out / (CHECKPOINT + ".partial")
    torch.save(state, partial)
    partial.replace(out / CHECKPOINT)
    (out / HISTORY).write_text(json.dumps(history, indent=2) + "\n")
