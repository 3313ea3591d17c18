"""What the analyses show, on run stores whose answers are known exactly: labels of
the lineage figure that hide nothing, the Pareto figure on the capacity ratio,
attribution over the template schedule, slots in the network's order."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from evo.analysis.attribution import attribute, format_attribution
from evo.analysis.lineage import ancestry
from evo.analysis.pareto_plot import pareto_figure
from evo.analysis.plots import layer_speedup_figure, lineage_figure
from evo.analysis.report import write_report
from evo.analysis.snapshot import load_run
from evo.search.variation import TEMPLATE_SCHEDULE
from tests.evo.synthetic_run import Planned, write_run

SLOTS = ["conv1", "layer1.conv1", "layer1.conv2", "conv2"]
GENES = [{"gene": "tile", "axis": "co", "factor": 8}, {"gene": "vectorize", "axis": "ow"},
         {"gene": "reorder_reduction", "order": ["ci", "kh", "kw"]},
         {"gene": "unroll", "max_step": 4}, {"gene": "parallel"}, {"gene": "fuse", "depth": 2}]
TEMPLATE = [gene.to_json() for gene in TEMPLATE_SCHEDULE.genes]
SPLIT = {"gene": "split_channels", "groups": [1, 2]}
GROUP = {"gene": "group", "groups": 2}


def long_line(steps: int) -> list[Planned]:
    """A line of `steps` children, each adding two genes, with close latencies (so
    labels crowd) and a crossover partner every fifth step."""
    plan = [Planned(1, 0, (), "original", {}, 1.0)]
    layers: dict[str, list[dict]] = {}
    for i in range(2, steps + 2):
        layers = {slot: list(genes) for slot, genes in layers.items()}
        layers.setdefault(SLOTS[i % 4], []).append(GENES[i % len(GENES)])
        layers.setdefault(SLOTS[(i + 1) % 4], []).append(GENES[(i + 2) % len(GENES)])
        parents = (i - 1, 1) if i % 5 == 0 else (i - 1,)
        plan.append(Planned(i, i - 1, parents, "insert", layers, 0.5 - 0.001 * i))
    return plan


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


@pytest.mark.parametrize("steps", [6, 30])
def test_lineage_labels_hide_no_label_and_no_point(tmp_path: Path, steps: int) -> None:
    snap = load_run(write_run(tmp_path / "run", long_line(steps)))
    fig = lineage_figure(snap, ancestry(snap, steps + 1))
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_gid() in ("edit-label", "partner-label")]
    assert len(labels) == steps + 1 + steps // 5
    boxes = [t.get_window_extent() for t in labels]
    for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
        assert not _overlap(a, b), (labels[i].get_text(), labels[j].get_text())
    frame = ax.get_window_extent()
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
               for b in boxes)
    markers = [c.get_offsets()[0] for c in ax.collections if len(c.get_offsets()) == 1]
    for x, y in markers:  # no label over a point's centre
        px, py = ax.transData.transform((x, y))
        assert not any(b.x0 < px < b.x1 and b.y0 < py < b.y1 for b in boxes)


def _template_run(folder: Path) -> Path:
    template = dict.fromkeys(SLOTS, TEMPLATE)
    return write_run(folder, [
        Planned(1, 0, (), "original", {}, 1.0, fisher=10.0),
        Planned(2, 0, (1,), "initial:template", template, 0.3, fisher=10.0),
        Planned(3, 1, (2,), "insert", {**template, "conv1": [SPLIT, *TEMPLATE]}, 0.25,
                fisher=10.0),
        Planned(4, 2, (3,), "perturb", {**template, "conv1": [SPLIT, *TEMPLATE[:-1],
                                                              GENES[3]]}, 0.2, fisher=10.0),
        # a mutant made from the original itself (as older runs did): template + group
        Planned(5, 0, (1,), "initial:any", {**template, "conv2": [GROUP, *TEMPLATE]}, 0.22,
                fisher=12.0),
    ])


def test_attribution_is_over_the_template_schedule(tmp_path: Path) -> None:
    snap = load_run(_template_run(tmp_path / "run"))
    assert set(snap.front) == {4, 5} and snap.template == 2
    result = attribute(snap)
    saved = {s.name: round(s.saved_ms, 6) for s in result.shares.values()}
    # #4: split_channels 0.3 -> 0.25, then unroll 64 -> 4: 0.25 -> 0.2; #5: group 0.3 -> 0.22
    assert saved == {"split_channels": 0.05, "unroll": 0.05, "group": 0.08}
    assert result.baseline == "template" and result.baseline_ms == 0.3
    assert result.total_saved_ms == pytest.approx((0.3 - 0.2) + (0.3 - 0.22))
    text = format_attribution(result)
    assert "over the template schedule (0.3000 ms, itself 3.33x faster" in text
    assert "tile" not in text and "cache_write" not in text


def test_without_a_template_attribution_stays_over_the_original(tmp_path: Path) -> None:
    snap = load_run(write_run(tmp_path / "run", [
        Planned(1, 0, (), "original", {}, 1.0),
        Planned(2, 0, (1,), "initial:any", {"conv1": [GENES[0]]}, 0.6),
        Planned(3, 1, (2,), "insert", {"conv1": [GENES[0], GROUP]}, 0.5),
    ]))
    result = attribute(snap)
    assert result.baseline == "original" and result.baseline_ms == 1.0
    assert {s.name: round(s.saved_ms, 6) for s in result.shares.values()} == {
        "tile": 0.4, "group": 0.1}


def _pareto_texts(fig) -> tuple[list[str], str, str]:
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    return ticks, ax.yaxis.get_offset_text().get_text(), " ".join(t.get_text()
                                                                  for t in ax.texts)


def test_pareto_figure_is_on_the_capacity_ratio(tmp_path: Path) -> None:
    snap = load_run(_template_run(tmp_path / "run"))
    fig = pareto_figure(snap)
    ticks, offset, notes = _pareto_texts(fig)
    ax = fig.axes[0]
    assert "the original's" in ax.get_ylabel() and "(10;" in ax.get_ylabel()
    assert offset == "" and ticks and all(t.endswith("x") for t in ticks)
    front = next(c for c in ax.collections if c.get_label().startswith("Pareto set"))
    assert sorted(front.get_offsets()[:, 1].round(6)) == [1.0, 1.2]
    assert "#4\n0.2 ms, 1.000x" in notes and "#5\n0.22 ms, 1.200x" in notes
    assert any(line.get_label().startswith("threshold 1x") for line in ax.lines)


def test_a_one_point_front_is_readable(tmp_path: Path) -> None:
    # tiny capacities (a Fisher Potential of 2e-6) and one front point of three members
    snap = load_run(write_run(tmp_path / "run", [
        Planned(1, 0, (), "original", {}, 6.3, fisher=2.153e-6),
        *(Planned(i, 0, (1,), "initial:program", {"conv1": [GENES[i]]}, 0.15,
                  fisher=2.153e-6) for i in (2, 3, 4)),
    ]))
    assert len(snap.front) == 3
    fig = pareto_figure(snap)
    ticks, offset, notes = _pareto_texts(fig)
    assert offset == "" and "1x" in ticks  # no "1e-6" above the axis
    assert "#2, #3, #4\n0.15 ms, 1.000x" in notes
    ax = fig.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < 0.15 < x1 and y0 < 0.99 and y1 > 1.01  # the point clear of the frame
    assert "Pareto set (3 individuals at 1 point)" in [c.get_label() for c in ax.collections]


def test_a_combined_check_is_plotted_as_its_margin(tmp_path: Path) -> None:
    """With --capacity of several terms the axis is the check's margin as recorded (1 at
    the thresholds, no ratio to the original's), with the threshold line at 1."""
    snap = load_run(write_run(tmp_path / "run", [
        Planned(1, 0, (), "original", {}, 6.3, fisher=1.25),
        Planned(2, 0, (1,), "initial:program", {"conv1": [GENES[2]]}, 0.15, fisher=1.25),
        Planned(3, 0, (1,), "initial:any", {"conv1": [GENES[3]]}, 0.12, fisher=1.0000004),
    ], capacity="flops@0.8+params@0.8"))
    fig = pareto_figure(snap)
    ticks, offset, _ = _pareto_texts(fig)
    assert offset == "" and ticks and not any(t.endswith("x") for t in ticks)
    ax = fig.axes[0]
    assert ax.get_ylabel().startswith("margin of flops@0.8+params@0.8")
    labels = [line.get_label() for line in ax.get_lines()]
    assert "threshold 1 (legal at or above)" in labels
    (y0, y1) = ax.get_ylim()
    assert y0 < 1.0 and y1 > 1.25


