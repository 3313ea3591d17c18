"""Legality rules fitted on part of the calibration study and judged on the rest.

A rule accepts a genome when its measure (a ratio to the original's, oriented so that
more is more capacity) is at least a threshold; a pair rule when two measures both
are. Fitting picks, on the fit genomes, the thresholds whose precision (the share of
accepted genomes that keep accuracy) is at least `target` and whose recall (the share
of keepers accepted) is largest, the lowest thresholds on ties. With ~50 genomes one
split is a noisy judge, so `cross_validated` repeats it over many random halvings and
pools the held-out counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def rule(accepted: np.ndarray, keeps: np.ndarray) -> dict[str, Any]:
    """How many a rule accepts, its precision and its recall (None when undefined)."""
    hits = int((accepted & keeps).sum())
    return {"accepted": int(accepted.sum()),
            "precision": hits / accepted.sum() if accepted.any() else None,
            "recall": hits / keeps.sum() if keeps.any() else None}


def _grid(values: list[np.ndarray], keeps: np.ndarray
          ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate threshold of each measure (its distinct values) and, over the
    grid of them (one axis per measure), how many genomes the rule accepts, how many of
    those keep accuracy, and the precision (-1 where it accepts none)."""
    candidates = [np.unique(v) for v in values]
    accept = [v[None, :] >= c[:, None] for v, c in zip(values, candidates, strict=True)]
    if len(values) == 1:
        accepted = accept[0].sum(axis=1).astype(float)
        hits = (accept[0] & keeps).sum(axis=1).astype(float)
    else:
        first, second = (a.astype(np.int64) for a in accept)
        accepted = (first @ second.T).astype(float)
        hits = ((first * keeps) @ second.T).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(accepted > 0, hits / accepted, -1.0)
    return candidates, accepted, hits, precision


def fit_thresholds(values: list[np.ndarray], keeps: np.ndarray,
                   target: float) -> tuple[float, ...] | None:
    """The thresholds (one per measure, one or two measures) with precision >= `target`
    and the largest recall on these genomes; None when no thresholds reach `target`."""
    candidates, accepted, hits, precision = _grid(values, keeps)
    good = precision >= target
    if not good.any():
        return None
    score = np.where(good, hits, -1.0)  # recall on these genomes, up to a constant
    best = np.flatnonzero(score == score.max())[0]  # lowest thresholds: indices ascend
    index = np.unravel_index(best, score.shape)
    return tuple(float(c[i]) for c, i in zip(candidates, index, strict=True))


def fit_most_precise(values: list[np.ndarray], keeps: np.ndarray,
                     min_recall: float) -> tuple[float, ...] | None:
    """The thresholds (one or two measures) with the highest precision among those whose
    recall on these genomes is at least `min_recall` (the largest recall, then the lowest
    thresholds, on ties); None when there are no keepers."""
    if not keeps.any():
        return None
    candidates, accepted, hits, precision = _grid(values, keeps)
    enough = hits >= min_recall * keeps.sum() - 1e-9
    top = np.where(enough, precision, -np.inf)
    tied = enough & (top >= top.max() - 1e-12)
    most = np.where(tied, hits, -1.0)
    best = np.flatnonzero(most == most.max())[0]  # lowest thresholds: indices ascend
    index = np.unravel_index(best, most.shape)
    return tuple(float(c[i]) for c, i in zip(candidates, index, strict=True))


def accepts(values: list[np.ndarray], thresholds: tuple[float, ...]) -> np.ndarray:
    """Which genomes a rule with `thresholds` accepts."""
    out = np.ones(len(values[0]), dtype=bool)
    for v, t in zip(values, thresholds, strict=True):
        out &= v >= t
    return out


def fitted(values: list[np.ndarray], keeps: np.ndarray, fit: np.ndarray,
           target: float) -> dict[str, Any]:
    """Thresholds fitted on `fit`, and the rule's numbers on both parts."""
    thresholds = fit_thresholds([v[fit] for v in values], keeps[fit], target)
    if thresholds is None:
        return {"threshold": None}
    accepted = accepts(values, thresholds)
    return {"threshold": thresholds if len(thresholds) > 1 else thresholds[0],
            "fit": rule(accepted[fit], keeps[fit]),
            "held_out": rule(accepted[~fit], keeps[~fit])}


def cross_validated(values: list[np.ndarray], keeps: np.ndarray, target: float,
                    splits: int, seed: int = 0,
                    fit: Callable[[list[np.ndarray], np.ndarray], tuple[float, ...] | None]
                    | None = None) -> dict[str, Any]:
    """Over `splits` random halvings: fit on one half, count on the other. Precision
    and recall pool the held-out counts of every split (a split without thresholds
    accepts nothing); `found` is the share of splits where thresholds were found.
    `fit` (values, keeps) -> thresholds replaces `fit_thresholds` at `target`."""
    if fit is None:
        def fit(v: list[np.ndarray], k: np.ndarray) -> tuple[float, ...] | None:
            return fit_thresholds(v, k, target)
    rng = np.random.default_rng(seed)
    n = len(keeps)
    accepted = hits = keepers = found = 0
    for _ in range(splits):
        half = np.zeros(n, dtype=bool)
        half[rng.permutation(n)[: n // 2]] = True
        keepers += int(keeps[~half].sum())
        thresholds = fit([v[half] for v in values], keeps[half])
        if thresholds is None:
            continue
        found += 1
        held = accepts([v[~half] for v in values], thresholds)
        accepted += int(held.sum())
        hits += int((held & keeps[~half]).sum())
    return {"splits": splits, "found": found / splits,
            "precision": hits / accepted if accepted else None,
            "recall": hits / keepers if keepers else None}
