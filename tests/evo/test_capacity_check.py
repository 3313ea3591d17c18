"""Capacity checks of several measures (`evo.capacity.check`): the spec grammar, the
combined rule (legal exactly when every term holds), oriented proxy totals, and a search
that checks a combination."""

from __future__ import annotations

import json
import math

import pytest

from evo.capacity import load_batch, parse_data, violation
from evo.capacity.check import CheckMeasure, Term, make_check, parse_check
from evo.capacity.measures import make_measure
from evo.capacity.proxies import jacob_cov, synflow
from evo.errors import UsageError
from evo.networks import load_network, transform_network
from genomes.genome import NetworkGenome

DEPTHWISE = NetworkGenome.from_json({"schema": 1, "layers": {
    "layer1.0.conv1": [{"gene": "depthwise"}]}})


@pytest.fixture(scope="module")
def resnet20():
    return load_network("resnet20", (1, 3, 32, 32), seed=0)


def test_spec_grammar() -> None:
    assert parse_check("fisher") == (Term("fisher", 1.0),)
    assert parse_check("flops@0.65") == (Term("flops", 0.65),)
    assert parse_check("fisher@0.6 + jacob_cov@1") == (Term("fisher", 0.6),
                                                       Term("jacob_cov", 1.0))
    for bad, says in (("", "empty"), ("accuracy", "unknown measure 'accuracy'"),
                      ("flops@", "is not measure or measure@threshold"),
                      ("flops@x", "threshold 'x' of flops is not a positive number"),
                      ("flops@-1", "is not a positive number"),
                      ("flops@nan", "is not a positive number"),
                      ("flops+flops@0.5", "flops appears twice"),
                      ("flops@0.5@2", "is not measure or measure@threshold"),
                      ("flops++params", "is not measure or measure@threshold")):
        with pytest.raises(UsageError, match=says) as caught:
            parse_check(bad)
        assert "\n" not in str(caught.value)


def test_a_run_records_the_check_written_one_way() -> None:
    from evo.search.config import RunConfig

    assert RunConfig(capacity=" flops @0.650 + fisher@0.6").capacity == "flops@0.65+fisher@0.6"
    assert RunConfig(capacity=" params ").capacity == "params"
    assert RunConfig(capacity="params", scope="layer").scope == "layer"


def test_combined_check_is_legal_exactly_when_every_term_holds(resnet20) -> None:
    genome = NetworkGenome.from_json({"schema": 1, "layers": {
        "layer1.0.conv1": [{"gene": "depthwise"}], "layer3.2.conv2": [{"gene": "depthwise"}]}})
    params, flops = make_measure("params", resnet20), make_measure("flops", resnet20)
    p = params.of(genome).total / params.original().total
    f = flops.of(genome).total / flops.original().total
    assert p < f < 1  # the last stage holds most parameters, the first most FLOPs
    between = (p + f) / 2
    for tp, tf, legal in ((p, f, True), (between, f, False), (p, between, True),
                          (p, f + 1e-6, False)):
        check = make_check(f"params@{tp!r}+flops@{tf!r}", resnet20)
        assert isinstance(check, CheckMeasure)
        result = check.of(genome)
        assert result.total == pytest.approx(min(p / tp, f / tf))
        assert check.original().total == 1.0
        amount = violation(check.original(), result)
        assert (amount == 0) is legal, (tp, tf)
        assert violation(check.original(), check.of(NetworkGenome())) == 0
    # --threshold scales every term: at 0.5 the strictest pair above is legal
    strict = make_check(f"params@{2 * p!r}+flops@{2 * f!r}", resnet20)
    assert violation(strict.original(), strict.of(genome)) > 0
    assert violation(strict.original(), strict.of(genome), threshold=0.5) == 0


def test_a_bare_measure_is_the_measure_itself(resnet20) -> None:
    check = make_check("params", resnet20)
    assert not isinstance(check, CheckMeasure)
    assert check.of(DEPTHWISE).per_slot  # per-slot values: --scope layer works
    one = make_check("params@0.5", resnet20)
    assert isinstance(one, CheckMeasure) and one.threads == 1
    assert make_check("params@0.5+snip", resnet20, threads=2).threads == 2
    assert one.of(DEPTHWISE).total == pytest.approx(
        check.of(DEPTHWISE).total / check.original().total / 0.5)