DENSE = [f"features.denseblock1.denselayer{i}.conv{k}" for i in range(1, 13) for k in (1, 2)]


@pytest.mark.parametrize("recorded", [True, False])
def test_slots_in_network_order_recorded_or_read_numerically(tmp_path: Path,
                                                             recorded: bool) -> None:
    network = ["stem.conv", *DENSE, "features.transition1.conv"]
    best = dict.fromkeys(network, [GENES[0]])
    snap = load_run(write_run(tmp_path / "run", [
        Planned(1, 0, (), "original", {}, 1.0, slots=dict.fromkeys(network, 1 / 26),
                detail={"slots": network} if recorded else {}),
        Planned(2, 0, (1,), "initial:program", best, 0.5,
                slots=dict.fromkeys(network, 1 / 52)),
    ]))
    # recorded: the network's own order; else by name, numbers as numbers (the stem
    # then sorts last: only the record knows it runs first)
    expected = network if recorded else [*DENSE, network[-1], network[0]]
    assert snap.slot_order == expected
    report = (write_report(snap.folder)).read_text()
    rows = [line.split(" | ")[0].removeprefix("| ") for line in report.splitlines()
            if line.startswith(("| features.", "| stem."))]
    assert rows == expected
    ticks = [t.get_text() for t in layer_speedup_figure(snap, 2).axes[0].get_yticklabels()]
    assert ticks == expected
    changes = [c.slot for c in ancestry(snap, 2)[1].changes]
    assert changes == expected
