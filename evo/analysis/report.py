"""`write_report`: `runs/NAME/report/report.md` and its PNG plots, from a read-only
snapshot of the run (finished, running or interrupted)."""

from __future__ import annotations

import shlex
from pathlib import Path

from evo.analysis.attribution import attribute, baseline_text
from evo.analysis.lineage import (
    ancestry,
    fisher_text,
    format_lineage,
    latency_text,
    measure_name,
)
from evo.analysis.pareto_plot import capacity_scale, plot_pareto
from evo.analysis.plots import plot_layer_speedup, plot_lineage, plot_progress, pyplot
from evo.analysis.snapshot import RunSnapshot, load_run
from evo.analysis.status import format_status, run_status
from evo.outputs import check_outputs, write_text

REPORT_DIR = "report"
FILES = ("report.md", "progress.png", "pareto.png", "lineage.png", "layers.png")


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of the run in `folder` to `out` (default `folder/report`);
    returns the path of report.md.

    Checked before anything is written: the run (`load_run`), matplotlib, and every
    path written: `folder/report` and the files in the report folder must not be
    links or special files (`evo.outputs`); a folder given as `out` may be a link.
    Each file is written whole under a temporary name and renamed into place."""
    snap = load_run(folder)
    check_outputs(Path(out) if out is not None else Path(folder) / REPORT_DIR, FILES,
                  follow_folder=out is not None)
    pyplot()
    out = Path(out) if out is not None else Path(folder) / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# Run report: {snap.folder.name}", "",
          "```", format_status(run_status(snap)), "```", ""]
    plot_progress(snap, out / "progress.png")
    plot_pareto(snap, out / "pareto.png")
    md += ["## Search progress", "", "![best legal latency by generation and by search time]"
           "(progress.png)", "",
           "## Pareto front", "",
           "Every legal, measured individual (grey), the Pareto set (red) of latency against "
           "the capacity measure as a ratio to the original network's (the scale the "
           "threshold is on), the original network (star), the template schedule (square) "
           "and the best legal individual (diamond).", "",
           "![Pareto front](pareto.png)", ""]
    md += _front_table(snap)
    best = snap.best
    if best is not None:
        steps = ancestry(snap, best)
        plot_lineage(snap, steps, out / "lineage.png")
        plot_layer_speedup(snap, best, out / "layers.png")
        md += [f"## The best legal individual: #{best}", "",
               *_genome_table(snap, best), "",
               "![per-layer speedup of the best](layers.png)", "",
               "### Its lineage", "", "![lineage of the best](lineage.png)", "",
               "```", format_lineage(snap, steps), "```", ""]
    md += _attribution_section(snap)
    run = shlex.quote(str(snap.folder))
    md += ["## Next steps", "",
           f"- `evo lineage {run} --id ID` traces any individual; `--format dot | dot -Tpng` "
           "draws it.",
           f"- `evo export {run} --out winner/` writes the best genome, the PyTorch model "
           "(`evo.load_model('winner/')`) and its compiled TVM convolutions.",
           f"- `evo train --model {shlex.quote(snap.config.model)} --genome winner/genome.json "
           "--data cifar10:DIR --epochs 200` checks its accuracy.", ""]
    path = out / "report.md"
    write_text(path, "\n".join(md))
    return path


def _front_table(snap: RunSnapshot) -> list[str]:
    if not snap.front:
        return []
    scale, _ = capacity_scale(snap)
    rows = ["| id | generation | operator | latency (ms) | speedup | capacity | "
            "x the original's |", "|---:|---:|---|---:|---:|---:|---:|"]
    for ident in snap.front:
        e, ind = snap.evaluations[ident], snap.individuals[ident]
        speedup = f"{snap.original_ms / e.latency_ms:.2f}x" if snap.original_ms else "-"
        ratio = f"{e.fisher / scale:.3f}x" if scale != 1.0 and e.fisher is not None else "-"
        rows.append(f"| {ident} | {ind.generation} | {ind.operator} | {e.latency_ms:.4f} | "
                    f"{speedup} | {fisher_text(e)} | {ratio} |")
    return ["### The Pareto set", "", *rows, ""]


def _genome_table(snap: RunSnapshot, ident: int) -> list[str]:
    evaluation, genome = snap.evaluations[ident], snap.individuals[ident].genome
    base = snap.original.slots if snap.original else {}
    measure = measure_name(snap.config.capacity)
    lines = [f"Latency {latency_text(evaluation)}, {measure} {fisher_text(evaluation)}.",
             "", "| layer (slot) | genes | original (ms) | this (ms) | speedup |",
             "|---|---|---:|---:|---:|"]
    for slot in snap.ordered(base or genome.layers):
        before = base.get(slot, {}).get("ms")
        after = evaluation.slots.get(slot, {}).get("ms")
        speedup = f"{before / after:.2f}x" if before and after else "-"
        genes = genome.layer(slot).describe().replace("|", "/")
        lines.append(f"| {slot} | {genes} | {_ms(before)} | {_ms(after)} | {speedup} |")
    return lines


def _attribution_section(snap: RunSnapshot) -> list[str]:
    result = attribute(snap)
    lines = ["## Which genes the speedup came from", "",
             f"The latency saved {baseline_text(result)}: along the lineage of each "
             "Pareto-set member, each measured step's latency change is split evenly between "
             "the gene kinds it edited (since the last measured ancestor); the table sums the "
             "members.", ""]
    if result.note or not result.shares:
        return [*lines, result.note or "Nothing to attribute yet.", ""]
    total = result.total_saved_ms
    lines += ["| gene | kind | ms saved | share | steps |", "|---|---|---:|---:|---:|"]
    for share in result.ranked():
        lines.append(f"| {share.title} | {share.kind} | {share.saved_ms:+.4f} | "
                     f"{share.saved_ms / total:.1%} | {share.steps} |" if total else
                     f"| {share.title} | {share.kind} | {share.saved_ms:+.4f} | - | "
                     f"{share.steps} |")
    for kind, value in result.by_kind().items():
        share = f"{value / total:.1%}" if total else "-"
        lines.append(f"| **all {kind} genes** | | {value:+.4f} | {share} | |")
    return [*lines, ""]


def _ms(value: float | None) -> str:
    return f"{value:.4f}" if value else "-"
