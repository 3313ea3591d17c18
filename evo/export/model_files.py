"""A transformed network on disk, loadable without the run store:

    DIR/model.json    the model (zoo name or a copied model file), input shape, seed
    DIR/genome.json   the network genome
    DIR/weights.pt    the module's state_dict (torch.save; read with weights_only=True)

`load_model(DIR)` rebuilds the network from the model and genome and loads the weights.
A model trained by `evo train` also records its input normalisation in model.json
(`"normalisation": {"mean": [...], "std": [...]}`, per channel, of images scaled to
[0, 1]); `load_model` then puts it inside the module (`Normalised`), so the module
takes images scaled to [0, 1] and needs no knowledge of the training set.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evo.errors import UsageError
from evo.outputs import replacing, write_text
from genomes.genes import GenomeFormatError
from genomes.genome import NetworkGenome

FORMAT = "evo-model"
VERSION = 1
MODEL_JSON, GENOME_JSON, WEIGHTS = "model.json", "genome.json", "weights.pt"


def portable_model(model: str, out: Path) -> str:
    """The model string to record in `out`: a model file (`path.py:factory`) is copied
    into `out` and named relative to it; zoo names and modules stay as they are."""
    from evo.networks.zoo import ZOO

    if model in ZOO or ":" not in model:
        return model
    where, name = model.rsplit(":", 1)
    if not (where.endswith(".py") or "/" in where or "\\" in where):
        return model
    source = Path(where)
    if not source.is_file():
        raise UsageError(f"model file {source}: no such file (needed to export the model)")
    with replacing(out / source.name) as copy:
        shutil.copyfile(source, copy)
    return f"{source.name}:{name}"


def save_model(out: str | Path, model: str, input_shape: tuple[int, ...], seed: int,
               genome: NetworkGenome, module: nn.Module,
               extra: dict[str, Any] | None = None) -> Path:
    """Write model.json, genome.json and weights.pt for `module` into `out`, each
    whole under a temporary name renamed into place (never through a link there;
    `output_files` lists what to check first with `evo.outputs.check_outputs`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = {"format": FORMAT, "version": VERSION, "model": portable_model(model, out),
            "input_shape": list(input_shape), "seed": seed, **(extra or {})}
    write_text(out / GENOME_JSON, json.dumps(genome.to_json(), indent=2) + "\n")
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    with replacing(out / WEIGHTS) as temporary:
        torch.save(state, temporary)
    write_text(out / MODEL_JSON, json.dumps(info, indent=2) + "\n")
    return out


def output_files(model: str) -> list[str]:
    """The files `save_model` writes for `model` (a model file is copied in)."""
    names = [GENOME_JSON, WEIGHTS, MODEL_JSON]
    where = model.rsplit(":", 1)[0] if ":" in model else ""
    if where.endswith(".py") or "/" in where or "\\" in where:
        names.append(Path(where).name)
    return names


def read_model_info(path: str | Path) -> dict[str, Any]:
    """model.json of an exported model, checked."""
    folder = Path(path)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such model folder")
    info_path = folder / MODEL_JSON
    _regular(info_path)
    try:
        info = json.loads(info_path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{folder}: not an exported model (no {MODEL_JSON})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"{info_path}: unreadable ({type(exc).__name__})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise UsageError(f"{info_path}: not an evo model description")
    if info.get("version") != VERSION:
        raise UsageError(f"{info_path}: format version {info.get('version')!r}, this evo "
                         f"reads {VERSION}")
    shape = info.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 4 and all(
            isinstance(v, int) and v > 0 for v in shape)):
        raise UsageError(f"{info_path}: input_shape must be 4 positive integers")
    if not isinstance(info.get("model"), str) or not isinstance(info.get("seed"), int):
        raise UsageError(f"{info_path}: needs a model name and an integer seed")
    return info


def build_model(path: str | Path, trust_model_code: bool = False
                ) -> tuple[nn.Module, dict[str, Any], NetworkGenome]:
    """The freshly initialised transformed module described by an exported folder.

    A model.json naming a model file or module (not a zoo name) is imported only with
    `trust_model_code` (see `evo.networks.trust`); else UsageError."""
    from evo.networks import load_network, transform_network
    from evo.networks.trust import check_model_code

    folder = Path(path)
    info = read_model_info(folder)
    check_model_code(info["model"], str(folder / MODEL_JSON), trust_model_code,
                     how="call load_model(..., trust_model_code=True)")
    _regular(folder / GENOME_JSON)
    try:
        genome = NetworkGenome.from_json(json.loads((folder / GENOME_JSON).read_text()))
    except FileNotFoundError:
        raise UsageError(f"{folder}: not an exported model (no {GENOME_JSON})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, GenomeFormatError,
            RecursionError) as exc:
        raise UsageError(f"{folder / GENOME_JSON}: {exc}") from None
    model = info["model"]
    where = model.rsplit(":", 1)[0]
    if ":" in model and where.endswith(".py") and not Path(where).is_absolute():
        model = f"{folder / where}:{model.rsplit(':', 1)[1]}"
    network = load_network(model, tuple(info["input_shape"]), seed=info["seed"])
    transform = transform_network(network, genome, seed=info["seed"])
    if transform.error is not None:
        raise UsageError(f"{folder / GENOME_JSON}: does not apply to {info['model']} "
                         f"({transform.error})")
    return transform.module, info, genome


def _regular(path: Path) -> None:
    """Refuse a FIFO or other special file where a file is read (it could block)."""
    if path.exists() and not path.is_file():
        raise UsageError(f"{path}: not a regular file")


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict saved with torch.save, read with `weights_only=True` (no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile,
            OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()
        raise UsageError(f"{path}: not a weights file evo can read safely "
                         f"({type(exc).__name__}: {first[0][:120] if first else ''})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in
                                              state.values()):
        raise UsageError(f"{path}: expected a state_dict of tensors")
    return state


class Normalised(nn.Module):
    """`network` behind a per-channel standardisation: takes images scaled to [0, 1]."""

    def __init__(self, network: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network((x - self.mean) / self.std)


def normalisation(info: dict[str, Any], where: Path) -> tuple[list[float], list[float]] | None:
    """The (mean, std) recorded in a model.json, checked; None when it records none."""
    norm = info.get("normalisation")
    if norm is None:
        return None
    channels = info["input_shape"][1]
    ok = isinstance(norm, dict) and all(
        isinstance(norm.get(k), list) and len(norm[k]) == channels
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in norm[k]) for k in ("mean", "std"))
    if not ok or not all(v > 0 for v in norm["std"]):
        raise UsageError(f"{where}: normalisation must hold {channels} finite means and "
                         f"{channels} positive deviations")
    return [float(v) for v in norm["mean"]], [float(v) for v in norm["std"]]


def load_model(path: str | Path, trust_model_code: bool = False) -> nn.Module:
    """The transformed PyTorch model exported to `path` (by `evo export` or `evo train`),
    with its saved weights, in eval mode. Needs neither the run store nor TVM. A trained
    model (model.json records its normalisation) takes images scaled to [0, 1].

    A folder whose model.json names a model file or module imports and runs that code:
    refused (UsageError) unless `trust_model_code=True`; zoo models need nothing."""
    module, info, _ = build_model(path, trust_model_code)
    norm = normalisation(info, Path(path) / MODEL_JSON)
    state = load_weights(Path(path) / WEIGHTS)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise UsageError(f"{Path(path) / WEIGHTS}: does not fit the model "
                         f"({str(exc).strip().splitlines()[0][:200]})") from None
    if norm is not None:
        module = Normalised(module, *norm)
    return module.eval()
