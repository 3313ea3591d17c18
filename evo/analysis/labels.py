"""Placing a figure's point labels so that none hides another or a point.

`place_labels` moves each annotation, in order, to the first of a few offsets
from its point (above, below, then further up or down, then to the sides) where
it overlaps no label placed before it, no obstacle (the points) and stays inside
the axes. It works on the laid-out figure, so call it after `fig.canvas.draw()`;
the labels are kept out of the layout so saving does not move the axes again.
"""

from __future__ import annotations

from collections.abc import Sequence

GAP_PT = 9.0  # from the point to the nearest label edge, in points


def place_labels(fig, ax, labels: Sequence, obstacles: Sequence = ()) -> None:
    """Move each of `labels` (annotations on points of `ax`, offsets in points) to
    a free place; `obstacles` are display-space boxes (`Bbox`) to keep clear."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = list(obstacles)
    for label in labels:
        label.set_in_layout(False)
        best, best_cost = None, None
        for dx, dy in _offsets(label, renderer):
            label.xyann = (dx, dy)
            label.set_va("bottom" if dy > 0 else "top")
            box = label.get_window_extent(renderer)
            cost = sum(_overlap(box, other) for other in taken) \
                + 10 * (box.width * box.height - _overlap(box, frame))
            if best_cost is None or cost < best_cost:
                best, best_cost = (dx, dy), cost
            if cost == 0:
                break
        label.xyann = best
        label.set_va("bottom" if best[1] > 0 else "top")
        taken.append(label.get_window_extent(renderer))


def point_boxes(fig, ax, points: Sequence[tuple[float, float]], radius_pt: float = 5.0):
    """Display-space boxes of markers of `radius_pt` points at data `points`."""
    from matplotlib.transforms import Bbox

    radius = radius_pt * fig.dpi / 72
    out = []
    for x, y in points:
        px, py = ax.transData.transform((x, y))
        out.append(Bbox([[px - radius, py - radius], [px + radius, py + radius]]))
    return out


def _offsets(label, renderer) -> list[tuple[float, float]]:
    """Candidate offsets (points) from the label's point: above and below at growing
    distances, then shifted half a label width to either side."""
    box = label.get_window_extent(renderer)
    dpi = label.figure.dpi
    height, width = box.height * 72 / dpi + 2, box.width * 72 / dpi
    rises = [GAP_PT + k * height for k in range(6)]
    vertical = [(0.0, sign * rise) for rise in rises for sign in (1, -1)]
    sideways = [(side * (width / 2 + GAP_PT), sign * rise)
                for rise in rises[:3] for sign in (1, -1) for side in (-1, 1)]
    return vertical + sideways


def _overlap(a, b) -> float:
    """The area two display boxes share."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0
