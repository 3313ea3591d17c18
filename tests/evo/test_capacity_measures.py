"""Capacity measures other than the Fisher Potential: plan-based parameter and FLOP
counts agree with the transformed PyTorch module; proxies cache by neural part."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evo.capacity import violation
from evo.capacity.measures import make_measure
from evo.errors import UsageError
from evo.networks import load_network, transform_network
from genomes.genome import NetworkGenome

GENOME = NetworkGenome.from_json({"schema": 1, "layers": {
    "layer1.0.conv1": [{"gene": "bottleneck", "factor": 2}],
    "layer2.1.conv2": [{"gene": "depthwise"}],
    "layer3.0.conv1": [{"gene": "split_channels", "groups": [1, 4]}],
    "layer3.2.conv2": [{"gene": "group", "groups": 4}, {"gene": "tile", "axis": "co",
                                                        "factor": 8}]}})


@pytest.fixture(scope="module")
def resnet20():
    return load_network("resnet20", (1, 3, 32, 32), seed=0)


def test_plan_params_and_flops_match_the_transformed_module(resnet20) -> None:
    module = transform_network(resnet20, GENOME, seed=0).module
    conv_params = sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))
    macs = 0

    def count(m, _args, out):
        nonlocal macs
        macs += out.numel() * m.weight[0].numel()

    hooks = [m.register_forward_hook(count) for m in module.modules()
             if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        module.eval()(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    params = make_measure("params", resnet20).of(GENOME)
    flops = make_measure("flops", resnet20).of(GENOME)
    assert params.total == conv_params  # the bottleneck's effect on conv2 included
    assert flops.total == 2 * macs
    assert params.per_slot["layer1.0.conv2"] == 16 * 8 * 9


def test_a_measure_is_a_legality_rule(resnet20) -> None:
    params = make_measure("params", resnet20)
    ratio = params.of(GENOME).total / params.original().total
    assert 0.5 < ratio < 1
    assert violation(params.original(), params.of(GENOME), threshold=ratio - 1e-9) == 0
    assert violation(params.original(), params.of(GENOME), threshold=1.0) == \
        pytest.approx(1 - ratio)
    program_only = NetworkGenome.from_json({"schema": 1, "layers": {
        "conv1": [{"gene": "tile", "axis": "co", "factor": 4}]}})
    assert params.of(program_only) == params.original()


def test_proxy_measure_caches_by_neural_part(resnet20) -> None:
    snip = make_measure("snip", resnet20, batch=8)
    first = snip.of(GENOME)
    assert first.total is not None and first.total > 0
    computed = snip.computed
    assert snip.of(GENOME.neural) == first and snip.computed == computed
    bad = NetworkGenome.from_json({"schema": 1, "layers": {"nope": [{"gene": "depthwise"}]}})
    assert snip.of(bad).error is not None


def test_unknown_measure_is_one_line(resnet20) -> None:
    with pytest.raises(UsageError, match="choose one of fisher, params, flops"):
        make_measure("accuracy", resnet20)


def test_a_search_checks_the_chosen_measure(tmp_path) -> None:
    import json

    from evo.cli import main
    from evo.store.run_store import RunStore

    out = tmp_path / "run"
    assert main(["run", "--model", "tiny", "--evaluator", "analytic", "--population", "16",
                 "--generations", "3", "--capacity", "params", "--threshold", "0.6",
                 "--out", str(out), "--cache", str(tmp_path / "c.sqlite"), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["capacity"] == "params"
    measure = make_measure("params", load_network("tiny", (1, 3, 32, 32), seed=0))
    original = measure.original().total
    store = RunStore.open(out, readonly=True)
    try:
        snapshot = store.load()
    finally:
        store.close()
    legal = [e for e in snapshot.evaluations.values() if e.violation == 0]
    assert legal and any(e.fisher < original for e in legal)  # neural changes let through
    assert all(e.fisher >= 0.6 * original - 1e-6 for e in legal)
    refused = [e for e in snapshot.evaluations.values() if e.violation]
    assert all(e.fisher == pytest.approx(original * (0.6 - e.violation)) for e in refused)


def test_layer_scope_needs_a_per_layer_measure(tmp_path, capsys) -> None:
    from evo.cli import main

    assert main(["run", "--model", "tiny", "--evaluator", "analytic", "--capacity", "snip",
                 "--scope", "layer", "--out", str(tmp_path / "r")]) == 2
    assert "no per-layer values" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_network_without_logits_can_be_searched_program_only(tmp_path, capsys) -> None:
    """A backbone (feature maps out, no classifier): program genes need no capacity
    measure; a measure that needs logits is refused in one line, nothing written."""
    from pathlib import Path

    from evo.capacity.measures import Unchanged, search_measure
    from evo.cli import main
    from evo.search.config import RunConfig

    model = f"{Path(__file__).with_name('bench_nets.py')}:one_conv"
    base = ["run", "--model", model, "--input-shape", "1,3,8,8", "--evaluator", "analytic",
            "--population", "4", "--generations", "1", "--quiet"]
    for extra, needs in ((["--capacity", "fisher"], "the Fisher Potential needs them"),
                         (["--capacity", "synflow"], "synflow needs them")):
        assert main([*base, *extra, "--out", str(tmp_path / "neural")]) == 2
        err = capsys.readouterr().err.strip()
        assert needs in err and "--program-only" in err and len(err.splitlines()) == 1
        assert not (tmp_path / "neural").exists()
    assert main([*base, "--program-only", "--out", str(tmp_path / "p")]) == 0
    network = load_network(model, (1, 3, 8, 8))
    measure = search_measure(RunConfig(model=model, neural=False), network)
    assert isinstance(measure, Unchanged) and measure.original().total == 1.0
    assert measure.of(GENOME).error  # neural genes are never measured as unchanged
    # flops need no logits: a neural search of the backbone with them runs, and they
    # are the default check
    assert main([*base, "--capacity", "flops", "--threshold", "0.5",
                 "--out", str(tmp_path / "f")]) == 0
    assert main([*base, "--out", str(tmp_path / "default")]) == 0
    classifier = load_network("tiny")
    assert not isinstance(search_measure(RunConfig(neural=False), classifier), Unchanged)
