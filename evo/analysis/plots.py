"""The report's figures (matplotlib, Agg backend, PNG): search progress, the lineage
of the best individual and its per-layer speedup (the Pareto front is in
`evo.analysis.pareto_plot`)."""

from __future__ import annotations

from pathlib import Path

from evo.analysis.changes import changed_names
from evo.analysis.labels import place_labels, point_boxes
from evo.analysis.lineage import Step
from evo.analysis.snapshot import RunSnapshot
from evo.errors import UsageError
from evo.outputs import replacing
from genomes.sampling import NEURAL_GENE_NAMES

DPI = 120
KIND_COLOURS = {"original": "black", "program": "tab:green", "neural": "tab:blue",
                "both": "tab:purple", "none": "tab:gray"}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("evo report needs matplotlib: pip install 'evo-nas[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_progress(snap: RunSnapshot, path: Path) -> Path:
    """Best legal latency after each generation, against generation and search time."""
    plt = pyplot()
    points = [(c.generation, c.elapsed_s, c.logbook.get("best_ms")) for c in snap.checkpoints]
    points = [p for p in points if p[2] is not None]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    minutes = bool(points) and points[-1][1] > 120
    for ax, index, label in ((axes[0], 0, "generation"),
                             (axes[1], 1, "search time (min)" if minutes else "search time (s)")):
        if points:
            xs = [p[index] / (60 if index == 1 and minutes else 1) for p in points]
            ys = [p[2] for p in points]
            ax.step(xs, ys, where="post", color="tab:blue", linewidth=2, label="best legal")
            ax.plot(xs, ys, "o", color="tab:blue", markersize=4)
        else:
            ax.text(0.5, 0.5, "no legal individual yet", ha="center", va="center",
                    transform=ax.transAxes)
        if snap.original_ms:
            ax.axhline(snap.original_ms, color="black", linestyle="--", linewidth=1,
                       label=f"original ({snap.original_ms:.4g} ms)")
        if snap.template_ms:
            ax.axhline(snap.template_ms, color="tab:gray", linestyle=":", linewidth=1.2,
                       label=f"template schedule ({snap.template_ms:.4g} ms)")
        values = [p[2] for p in points] + ([snap.original_ms] if snap.original_ms else [])
        log = _wide(values)
        if points and snap.original_ms:
            ax.annotate(f"{snap.original_ms / points[-1][2]:.2f}x faster",
                        (xs[-1], ys[-1]), textcoords="offset points", xytext=(-4, 8),
                        ha="right", fontsize=9, color="tab:blue")
        ax.set_xlabel(label)
        ax.set_ylabel("latency of the best legal network (ms" + (", log scale)" if log else ")"))
        if log:
            _log_axis(ax.yaxis, ax.set_yscale)
        else:
            ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="best")
    from matplotlib.ticker import MaxNLocator

    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_title("Best legal latency by generation")
    axes[1].set_title("Best legal latency by search time")
    return _save(fig, path)


def plot_lineage(snap: RunSnapshot, steps: list[Step], path: Path) -> Path:
    """`lineage_figure` as a PNG at `path`."""
    return _save(lineage_figure(snap, steps), path)


def lineage_figure(snap: RunSnapshot, steps: list[Step]):
    """The line from the original to the individual: one point per step (its
    latency), coloured by the kind of genes it edited, labelled with the edits
    (placed so that no label hides another or a point); crossover partners as
    hollow points with dashed edges."""
    plt = pyplot()
    width = min(24.0, max(8.0, 1.1 * len(steps) + 2))
    fig, ax = plt.subplots(figsize=(width, 5.5), constrained_layout=True, dpi=DPI)
    labels, partners, points = [], [], []
    measured = [s.evaluation.latency_ms for s in steps
                if s.evaluation is not None and s.evaluation.feasible]
    top = max(measured) * 1.12 if measured else 1.0

    def height(ident: int) -> tuple[float, bool]:
        e = snap.evaluations.get(ident)
        if e is not None and e.feasible:
            return e.latency_ms, True
        return top, False

    ys = [height(s.id) for s in steps]
    ax.plot(range(len(steps)), [y for y, _ in ys], color="tab:gray", linewidth=1, zorder=1)
    used: set[str] = set()
    for x, (step, (y, ok)) in enumerate(zip(steps, ys, strict=True)):
        kind = _step_kind(step)
        used.add(kind)
        ax.scatter([x], [y], s=60, zorder=3, color=KIND_COLOURS[kind],
                   marker="o" if ok else "X")
        points.append((x, y))
        labels.append(ax.annotate(
            _edit_label(step), (x, y), textcoords="offset points", xytext=(0, 9),
            ha="center", va="bottom", fontsize=7, zorder=4, gid="edit-label",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85}))
        for other in step.others:
            oy, _ = height(other)
            ax.scatter([x - 0.5], [oy], s=40, facecolor="white", edgecolor="tab:gray",
                       zorder=2)
            points.append((x - 0.5, oy))
            ax.plot([x - 0.5, x], [oy, y], linestyle="--", color="tab:gray", linewidth=1)
            partners.append(ax.annotate(f"#{other}", (x - 0.5, oy), textcoords="offset points",
                                        xytext=(0, -12), ha="center", fontsize=7,
                                        color="tab:gray", gid="partner-label"))
    for kind in ("original", "program", "neural", "both", "none"):
        if kind in used:
            ax.scatter([], [], color=KIND_COLOURS[kind], label=_KIND_LABELS[kind])
    if any(not ok for _, ok in ys):
        ax.axhline(top, color="tab:red", linewidth=0.6, linestyle=":")
        ax.scatter([], [], marker="X", color="tab:gray", label="illegal or unmeasured (top line)")
    if any(s.others for s in steps):
        ax.scatter([], [], facecolor="white", edgecolor="tab:gray", label="crossover partner")
    ax.set_xticks(range(len(steps)))
    ax.set_xticklabels([f"#{s.id}\ngen {s.individual.generation}" for s in steps], fontsize=8)
    ax.set_xlim(-0.8, len(steps) - 0.4)
    log = _wide(measured)
    if log:
        _log_axis(ax.yaxis, ax.set_yscale)
        ax.set_ylim(min(measured) / 1.5, top * 1.8)
    else:
        ax.set_ylim(0, top * 1.18)
    ax.set_xlabel("step along the lineage (individual id, generation)")
    ax.set_ylabel("latency (ms" + (", log scale)" if log else ")"))
    ax.set_title(f"Lineage of #{steps[-1].id}: latency after each step, labelled with the "
                 "genes it edited")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    for label in labels + partners:
        label.set_in_layout(False)
    fig.canvas.draw()  # lay the figure out, then find each label a free place
    place_labels(fig, ax, labels + partners, point_boxes(fig, ax, points))
    return fig


