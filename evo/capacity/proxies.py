"""Zero-cost proxies, to compare with the Fisher Potential (`evo.capacity.fisher`).

    module = transform_network(network, genome, seed=0).module
    x, y = load_batch(parse_data("synthetic"), network.input_shape[1:], 64, 10, seed=0)
    synflow(module, x, y); snip(module, x, y); naswot(module, x, y)
    all_proxies(lambda: transform_network(network, genome, seed=0).module, x, y)

Each proxy is `(module, x, y) -> float` for a freshly initialised network and one
minibatch (images `x`, integer labels `y`), and works on a deep copy of `module` in
training mode with every parameter requiring grad, so the caller's module (its
parameters, BatchNorm statistics, modes and `requires_grad` flags) is left as it was.
"Weights" are those of every `nn.Conv2d` (including the pieces of a transformed conv) and
`nn.Linear`, as the reference's `get_layer_metric_array`; sums are taken in float64.

They follow the reference code of Abdelfattah et al., "Zero-Cost Proxies for Lightweight
NAS", ICLR 2021 (github SamsungLabs/zero-cost-nas, `foresight/pruners/measures/*.py`,
summed as `foresight/pruners/predictive.py` `find_measures` does) and, for `naswot`,
Mellor et al., ICML 2021 (github BayesWatch/nas-without-training; `evo.capacity.naswot`).
Also here: `short_training` (`evo.capacity.short_training`), `params` and `flops`
(`evo.capacity.counts`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from evo.capacity.counts import flops, params
from evo.capacity.naswot import naswot, naswot_kernel, record_relus
from evo.capacity.short_training import short_training
from evo.networks.threads import torch_threads

__all__ = ["ZERO_COST", "all_proxies", "flops", "grad_norm", "jacob_cov", "naswot",
           "naswot_kernel", "params", "record_relus", "short_training", "snip", "synflow"]


def _copy(module: nn.Module) -> nn.Module:
    net = copy.deepcopy(module).train()
    for p in net.parameters():
        p.requires_grad_(True)
    return net


def _weight_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def synflow(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SynFlow: `sum over weights of |w * dR/dw|`, where R is the sum of the outputs of the
    network with every parameter and buffer made absolute, BatchNorm switched off (its
    forward replaced by the identity: the reference's `synflow` measure, registered with
    `bn=False`), in float64, on one all-ones image of x's shape. `y` is unused.

    Reference: SamsungLabs/zero-cost-nas, foresight/pruners/measures/synflow.py
    (`compute_synflow_per_weight`), the BatchNorm no-op from
    foresight/pruners/predictive.py (`copynet`). The signs are not restored: the copy
    is discarded.
    """
    del y
    net = _copy(module)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.forward = _identity
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.abs_()
    net.double()
    layers = _weight_layers(net)
    with torch.enable_grad():
        out = net(torch.ones((1, *x.shape[1:]), dtype=torch.float64))
        grads = torch.autograd.grad(out.sum(), [m.weight for m in layers], allow_unused=True)
    return sum(float((m.weight.detach() * g).abs().sum())
               for m, g in zip(layers, grads, strict=True) if g is not None)


def _loss_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, dL/dweight) of every conv/linear layer that the mean cross-entropy reaches."""
    layers = _weight_layers(net)
    with torch.enable_grad():
        loss = F.cross_entropy(net(x), y)
        grads = torch.autograd.grad(loss, [m.weight for m in layers], allow_unused=True)
    return [(m.weight.detach(), g) for m, g in zip(layers, grads, strict=True) if g is not None]


def snip(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SNIP: `sum over weights of |w * dL/dw|`, L the mean cross-entropy on (x, y) in
    training mode (BatchNorm on the batch's statistics).

    Reference: SamsungLabs/zero-cost-nas, foresight/pruners/measures/snip.py
    (`compute_snip_per_weight`): it multiplies each weight by a mask of ones and takes
    |dL/dmask|, which is |w * dL/dw|; computed here directly.
    """
    net = _copy(module)
    return sum(float((w * g).double().abs().sum()) for w, g in _loss_grads(net, x, y))


def grad_norm(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Grad-norm: `sum over conv/linear layers of ||dL/dw||_2`, L the mean cross-entropy on
    (x, y) in training mode (BatchNorm on the batch's statistics).

    Reference: SamsungLabs/zero-cost-nas, foresight/pruners/measures/grad_norm.py
    (`get_grad_norm_arr`).
    """
    net = _copy(module)
    return sum(float(g.double().norm()) for _w, g in _loss_grads(net, x, y))


def jacob_cov(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Jacobian covariance (NASWOT v1): with J the gradient of the sum of the outputs with
    respect to each input image (flattened, one row per image) in training mode, C the
    correlation matrix of its rows (`np.corrcoef`) and v its eigenvalues,
    `-sum(log(v + 1e-5) + 1 / (v + 1e-5))`. NaN when C has undefined entries (an image
    whose Jacobian is constant), as the reference's NaN on an exception. `y` is unused.

    Reference: SamsungLabs/zero-cost-nas, foresight/pruners/measures/jacob_cov.py
    (`compute_jacob_cov`, `eval_score`). The eigenvalues come from `np.linalg.eigvalsh`
    (C is symmetric) rather than `np.linalg.eig`: the same values up to rounding, and
    always real.
    """
    del y
    net = _copy(module)
    inputs = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = net(inputs)
        (jacobian,) = torch.autograd.grad(out, inputs, torch.ones_like(out))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(jacobian.reshape(x.shape[0], -1).double().numpy())
    if not np.isfinite(corr).all():
        return math.nan
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


ZERO_COST: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "synflow": synflow,
    "snip": snip,
    "grad_norm": grad_norm,
    "naswot": naswot,
    "jacob_cov": jacob_cov,
}


def all_proxies(module_factory: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor,
                names: tuple[str, ...] | None = None, threads: int = 1,
                ) -> dict[str, float | None]:
    """Every zero-cost proxy in `ZERO_COST` (or those in `names`), each on a fresh module
    from `module_factory()`, on `threads` torch threads (restored afterwards).

    A proxy that raises (including the factory raising) or gives a non-finite value
    (a singular NASWOT kernel, a NaN Jacobian correlation) is None. Raises only
    ValueError for a name not in `ZERO_COST`, before computing anything.
    """
    names = tuple(ZERO_COST) if names is None else tuple(names)
    unknown = [name for name in names if name not in ZERO_COST]
    if unknown:
        raise ValueError(f"unknown proxy {unknown[0]!r}: choose from {', '.join(ZERO_COST)}")
    results: dict[str, float | None] = {}
    with torch_threads(threads):
        for name in names:
            try:
                value = ZERO_COST[name](module_factory(), x, y)
            except Exception:  # a value for this candidate, not a failure of the study
                value = None
            results[name] = value if value is not None and math.isfinite(value) else None
    return results
