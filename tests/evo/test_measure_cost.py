"""benchmarks.measure_cost: distinct neural candidates as a search draws them, each
measure timed on them."""

from __future__ import annotations

from benchmarks.measure_cost import candidates, cost, main


def test_candidates_are_distinct_neural_genomes_and_every_measure_is_timed(capsys) -> None:
    genomes = candidates("tiny", 3)
    assert len(genomes) == 3 and all(g.neural.layers for g in genomes)
    assert len({g.neural.hash() for g in genomes}) == 3
    assert candidates("tiny", 3) == genomes  # seeded
    original_ms, per_ms = cost("tiny", "flops", "running", genomes, threads=1)
    assert original_ms > 0 and per_ms > 0
    assert main(["--models", "tiny", "--candidates", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[1] for line in lines] == [
        "fisher", "fisher", "params", "flops", "synflow", "snip", "grad_norm", "naswot",
        "jacob_cov"]
