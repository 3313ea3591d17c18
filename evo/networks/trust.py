"""Importing model code only when this machine asks for it.

A model is a zoo name (part of evo) or code: `path/to/file.py:factory` or
`package.module:factory`, which loading imports and runs. A folder received from
someone else (a run's `config.json`, an export's `model.json`) may name code; evo
imports it only with an explicit opt-in (`--trust-model-code`,
`trust_model_code=True`) or when this machine's command line names the same model
again (`--model`).
"""

from __future__ import annotations

from pathlib import Path

from evo.errors import UsageError


def model_is_code(model: str) -> bool:
    """Whether loading `model` imports code that is not part of evo (any non-zoo name)."""
    from evo.networks.zoo import ZOO

    return model not in ZOO


def same_model(given: str, recorded: str) -> bool:
    """Whether `--model given` names the model `recorded` (the same file, by its
    resolved path, and the same factory; or the same module name)."""
    if given == recorded:
        return True
    if ":" not in given or ":" not in recorded:
        return False
    (a, fa), (b, fb) = given.rsplit(":", 1), recorded.rsplit(":", 1)
    return fa == fb and a.endswith(".py") and b.endswith(".py") and \
        Path(a).resolve() == Path(b).resolve()


def check_model_code(model: str, where: str, trust: bool, given: str | None = None,
                     how: str = "pass --trust-model-code") -> None:
    """Refuse (UsageError) to import the model code `model` that `where` names, unless
    `trust` or this machine's command line named the same model (`given`)."""
    if given is not None and not same_model(given, model):
        raise UsageError(f"--model {given} is not the model {where} names ({model!r})")
    if trust or given is not None or not model_is_code(model):
        return
    raise UsageError(f"{where} names the model code {model!r}; evo does not import code "
                     f"named by a folder unless asked: {how} if you trust it")
