"""--without-genes: gene kinds a search never draws, by default those its check cannot see."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from evo.errors import UsageError
from evo.networks import load_network
from evo.search.config import RunConfig, parse_gene_list
from evo.search.evaluate import network_view
from evo.search.variation import Variation
from genomes.genome import NetworkGenome

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("capacity", "neural", "expected"), [
    ("flops", True, ("split_rows",)),            # the default check: Seq3 keeps FLOPs
    ("params", True, ("split_rows",)),           # Seq3 raises parameters
    ("flops@0.6+params@1", True, ("split_rows",)),
    ("fisher", True, ()),                        # the Fisher Potential sees Seq3
    ("flops@0.6+fisher@0.8", True, ()),          # one term that sees it is enough
    ("flops", False, ()),                        # program-only draws no neural gene
])
def test_the_default_leaves_out_what_the_check_cannot_see(capacity, neural, expected) -> None:
    assert RunConfig(capacity=capacity, neural=neural).without_genes == expected


def test_given_genes_are_checked_sorted_and_kept_through_json() -> None:
    config = RunConfig(without_genes=("tile", "split_rows", "tile"))
    assert config.without_genes == ("split_rows", "tile")
    assert RunConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert RunConfig(without_genes=()).without_genes == ()  # 'none': every gene
    with pytest.raises(UsageError, match="unknown gene.*seq3"):
        RunConfig(without_genes=("seq3",))
    with pytest.raises(UsageError, match="expected gene names"):
        RunConfig(without_genes="split_rows")
    assert parse_gene_list("none") == ()
    assert parse_gene_list(" split_rows , group ") == ("split_rows", "group")


def test_a_config_written_before_the_option_drew_every_gene() -> None:
    data = RunConfig().to_json()
    del data["without_genes"]
    assert RunConfig.from_json(data).without_genes == ()


def _drawn(without: tuple[str, ...], draws: int = 400) -> Counter:
    """Gene kinds in `draws` mutants of the original tiny (neural search)."""
    view = network_view(load_network("tiny"), without)
    variation = Variation(view, neural=True, share_rate=0.0, spread_rate=0.0)
    rng = np.random.default_rng(1)
    kinds: Counter = Counter()
    for _ in range(draws):
        change = variation.mutate(rng, NetworkGenome())
        if change is not None:
            kinds.update(g.name for layer in change.genome.layers.values()
                         for g in layer.genes)
    return kinds


def test_mutations_never_draw_a_left_out_gene() -> None:
    assert _drawn(())["split_rows"] > 0  # the control: drawn when allowed
    kinds = _drawn(("split_rows",))
    assert kinds["split_rows"] == 0 and kinds["depthwise"] > 0
    view = network_view(load_network("tiny"), ("split_rows",))
    assert all("split_rows" not in slot.allowed for slot in view.slots)


def test_bad_gene_names_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "evo", "run", "--model", "tiny", "--evaluator", "analytic",
         "--without-genes", "split_rows,nope", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nope" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(("argv", "generations"), [
    ([], 10),                                      # RunConfig's default
    (["--time-budget", "30m"], 1_000_000),         # the budget alone stops the search
    (["--time-budget", "30m", "--generations", "5"], 5),
])
def test_a_time_budget_alone_sets_no_generation_limit(argv, generations) -> None:
    from evo.cli import build_parser
    from evo.commands.run import config_from_args

    args = build_parser().parse_args(["run", "--model", "tiny", "--out", "x", *argv])
    assert config_from_args(args).generations == generations
