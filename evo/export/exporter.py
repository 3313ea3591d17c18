"""`export_individual`: an individual of a run as a PyTorch model folder plus its
convolutions compiled by TVM, usable without the run store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evo.analysis.snapshot import load_run
from evo.errors import UsageError
from evo.export.model_files import save_model


def export_individual(run: str | Path, ident: int | None, out: str | Path,
                      target: str | None = None, tvm: bool = True) -> dict[str, Any]:
    """Write individual `ident` (default: the best legal one) of the run into `out`:
    genome.json, model.json and weights.pt (see `load_model`) and, if `tvm`, the
    compiled convs in `out/tvm/` with `out/run_tvm.py`. Returns a summary dict."""
    from evo.networks import load_network, transform_network

    snap = load_run(run)
    ident = snap.resolve(ident)
    individual = snap.individual(ident)
    evaluation = snap.evaluations.get(ident)
    config = snap.config
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    network = load_network(config.model, config.input_shape, seed=config.seed)
    transform = transform_network(network, individual.genome, seed=config.seed)
    if transform.error is not None:
        raise UsageError(f"individual {ident} does not apply to {config.model}: "
                         f"{transform.error}")
    extra = {"run": str(Path(run).resolve()), "individual": ident,
             "latency_ms": evaluation.latency_ms if evaluation else None,
             "fisher": evaluation.fisher if evaluation else None,
             "original_ms": snap.original_ms}
    save_model(out, config.model, network.input_shape, config.seed, individual.genome,
               transform.module, extra)
    summary = {"individual": ident, "out": str(out), "slots": len(transform.plans),
               "tvm": None, **{k: extra[k] for k in ("latency_ms", "fisher")}}
    if tvm:
        from evo.export.tvm_files import export_tvm
        from evo.target import make_target

        manifest = export_tvm(out, transform.module, transform.plans, network.input_shape,
                              make_target(target if target is not None else config.target))
        summary["tvm"] = manifest["target"]
    return summary
