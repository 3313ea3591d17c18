"""The report's Pareto-front figure: latency against the capacity measure, drawn as
the ratio to the original network's capacity (the scale legality is judged on)."""

from __future__ import annotations

from pathlib import Path

from evo.analysis.lineage import is_margin, measure_name
from evo.analysis.plots import DPI, _log_axis, _save, _wide, pyplot
from evo.analysis.snapshot import RunSnapshot

NAMED_POINTS = 6  # front points annotated with their latency and ratio


def plot_pareto(snap: RunSnapshot, path: Path) -> Path:
    """`pareto_figure` as a PNG at `path`."""
    return _save(pareto_figure(snap), path)


def capacity_scale(snap: RunSnapshot) -> tuple[float, str]:
    """(divisor, axis label): the original's capacity when it is positive (the axis
    shows ratios to it), else 1 (absolute values); 1 for a check of several terms, whose
    values are already margins (1.0 = every term exactly at its threshold)."""
    name = measure_name(snap.config.capacity)
    original = snap.original
    if is_margin(snap.config.capacity):
        return 1.0, f"{name}\n(1 = at the thresholds; higher is better)"
    if original is not None and original.fisher is not None and original.fisher > 0:
        return original.fisher, (f"{name} / the original's\n({original.fisher:.4g}; higher "
                                 "is better)")
    return 1.0, f"{name}\n(higher is better)"


def pareto_figure(snap: RunSnapshot):
    """Every legal, measured individual; the Pareto set (each point named, with its
    latency and capacity ratio while there are few); the original, the template
    schedule, the best; the capacity threshold a legal network must reach."""
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter

    scale, ylabel = capacity_scale(snap)
    fig, ax = plt.subplots(figsize=(7.5, 5.5), constrained_layout=True, dpi=DPI)
    legal = [(e.latency_ms, e.fisher / scale) for e in snap.evaluations.values()
             if e.feasible and e.fisher is not None]
    if legal:
        ax.scatter(*zip(*legal, strict=True), s=14, color="tab:gray", alpha=0.5,
                   label=f"legal individuals ({len(legal)})")
    points: dict[tuple[float, float], list[int]] = {}
    for ident in snap.front:
        e = snap.evaluations[ident]
        if e.fisher is not None:
            points.setdefault((e.latency_ms, e.fisher / scale), []).append(ident)
    front = sorted(points)
    if len(front) > 1:
        ax.step(*zip(*front, strict=True), where="post", color="tab:red", linewidth=1.2)
    if front:
        ax.scatter(*zip(*front, strict=True), s=40, color="tab:red", zorder=3,
                   label=f"Pareto set ({len(snap.front)}"
                         + (f" individuals at {len(front)} point{'s' * (len(front) > 1)})"
                            if len(front) < len(snap.front) else ")"))
    _markers(snap, ax, scale)
    for ms, ratio in front[:15]:
        idents = points[(ms, ratio)]
        names = ", ".join(f"#{i}" for i in idents[:4]) + (" ..." if len(idents) > 4 else "")
        if len(front) <= NAMED_POINTS:
            names += f"\n{ms:.4g} ms, " + (f"{ratio:.3f}x" if scale != 1.0 else f"{ratio:.4g}")
        ax.annotate(names, (ms, ratio), textcoords="offset points", xytext=(8, 6),
                    fontsize=8, color="tab:red")
    margin = is_margin(snap.config.capacity)
    if (scale != 1.0 or margin) and snap.config.scope == "network":
        ax.axhline(snap.config.threshold, color="tab:green", linestyle=":", linewidth=1,
                   label=f"threshold {snap.config.threshold:g}" + ("" if margin else "x")
                   + " (legal at or above)")
    if not legal:
        ax.text(0.5, 0.5, "no legal individual yet", ha="center", va="center",
                transform=ax.transAxes)
    log = _wide([p[0] for p in legal])
    if log:
        _log_axis(ax.xaxis, ax.set_xscale)
    ax.margins(x=0.12, y=0.15)
    if scale != 1.0 or margin:  # plain values, never an offset or a x1e-6 above the axis
        suffix = "" if margin else "x"
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.4g}{suffix}"))
    ax.set_xlabel("latency (ms, " + ("log scale, " if log else "") + "lower is better)")
    ax.set_ylabel(ylabel)
    ax.set_title("Pareto front: latency against "
                 f"{measure_name(snap.config.capacity)}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return fig


def _markers(snap: RunSnapshot, ax, scale: float) -> None:
    """The original (star), the template schedule (square) and the best (diamond)."""
    original = snap.original
    if original is not None and original.feasible and original.fisher is not None:
        ax.scatter([original.latency_ms], [original.fisher / scale], marker="*", s=260,
                   color="black", zorder=4, label="original network")
    template = snap.template
    if snap.template_ms and snap.evaluations[template].fisher is not None:
        ax.scatter([snap.template_ms], [snap.evaluations[template].fisher / scale], marker="s",
                   s=70, facecolor="none", edgecolor="black", zorder=4,
                   label=f"template schedule (#{template})")
    best = snap.best
    if best is not None and snap.evaluations[best].fisher is not None:
        e = snap.evaluations[best]
        ax.scatter([e.latency_ms], [e.fisher / scale], marker="D", s=70, facecolor="none",
                   edgecolor="tab:orange", linewidth=2, zorder=5, label=f"best legal (#{best})")
