"""`train`: train the original or a transformed network and report test accuracy.

SGD with momentum and weight decay, a cosine learning-rate schedule over the epochs,
random-crop and flip augmentation. After every epoch `OUT/checkpoint.pt` holds the
model, optimizer and schedule (torch.save; read back with weights_only=True), so
the same command continues where a stopped one left off. Each epoch's shuffle and
augmentation come from a generator seeded by (seed, epoch), so a resumed training
makes the same draws as one that was never stopped. The trained model is saved in
the `evo export` layout, so `evo.load_model(OUT)` returns it.
"""

from __future__ import annotations

import json
import math
import pickle
import time
import zipfile
from dataclasses import asdict, dataclass
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
from genomes.genome import NetworkGenome

SETTINGS, CHECKPOINT, HISTORY = "train.json", "checkpoint.pt", "history.json"


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines the trained weights; a resume must match them."""

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

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UsageError("--epochs must be at least 1")
        if self.batch_size < 2:
            raise UsageError("--batch-size must be at least 2")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError("--lr must be a positive number")
        if not 0 <= self.momentum < 1:
            raise UsageError("--momentum must be in [0, 1)")
        if self.weight_decay < 0:
            raise UsageError("--weight-decay must be >= 0")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def default_out(settings: TrainSettings) -> Path:
    """`runs/train-MODEL-GENOME-sSEED`, the same for the same command (so it resumes)."""
    name = settings.model.rsplit(":", 1)[-1] if ":" in settings.model else settings.model
    genome = NetworkGenome.from_json(settings.genome)
    tag = genome.hash()[:8] if genome.layers else "original"
    return Path("runs") / f"train-{name}-{tag}-s{settings.seed}"


def train(settings: TrainSettings, out: str | Path, quiet: bool = False,
          resume_required: bool = False) -> dict[str, Any]:
    """Train (or continue training) into `out`; returns the final history entry."""
    out = Path(out)
    state = _previous(out, settings, resume_required)
    data = load_train_data(settings.data)
    module = _build(settings, data)
    optimizer = torch.optim.SGD(module.parameters(), lr=settings.lr,
                                momentum=settings.momentum, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    history: list[dict[str, Any]] = []
    start = 0
    if state is not None:
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        history = json.loads(state["history"])
        start = int(state["epoch"])
    out.mkdir(parents=True, exist_ok=True)
    (out / SETTINGS).write_text(json.dumps(settings.to_json(), indent=2) + "\n")
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
            entry = _epoch(module, optimizer, data, settings, epoch, bar)
            schedule.step()
            entry["test_accuracy"] = accuracy(module, data)
            history.append(entry)
            _checkpoint(out, epoch + 1, module, optimizer, schedule, history)
            line = (f"epoch {epoch + 1}/{settings.epochs}: loss {entry['loss']:.4f}, train "
                    f"accuracy {entry['train_accuracy']:.4f}, test accuracy "
                    f"{entry['test_accuracy']:.4f} ({entry['seconds']:.1f} s)")
            if quiet:
                print(line, flush=True)
            else:
                bar.write(line)
    except KeyboardInterrupt:
        bar.close()
        print(f"stopped; run the same command to continue from epoch "
              f"{len(history)} (checkpoint in {out})", flush=True)
        raise
    bar.close()
    final = dict(history[-1])
    final["test_images"] = len(data.y_test)
    save_model(out, settings.model, (1, *data.sample_shape), settings.seed,
               NetworkGenome.from_json(settings.genome), module,
               {"trained": {"epochs": settings.epochs, "data": settings.data,
                            "test_accuracy": final["test_accuracy"]}})
    return final


def accuracy(module: nn.Module, data: TrainData, batch: int = 500) -> float:
    """Top-1 accuracy on the test set (eval mode, no augmentation)."""
    module.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(data.y_test), batch):
            x = data.standardise(data.scale(data.x_test[i:i + batch]))
            correct += int((module(x).argmax(1) == data.y_test[i:i + batch]).sum())
    return correct / max(1, len(data.y_test))


def _epoch(module: nn.Module, optimizer: torch.optim.Optimizer, data: TrainData,
           settings: TrainSettings, epoch: int, bar: tqdm) -> dict[str, Any]:
    started = time.monotonic()
    generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
    order = torch.randperm(len(data.y_train), generator=generator)
    lr = optimizer.param_groups[0]["lr"]
    module.train()
    total_loss, correct, seen = 0.0, 0, 0
    for i in range(0, len(order), settings.batch_size):
        index = order[i:i + settings.batch_size]
        x = data.scale(data.x_train[index])
        if settings.augment:
            x = augment(x, generator)
        y = data.y_train[index]
        logits = module(data.standardise(x))
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        bar.update(1)
        bar.set_postfix_str(f"epoch {epoch + 1} loss {total_loss / seen:.3f} "
                            f"acc {correct / seen:.3f}")
    return {"epoch": epoch + 1, "lr": lr, "loss": total_loss / seen,
            "train_accuracy": correct / seen, "seconds": time.monotonic() - started}


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
              resume_required: bool) -> dict[str, Any] | None:
    """The checkpoint to continue from, after checking it belongs to these settings."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    path = out / SETTINGS
    if not path.exists():
        if resume_required:
            raise UsageError(f"--resume: {out} holds no training to resume")
        if out.exists() and any(out.iterdir()):
            raise UsageError(f"--out {out}: not empty and not a training folder")
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: unreadable ({type(exc).__name__})") from None
    mine = settings.to_json()
    if not isinstance(saved, dict):
        raise UsageError(f"{path}: not a training settings file")
    differ = sorted(k for k in set(mine) | set(saved) if mine.get(k) != saved.get(k))
    if differ:
        raise UsageError(f"{out} holds a training with other settings ({', '.join(differ)}); "
                         f"use the same options to continue it, or another --out")
    if not (out / CHECKPOINT).exists():
        if resume_required:
            raise UsageError(f"--resume: {out} has no checkpoint yet (no epoch finished)")
        return None
    return load_checkpoint(out / CHECKPOINT)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `_checkpoint`, read with weights_only=True."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError,
            ValueError) as exc:
        raise UsageError(f"{path}: not a checkpoint evo can read safely "
                         f"({type(exc).__name__})") from None
    if not isinstance(state, dict) or not {"epoch", "model", "optimizer", "scheduler",
                                           "history"} <= set(state):
        raise UsageError(f"{path}: not an evo training checkpoint")
    return state


def _checkpoint(out: Path, epoch: int, module: nn.Module, optimizer: torch.optim.Optimizer,
                schedule, history: list[dict[str, Any]]) -> None:
    state = {"epoch": epoch, "model": module.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": schedule.state_dict(), "history": json.dumps(history)}
    partial = out / (CHECKPOINT + ".partial")
    torch.save(state, partial)
    partial.replace(out / CHECKPOINT)
    (out / HISTORY).write_text(json.dumps(history, indent=2) + "\n")

