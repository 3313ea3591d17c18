"""NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021): the
log-determinant of the kernel of binary ReLU codes, and the ReLU recording it needs.

Reference: github BayesWatch/nas-without-training, `score_networks.py` (the hooks
`counting_forward_hook` / `counting_backward_hook` that build `network.K`) and `scores.py`
(`hooklogdet`: `np.linalg.slogdet(K)[1]`).

Every ReLU is recorded, not only `nn.ReLU` modules: the zoo's blocks call `F.relu` in
their `forward` (`evo.networks.resnet.BasicBlock`, `evo.networks.cifar_resnet.BasicBlockA`),
which module hooks cannot see. `record_relus` enters a `torch.overrides.TorchFunctionMode`
that sees every call of `F.relu`, `F.relu_`, `torch.relu`, `torch.relu_`, `Tensor.relu` and
`Tensor.relu_` made while it is active, in this thread; `nn.ReLU` calls `F.relu`, so it is
covered too. Inside the mode's handler the mode is switched off, so `F.relu` calling
`torch.relu` internally is recorded once. Other rectifiers (`nn.ReLU6`, `LeakyReLU`, GELU)
are not recorded; the reference hooks every module with "ReLU" in its type name.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

RELU_FUNCTIONS = frozenset({F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu,
                            torch.Tensor.relu_})


class _ReluRecorder(TorchFunctionMode):
    def __init__(self, record: Callable[[torch.Tensor], None]) -> None:
        super().__init__()
        self.record = record

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in RELU_FUNCTIONS and isinstance(out, torch.Tensor):
            self.record(out)
        return out


@contextmanager
def record_relus(record: Callable[[torch.Tensor], None]) -> Iterator[None]:
    """Call `record(output)` with the output of every ReLU computed in the block (in this
    thread): `nn.ReLU` modules and the functional and tensor-method relus alike."""
    with _ReluRecorder(record):
        yield


def naswot_kernel(module: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, int]:
    """The NASWOT kernel of a deep copy of `module` (in training mode) on the images `x`,
    and the number of ReLU units per image that went into it.

    With `c` the binary code (ReLU output > 0) of every ReLU output whose first dimension
    is the batch, flattened per image: `K = sum over ReLU calls of c c^T + (1-c)(1-c)^T`
    (float64), so `K[i, j]` counts the units on which images i and j agree and
    `K[i, i]` is the number of units. One forward pass without gradients; the reference
    records the second of two passes and skips ReLUs that no gradient reaches (none in
    the zoo networks), otherwise the same.
    """
    net = copy.deepcopy(module).train()
    n = x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)
    units = 0

    def add(out: torch.Tensor) -> None:
        nonlocal kernel, units
        if out.dim() == 0 or out.shape[0] != n:
            return
        codes = out.detach().reshape(n, -1) > 0
        # float32 products of 0/1 are exact while a sum has fewer than 2**24 terms
        dtype = torch.float32 if codes.shape[1] < 2 ** 24 else torch.float64
        on, off = codes.to(dtype), (~codes).to(dtype)
        kernel += (on @ on.T + off @ off.T).double()
        units += codes.shape[1]

    with torch.no_grad(), record_relus(add):
        net(x)
    return kernel.numpy(), units


def naswot(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """NASWOT score: `log|det K|` of `naswot_kernel(module, x)` (`np.linalg.slogdet`, as
    the reference's `hooklogdet`); -inf when K is singular (e.g. two identical images).
    `y` is unused. Reference: BayesWatch/nas-without-training, score_networks.py and
    scores.py."""
    del y
    kernel, _units = naswot_kernel(module, x)
    _sign, logdet = np.linalg.slogdet(kernel)
    return float(logdet)
