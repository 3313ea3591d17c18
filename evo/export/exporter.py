"""`export_individual`: an individual of a run as a PyTorch model folder plus its
convolutions compiled by TVM, usable without the run store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evo.analysis.snapshot import load_run
from evo.errors import UsageError
from evo.export.model_files import output_files, save_model
from evo.export.network_files import NETWORK_FILES, export_network
from evo.networks.trust import check_model_code, model_is_code
from evo.outputs import check_outputs
from evo.store.records import Evaluation


def export_individual(run: str | Path, ident: int | None, out: str | Path,
                      target: str | None = None, tvm: bool = True,
                      trust_model_code: bool = False) -> dict[str, Any]:
    """Write individual `ident` (default: the best legal one) of the run into `out`:
    genome.json, model.json and weights.pt (see `load_model`); the whole network as
    network.pt2, network.onnx and, if `tvm`, network.so with run_network.py (see
    `evo.export.network_files`; `summary["network"]` says which failed and why); and,
    if `tvm`, the compiled convs in `out/tvm/` with `out/run_tvm.py`. Returns a summary.

    Checked before anything is written: the run (`load_run`), the individual, the
    model code (a model file or module the run's config.json names is imported only
    with `trust_model_code`), the TVM target, the network, and every path written
    (no link or special file in `out`, see `evo.outputs`)."""
    from evo.networks import load_network, transform_network

    snap = load_run(run)
    ident = snap.resolve(ident)
    individual = snap.individual(ident)
    evaluation = snap.evaluations.get(ident)
    config = snap.config
    out = Path(out)
    check_model_code(config.model, f"{run}/config.json", trust_model_code)
    check_outputs(out, follow_folder=True)
    compile_for = None
    if tvm:
        from evo.target import make_target

        compile_for = make_target(target if target is not None else config.target)
    network = load_network(config.model, config.input_shape, seed=config.seed)
    transform = transform_network(network, individual.genome, seed=config.seed)
    if transform.error is not None:
        raise UsageError(f"individual {ident} does not apply to {config.model}: "
                         f"{transform.error}")
    check_outputs(out, output_files(config.model) + NETWORK_FILES, follow_folder=True)
    if tvm:
        from evo.export.tvm_files import TVM_DATA_FILES, TVM_FILES, library_names

        check_outputs(out, TVM_FILES, follow_folder=True)
        check_outputs(out / "tvm", library_names(transform.plans) + TVM_DATA_FILES)
    extra = {"run": str(Path(run).resolve()), "individual": ident,
             "latency_ms": evaluation.latency_ms if evaluation else None,
             "fisher": evaluation.fisher if evaluation else None,
             "original_ms": snap.original_ms}
    save_model(out, config.model, network.input_shape, config.seed, individual.genome,
               transform.module, extra)
    summary = {"individual": ident, "out": str(out), "slots": len(transform.plans),
               "tvm": None, "model_code": model_is_code(config.model),
               **{k: extra[k] for k in ("latency_ms", "fisher")}}
    threads = run_threads(evaluation)
    if tvm:
        from evo.export.tvm_files import export_tvm

        manifest = export_tvm(out, transform.module, transform.plans, network.input_shape,
                              compile_for, threads)
        summary["tvm"] = manifest["target"]
    summary["network"] = export_network(out, transform.module, network.input_shape,
                                        transform.plans, compile_for, threads)
    summary["threads"] = threads
    return summary


def run_threads(evaluation: Evaluation | None) -> int:
    """The runtime thread count the run measured this individual with (recorded per
    slot), else this machine's cores."""
    from evo.measure.evaluator import available_cores

    for slot in (evaluation.slots if evaluation else {}).values():
        threads = slot.get("threads") if isinstance(slot, dict) else None
        if isinstance(threads, int) and not isinstance(threads, bool) and threads > 0:
            return threads
    return available_cores()
