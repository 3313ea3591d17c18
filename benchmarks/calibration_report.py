"""How well each capacity measure predicts the calibration study's trained accuracy.

    .venv/bin/python -m benchmarks.calibration_report [--json] [--splits N]

Joins benchmarks/results/calibration-resnet20.jsonl (validation accuracy after the
study's short protocol) with calibration-resnet20-measures.jsonl (measures at
initialisation). A genome *keeps accuracy* when its validation accuracy is at least
the original's mean (over its seeds) minus one point. For every measure:

    tau, rho     Kendall's tau and Spearman's rho between the measure and accuracy
                 over every trained genome (the original counted once, at its mean)
    at 1.0       the rule "legal when measure >= 1.0 x the original's": how many it
                 accepts, precision (share of the accepted that keep accuracy) and
                 recall (share of the keepers it accepts)
    fitted       the threshold chosen on the fit half of the genomes (the lowest
                 threshold whose precision there is >= 90 %, so recall is largest),
                 with precision and recall on the held-out half
    cv           the same fitted over N random halvings (`--splits`, default 200),
                 precision and recall pooled over the held-out halves
                 (`benchmarks.calibration_rules`)

    synthetic    Kendall's tau over every study genome (trained or not) between the
                 measure on the study's real-image minibatch and on the synthetic one a
                 search uses by default (`benchmarks.calibration_synthetic`); "-" for
                 the counts, which see no data
    on Seq3      the measure's ratio on Seq3 (`split_rows`) everywhere, the largest of
                 INFLATION_PROBES: more weights, the same FLOPs; above 1.0 a search can
                 raise the measure without paying for it in latency

Then the pairs of measures whose joint rule "both >= their thresholds" does best the
same way (thresholds fitted per halving), the five with the largest cross-validated
recall at a cross-validated precision >= 90 %.

Last, the recommended default check, among the measures a search can check
(`SEARCH_SPEC`) whose ranking holds on synthetic data (tau >= MIN_SYNTHETIC_TAU) or
which see no data, and which the inflation probes do not raise: of the single measures
and pairs whose cross-validated precision reaches 90 %, the one with the largest
cross-validated recall (a single measure on ties), its thresholds fitted on every
genome. When none reaches 90 % the report says so and names the single measure or
pair whose rule, fitted for the highest precision at a recall of at least
FALLBACK_RECALL, has the highest cross-validated precision (then recall), its
thresholds fitted that way on every genome. Either is written as a `--capacity` spec.

Measures are compared as ratios to the original's value, oriented so that higher
means more capacity (the short-training loss and jacob_cov are inverted).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from benchmarks.calibration import RESULTS
from benchmarks.calibration_measures import MEASURES
from benchmarks.calibration_rules import (
    cross_validated,
    fit_most_precise,
    fit_thresholds,
    fitted,
    rule,
)
from benchmarks.calibration_synthetic import SYNTHETIC
from benchmarks.training_queue import finished, mean_and_spread
from evo.capacity.measures import oriented

KEEP_POINTS = 1.0
TARGET_PRECISION = 0.9
SPLIT_SEED = 0
ORIENTED = {  # measure -> how its ratio to the original's is formed (higher = more)
    "fisher_batch_network": "ratio", "fisher_batch_layer": "ratio",
    "fisher_running_network": "ratio", "fisher_running_layer": "ratio",
    "params": "ratio", "flops": "ratio", "synflow": "log", "snip": "ratio",
    "grad_norm": "ratio", "naswot": "ratio", "jacob_cov": "inverse",
    "short_accuracy": "ratio", "short_loss": "inverse", "short_train_loss": "inverse",
}


# The study's measures a search's --capacity check can take, as they are written there
# (the Fisher Potential with running statistics is `fisher` at the default --fisher-bn).
SEARCH_SPEC = {"fisher_running_network": "fisher", "params": "params", "flops": "flops",
               "synflow": "synflow", "snip": "snip", "grad_norm": "grad_norm",
               "naswot": "naswot", "jacob_cov": "jacob_cov"}
DATA_FREE = ("params", "flops")
MIN_SYNTHETIC_TAU = 0.8
# Genomes that add weights without adding computation (Seq3: every strip of rows its own
# weights). A measure they raise could be bought back by a search for free.
INFLATION_PROBES = ("seq3-2-all", "seq3-4-all")
FALLBACK_RECALL = 0.5


def relative(measure: str, value: float | None, original: float | None) -> float | None:
    """`value` relative to the original's, oriented so that 1.0 = as much capacity: the
    ratio of their oriented totals (`evo.capacity.measures.oriented`, as a search's
    check compares them)."""
    how = ORIENTED[measure]
    value, original = oriented(how, value), oriented(how, original)
    if value is None or not original:
        return None
    return value / original


def table(results: Path = RESULTS, measures: Path = MEASURES,
          splits: int = 200, synthetic: Path = SYNTHETIC) -> dict[str, Any]:
    """The study's numbers: per measure tau, rho, the rule at 1.0, the rule fitted on
    one half and cross-validated over `splits` halvings; the best pairs."""
    trained, measured = finished(results), finished(measures)
    accuracy: dict[str, list[float]] = {}
    for row in trained.values():
        accuracy.setdefault(row["tags"][0], []).append(100 * row["accuracy"])
    if "original" not in accuracy or "original" not in measured:
        raise SystemExit("calibration_report: the original is not trained and measured yet")
    original, noise = mean_and_spread(accuracy["original"])
    names = sorted(n for n in accuracy if n in measured and n != "original")
    acc = np.array([np.mean(accuracy[n]) for n in names])
    keeps = acc >= original - KEEP_POINTS
    rng = np.random.default_rng(SPLIT_SEED)
    fit = np.zeros(len(names), dtype=bool)
    fit[rng.permutation(len(names))[: len(names) // 2]] = True
    rows, complete = [], {}
    for measure in ORIENTED:
        base = measured["original"]["measures"].get(measure)
        rel = [relative(measure, measured[n]["measures"].get(measure), base) for n in names]
        if any(r is None for r in rel):
            rows.append({"measure": measure, "missing": sum(r is None for r in rel)})
            continue
        r = complete[measure] = np.array(rel)
        with_original_r, with_original_a = np.append(r, 1.0), np.append(acc, original)
        rows.append({
            "measure": measure,
            "tau": float(kendalltau(with_original_r, with_original_a).statistic),
            "rho": float(spearmanr(with_original_r, with_original_a).statistic),
            "at_1": rule(r >= 1.0 - 1e-9, keeps),
            "fitted": fitted([r], keeps, fit, TARGET_PRECISION),
            "cv": cross_validated([r], keeps, TARGET_PRECISION, splits, SPLIT_SEED),
            "synthetic_tau": _synthetic_tau(measure, measured, finished(synthetic)),
            "inflated": _inflated(measure, measured),
        })
    pairs = _best_pairs(complete, keeps, splits, top=len(complete) ** 2)
    return {"original": original, "original_spread": noise,
            "original_seeds": len(accuracy["original"]), "genomes": len(names),
            "keepers": int(keeps.sum()), "rows": rows, "pairs": pairs[:5],
            "recommended": _recommended(rows, pairs, complete, keeps, splits)}


def _recommended(rows: list[dict], pairs: list[dict], values: dict[str, np.ndarray],
                 keeps: np.ndarray, splits: int) -> dict[str, Any] | None:
    """The default check the study supports (see the module docstring); when none
    reaches the target, the most precise eligible rule at in-sample recall >=
    FALLBACK_RECALL (`reaches` False); None when nothing is eligible."""
    eligible = [row["measure"] for row in rows if "cv" in row and _eligible(row)]
    options = [([row["measure"]], row["cv"]) for row in rows if row["measure"] in eligible]
    options += [(p["measures"], p["cv"]) for p in pairs if set(p["measures"]) <= set(eligible)]
    reaching = [(m, cv) for m, cv in options
                if cv["precision"] is not None and cv["precision"] >= TARGET_PRECISION]
    for measures, cv in sorted(reaching, key=lambda o: (-o[1]["recall"], len(o[0]))):
        thresholds = fit_thresholds([values[m] for m in measures], keeps, TARGET_PRECISION)
        if thresholds is not None:
            return _spec(measures, thresholds, cv, reaches=True)
    fallback = []
    for i, first in enumerate(eligible):
        for measures in ([first], *([first, second] for second in eligible[i + 1:])):
            cv = cross_validated([values[m] for m in measures], keeps, TARGET_PRECISION,
                                 splits, SPLIT_SEED, fit=_fallback_fit)
            if cv["precision"] is not None:
                fallback.append((measures, cv))
    if not fallback:
        return None
    measures, cv = max(fallback, key=lambda o: (o[1]["precision"], o[1]["recall"],
                                                -len(o[0])))
    return _spec(measures, _fallback_fit([values[m] for m in measures], keeps), cv,
                 reaches=False)


def _fallback_fit(values: list[np.ndarray], keeps: np.ndarray) -> tuple[float, ...] | None:
    return fit_most_precise(values, keeps, FALLBACK_RECALL)


def _eligible(row: dict[str, Any]) -> bool:
    """A measure a search can check, whose ranking holds on synthetic data (or which
    sees no data), and which the inflation probes do not raise."""
    measure = row["measure"]
    holds = measure in DATA_FREE or (row.get("synthetic_tau") or 0) >= MIN_SYNTHETIC_TAU
    return measure in SEARCH_SPEC and holds and (row.get("inflated") or 0) <= 1.0 + 1e-9


def _spec(measures: list[str], thresholds: tuple[float, ...] | None, cv: dict[str, Any],
          reaches: bool) -> dict[str, Any] | None:
    if thresholds is None:
        return None
    spec = "+".join(f"{SEARCH_SPEC[m]}@{t:.3g}" for m, t in zip(measures, thresholds,
                                                                  strict=True))
    return {"measures": measures, "thresholds": list(thresholds), "spec": spec, "cv": cv,
            "reaches": reaches}


def _inflated(measure: str, measured: dict[str, dict]) -> float | None:
    """The largest ratio to the original's among the inflation probes measured."""
    base = measured["original"]["measures"].get(measure)
    ratios = [relative(measure, measured[n]["measures"].get(measure), base)
              for n in INFLATION_PROBES if n in measured]
    ratios = [r for r in ratios if r is not None]
    return max(ratios) if ratios else None


