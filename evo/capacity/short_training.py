"""A cheap trained baseline for the proxy study: a few SGD steps, then accuracy and loss."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def short_training(module: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor,
                   x_eval: torch.Tensor, y_eval: torch.Tensor, steps: int, lr: float = 0.1,
                   batch: int = 128, seed: int = 0) -> tuple[float, float, float]:
    """Train a deep copy of `module` for `steps` SGD steps, then return its (accuracy,
    mean cross-entropy) on (x_eval, y_eval) and the mean training loss over the steps
    (the sum-over-training-losses estimator of Ru et al., "Speedy Performance
    Estimation for Neural Architecture Search", NeurIPS 2021; NaN for 0 steps);
    `module` itself is not changed.

    SGD with momentum 0.9, weight decay 5e-4 (on every parameter) and the constant
    learning rate `lr`, cross-entropy loss, training mode. Minibatches of
    `min(batch, len(x_train))` images walk through permutations of the training set
    drawn from a generator seeded with `seed`, a new permutation when fewer than a batch
    remain (the rest is dropped). Torch's global generator is seeded with `seed` for the
    steps (dropout, if any) and restored afterwards. The inputs are used as given (already
    standardised, no augmentation). Evaluation is in eval mode (BatchNorm on the running
    statistics the steps accumulated), without gradients, in chunks of `batch`. The same
    arguments give the same result.
    """
    net = copy.deepcopy(module).train()
    for p in net.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(seed)
    n = x_train.shape[0]
    size = min(batch, n)
    order = torch.empty(0, dtype=torch.long)
    train_loss = 0.0
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        for _ in range(steps):
            if order.numel() < size:
                order = torch.randperm(n, generator=generator)
            index, order = order[:size], order[size:]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x_train[index]), y_train[index])
            loss.backward()
            optimizer.step()
            train_loss += float(loss.detach())
    net.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for start in range(0, x_eval.shape[0], batch):
            logits = net(x_eval[start:start + batch])
            target = y_eval[start:start + batch]
            correct += int((logits.argmax(dim=1) == target).sum())
            loss += float(F.cross_entropy(logits, target, reduction="sum"))
    count = x_eval.shape[0]
    return correct / count, loss / count, train_loss / steps if steps else float("nan")