def plot_layer_speedup(snap: RunSnapshot, ident: int, path: Path) -> Path:
    """`layer_speedup_figure` as a PNG at `path`."""
    return _save(layer_speedup_figure(snap, ident), path)


def layer_speedup_figure(snap: RunSnapshot, ident: int):
    """Per slot, top to bottom in the order the network runs them: the original's
    conv latency over the individual's."""
    plt = pyplot()
    base = snap.original.slots if snap.original else {}
    mine = snap.evaluations[ident].slots
    rows = [(slot, base[slot]["ms"], mine[slot]["ms"]) for slot in snap.ordered(base)
            if slot in mine and base[slot].get("ms") and mine[slot].get("ms")]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.38 * max(len(rows), 2)), constrained_layout=True)
    if rows:
        speedups = [b / m for _, b, m in rows]
        colours = ["tab:green" if s >= 1 else "tab:red" for s in speedups]
        positions = range(len(rows))
        ax.barh(positions, speedups, color=colours, height=0.65)
        ax.set_yticks(list(positions))
        ax.set_yticklabels([r[0] for r in rows], fontsize=8)
        ax.invert_yaxis()
        for y, (s, (_, b, m)) in enumerate(zip(speedups, rows, strict=True)):
            ax.annotate(f"{s:.2f}x  ({b:.3g} -> {m:.3g} ms)", (s, y), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=8)
        ax.set_xlim(0, max(speedups) * 1.45)
    else:
        ax.text(0.5, 0.5, "no per-layer latencies recorded", ha="center", va="center",
                transform=ax.transAxes)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("speedup over the original layer (original ms / transformed ms)")
    ax.set_ylabel("layer (slot)")
    ax.set_title(f"Per-layer speedup of #{ident} against the original network")
    ax.grid(axis="x", alpha=0.3)
    return fig


_KIND_LABELS = {"original": "original network", "program": "program genes edited",
                "neural": "neural genes edited", "both": "neural and program genes edited",
                "none": "no gene edited"}


def _log_axis(axis, set_scale) -> None:
    """A log scale with plain tick labels at 1, 2 and 5 times powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    set_scale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _wide(values: list[float]) -> bool:
    """Whether latencies span enough (over 4x) that a log scale reads better."""
    values = [v for v in values if v and v > 0]
    return bool(values) and max(values) / min(values) > 4


def _step_kind(step: Step) -> str:
    if step.parent is None:
        return "original"
    names = changed_names(list(step.changes))
    neural = any(n in NEURAL_GENE_NAMES for n in names)
    program = any(n not in NEURAL_GENE_NAMES for n in names)
    return {(True, True): "both", (True, False): "neural", (False, True): "program",
            (False, False): "none"}[(neural, program)]


def _edit_label(step: Step) -> str:
    if step.parent is None:
        return "original"
    if step.individual.operator == "initial:template":
        return "template\nschedule"
    signs = {"added": "+", "removed": "-", "changed": "~", "moved": "<>"}
    edits = sorted({f"{signs[c.action]}{c.gene.name}" for c in step.changes})
    if len(edits) > 3:
        edits = edits[:3] + [f"+{len(edits) - 3} more"]
    return "\n".join(edits) or step.individual.operator


def _save(fig, path: Path) -> Path:
    """Write the figure as PNG by renaming a complete file onto `path` (never through
    a link there, see `evo.outputs`)."""
    path = Path(path)
    with replacing(path) as temporary:
        fig.savefig(temporary, dpi=DPI, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
