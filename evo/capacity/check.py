"""A capacity check of one or more measures, each with its own threshold.

    spec  := term ("+" term)*            term := measure ["@" threshold]
    "fisher"                    the measure alone: legal when >= --threshold x the original's
    "flops@0.65"                legal when FLOPs >= 0.65 x the original's
    "fisher@0.6+jacob_cov@1"    legal when both hold

`parse_check(spec)` reads a spec into `Term`s (a one-line UsageError for anything
else). A bare measure name is the measure itself (`evo.capacity.measures.make_measure`),
so the per-layer scope keeps working for it. Any other spec is a `CheckMeasure`: its
total for a genome is the smallest over the terms of
`(measure / original's measure) / threshold`, and the original's total is 1.0, so
`evo.capacity.violation(original, candidate, t)` is 0.0 exactly when every term holds at
`t` times its threshold (--threshold scales them all; 1.0 by default). Each term's
measure caches by the genome's neural part, as does the check.

Measures are compared through their oriented totals (`evo.capacity.measures.oriented`):
synflow by its logarithm, jacob_cov by the inverse of its magnitude.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from evo.capacity.fisher import FisherResult
from evo.capacity.measures import MEASURES, _Cached, make_measure
from evo.errors import UsageError
from evo.networks import Network
from genomes.genome import NetworkGenome

_TERM = re.compile(r"^([a-z_]+)(?:@([^@+]+))?$")
# Gene kinds a measure cannot see: the calibration study's probe of the gene on every
# slot of resnet20 keeps the measure within 2 % of the original's, or raises it, while
# it costs trained accuracy. `split_rows` (Seq3: each strip of rows its own weights, the
# same FLOPs) on every slot, 2 and 4 strips: -6.9 and -15 points at 5 epochs; FLOPs
# 1.00x, parameters 3.97x, snip 1.14x, grad_norm 1.17x, synflow 0.98x, naswot 0.98x,
# jacob_cov 0.99x; only the Fisher Potential drops (0.52-0.89x). benchmarks/RESULTS.md.
UNSEEN_GENES = {measure: ("split_rows",) for measure in MEASURES if measure != "fisher"}


@dataclass(frozen=True)
class Term:
    """One measure of a check and the share of the original's it must keep."""

    measure: str
    threshold: float = 1.0

    def __str__(self) -> str:
        return f"{self.measure}@{self.threshold:g}"


def parse_check(spec: str) -> tuple[Term, ...]:
    """The terms of `spec` (see the module docstring), each measure once."""
    if not isinstance(spec, str) or not spec.strip():
        raise UsageError("--capacity: empty; give a measure such as fisher or flops@0.65")
    terms: list[Term] = []
    for text in spec.replace(" ", "").split("+"):
        match = _TERM.match(text)
        if match is None:
            raise UsageError(f"--capacity {spec!r}: {text!r} is not measure or "
                             f"measure@threshold")
        name, threshold = match.group(1), match.group(2)
        if name not in MEASURES:
            raise UsageError(f"--capacity {spec!r}: unknown measure {name!r}; choose from "
                             f"{', '.join(MEASURES)}")
        value = 1.0
        if threshold is not None:
            try:
                value = float(threshold)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value <= 0:
                raise UsageError(f"--capacity {spec!r}: threshold {threshold!r} of {name} "
                                 f"is not a positive number")
        if any(term.measure == name for term in terms):
            raise UsageError(f"--capacity {spec!r}: {name} appears twice")
        terms.append(Term(name, value))
    return tuple(terms)


def canonical(spec: str) -> str:
    """`spec` written one way: a bare measure as its name, else `name@threshold` terms
    joined by `+` in the order given (spaces dropped, thresholds as `%g`)."""
    terms = parse_check(spec)
    if is_single(spec):
        return terms[0].measure
    return "+".join(str(term) for term in terms)


def unseen_genes(spec: str) -> tuple[str, ...]:
    """The gene kinds no term of the check `spec` can see (`UNSEEN_GENES`), sorted: a
    search with this check would take their cost in accuracy for free."""
    terms = parse_check(spec)
    unseen = set.intersection(*(set(UNSEEN_GENES.get(t.measure, ())) for t in terms))
    return tuple(sorted(unseen))


def is_single(spec: str) -> bool:
    """Whether `spec` is one measure without a threshold of its own (per-layer capable)."""
    terms = parse_check(spec)
    return len(terms) == 1 and "@" not in spec


class CheckMeasure(_Cached):
    """The check of several terms as one measure (see the module docstring)."""

    def __init__(self, terms: tuple[Term, ...], measures: list) -> None:
        super().__init__()
        self.terms, self.measures = terms, measures
        # the torch threads its measures run on (1 for the counts, which need none)
        self.threads = max(getattr(m, "threads", 1) for m in measures)

    def original(self) -> FisherResult:
        return FisherResult(1.0, {})

    def _compute(self, neural: NetworkGenome) -> FisherResult:
        margins = []
        for term, measure in zip(self.terms, self.measures, strict=True):
            original, candidate = measure.original(), measure.of(neural)
            if original.error is not None or not original.total:
                return FisherResult(None, {}, f"{term.measure} of the original: "
                                              f"{original.error or 'zero'}")
            if candidate.error is not None or candidate.total is None:
                return FisherResult(None, {}, f"{term.measure}: {candidate.error}")
            margins.append(candidate.total / original.total / term.threshold)
        return FisherResult(min(margins), {})

    def close(self) -> None:
        for measure in self.measures:
            measure.close()


def make_check(spec: str, network: Network, data: str = "synthetic", seed: int = 0,
               batch: int = 16, bn: str = "running", threads: int = 1, cache_path=None):
    """The capacity check `spec` of `network`: the measure itself for a bare name, else
    a `CheckMeasure` of its terms."""
    terms = parse_check(spec)
    measures = [make_measure(term.measure, network, data=data, seed=seed, batch=batch, bn=bn,
                             threads=threads, cache_path=cache_path) for term in terms]
    if is_single(spec):
        return measures[0]
    return CheckMeasure(terms, measures)