def test_an_error_in_a_term_is_an_error_value(resnet20) -> None:
    check = make_check("params@0.5+flops@0.5", resnet20)
    bad = NetworkGenome.from_json({"schema": 1, "layers": {"nope": [{"gene": "depthwise"}]}})
    result = check.of(bad)
    assert result.total is None and result.error.startswith("params:")
    assert violation(check.original(), result) is None


def test_proxy_totals_are_oriented(resnet20) -> None:
    """synflow is compared by its logarithm, jacob_cov (always negative, higher is better)
    by the inverse of its magnitude: the ratios the calibration report fits."""
    x, y = load_batch(parse_data("synthetic"), (3, 32, 32), 16, 10, 0)
    module = transform_network(resnet20, DEPTHWISE, seed=0).module
    raw_jacob, raw_synflow = jacob_cov(module, x, y), synflow(module, x, y)
    assert raw_jacob < 0 and raw_synflow > 1
    assert make_measure("jacob_cov", resnet20, batch=16).of(DEPTHWISE).total == \
        pytest.approx(1 / abs(raw_jacob), rel=1e-9)
    assert make_measure("synflow", resnet20, batch=16).of(DEPTHWISE).total == \
        pytest.approx(math.log(raw_synflow), rel=1e-9)


def test_a_search_checks_every_term(tmp_path, capsys) -> None:
    from evo.cli import main
    from evo.store.run_store import RunStore

    out = tmp_path / "run"
    spec = "params@0.7+flops@0.8"
    assert main(["run", "--model", "tiny", "--evaluator", "analytic", "--population", "16",
                 "--generations", "3", "--capacity", spec, "--out", str(out),
                 "--cache", str(tmp_path / "c.sqlite"), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["capacity"] == spec
    tiny = load_network("tiny", (1, 3, 32, 32), seed=0)
    params, flops = make_measure("params", tiny), make_measure("flops", tiny)
    store = RunStore.open(out, readonly=True)
    try:
        snapshot = store.load()
    finally:
        store.close()
    checked = 0
    for ident, individual in snapshot.individuals.items():
        evaluation = snapshot.evaluations.get(ident)
        if evaluation is None or evaluation.fisher is None:
            continue
        p = params.of(individual.genome).total / params.original().total
        f = flops.of(individual.genome).total / flops.original().total
        assert evaluation.fisher == pytest.approx(min(p / 0.7, f / 0.8))
        assert (evaluation.violation == 0) == (p >= 0.7 - 1e-12 and f >= 0.8 - 1e-12)
        checked += 1
    assert checked >= 8
    from evo.analysis.pareto_plot import capacity_scale
    from evo.analysis.snapshot import load_run

    assert capacity_scale(load_run(out)) == (1.0, f"margin of {spec}\n(1 = at the "
                                             f"thresholds; higher is better)")
    assert any(e.violation for e in snapshot.evaluations.values())  # the check refused some
    capsys.readouterr()

    for bad, says in ((["--capacity", "params@0.7+"], "is not measure or measure@threshold"),
                      (["--capacity", "params@0.7+flops", "--scope", "layer"],
                       "no per-layer values")):
        assert main(["run", "--model", "tiny", "--evaluator", "analytic", *bad,
                     "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1
        assert not (tmp_path / "bad").exists()


def test_bench_searches_carry_the_check(tmp_path) -> None:
    from evo.bench_searches import _same_search, search_configs

    configs = search_configs("tiny", None, 60.0, 0, 8, tmp_path, capacity="flops@0.5",
                             data="synthetic")
    assert {c.capacity for c in configs.values()} == {"flops@0.5"}
    others = search_configs("tiny", None, 60.0, 0, 8, tmp_path, capacity="fisher")
    with pytest.raises(UsageError, match="capacity 'fisher', not 'flops@0.5'"):
        _same_search(others["search"], configs["search"], tmp_path)
    # the program-only twin makes no neural change: reused whatever the check
    _same_search(others["program-only"], configs["program-only"], tmp_path)
    with pytest.raises(UsageError, match="neural False, not True"):
        _same_search(others["program-only"], configs["search"], tmp_path)
    # the default check is flops at the study's threshold, unless told otherwise
    default = search_configs("tiny", None, 60.0, 0, 8, tmp_path)["search"]
    assert (default.capacity, default.threshold) == ("flops", 0.6)
    with pytest.raises(UsageError, match="threshold 0.6, not 1.0"):
        _same_search(default, configs["search"], tmp_path)