def _synthetic_tau(measure: str, measured: dict[str, dict], synthetic: dict[str, dict],
                   ) -> float | None:
    """Kendall's tau between the measure's ratios on real and on synthetic data, over
    the genomes measured both ways; None without synthetic values for it."""
    base = measured["original"]["measures"].get(measure)
    pairs = [(relative(measure, row["measures"].get(measure), base),
              synthetic[name]["ratios"].get(measure))
             for name, row in measured.items() if name != "original" and name in synthetic]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    if len(pairs) < 3:
        return None
    return float(kendalltau(*zip(*pairs, strict=True)).statistic)


def _best_pairs(values: dict[str, np.ndarray], keeps: np.ndarray, splits: int,
                top: int = 5) -> list[dict[str, Any]]:
    """The `top` pairs by cross-validated recall among those whose cross-validated
    precision reaches TARGET_PRECISION."""
    names = list(values)
    out = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            cv = cross_validated([values[first], values[second]], keeps, TARGET_PRECISION,
                                 splits, SPLIT_SEED)
            if cv["precision"] is not None and cv["precision"] >= TARGET_PRECISION:
                out.append({"measures": [first, second], "cv": cv})
    return sorted(out, key=lambda p: -p["cv"]["recall"])[:top]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def markdown(study: dict[str, Any]) -> str:
    lines = [f"Original: {study['original']:.2f} % (spread {study['original_spread']:.2f}, "
             f"{study['original_seeds']} seeds); {study['genomes']} genomes, "
             f"{study['keepers']} within {KEEP_POINTS:g} point.", "",
             "| measure | tau | rho | at 1.0: accepted, precision, recall | fitted threshold |"
             " held-out precision, recall | cv precision, recall (thresholds found) |"
             " tau real vs synthetic data | on Seq3 everywhere |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in study["rows"]:
        if "missing" in row:
            lines.append(f"| {row['measure']} | missing for {row['missing']} | | | | | | | |")
            continue
        a, f = row["at_1"], row["fitted"]
        held = f.get("held_out")
        threshold = "-" if f["threshold"] is None else f"{f['threshold']:.3f}"
        held_text = "-" if held is None else f"{_pct(held['precision'])}, {_pct(held['recall'])}"
        lines.append(
            f"| {row['measure']} | {row['tau']:.2f} | {row['rho']:.2f} | {a['accepted']}, "
            f"{_pct(a['precision'])}, {_pct(a['recall'])} | {threshold} | {held_text} | "
            f"{_cv(row['cv'])} | {_number(row['synthetic_tau'])} | "
            f"{_number(row['inflated'])} |")
    lines += ["", f"Pairs (both >= their thresholds), cross-validated over "
                  f"{study['rows'][0].get('cv', {}).get('splits', '-')} halvings, the best "
                  f"with precision >= {TARGET_PRECISION:.0%}:"]
    lines += [f"- {' and '.join(p['measures'])}: {_cv(p['cv'])}" for p in study["pairs"]] \
        or ["- none"]
    best = study["recommended"]
    if best is None:
        verdict = "none reaches it, and no eligible rule has thresholds"
    elif best["reaches"]:
        verdict = f"`--capacity {best['spec']}` ({_cv(best['cv'])})"
    else:
        verdict = (f"none reaches it; the most precise eligible rule fitted at recall >= "
                   f"{FALLBACK_RECALL:.0%} is `--capacity {best['spec']}` "
                   f"(cross-validated {_cv(best['cv'])})")
    lines += ["", f"Recommended default check (cross-validated precision >= "
                  f"{TARGET_PRECISION:.0%}; measures a search checks, whose ranking holds on "
                  f"synthetic data and which Seq3 everywhere does not raise): {verdict}"]
    return "\n".join(lines)


def _cv(cv: dict[str, Any]) -> str:
    return f"{_pct(cv['precision'])}, {_pct(cv['recall'])} ({cv['found']:.0%})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="the numbers as JSON")
    parser.add_argument("--splits", type=int, default=200,
                        help="random halvings for the cross-validated columns (default 200)")
    args = parser.parse_args(argv)
    study = table(splits=args.splits)
    print(json.dumps(study, indent=2) if args.json else markdown(study))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
