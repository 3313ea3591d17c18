"""Issue 26, item 4: no option silently disables what it configures.

Every numeric option is range-checked (finite) when parsed, contradictory options are
refused, every `--target` is validated by TVM (its string form accepted): one line,
exit 2, nothing written. Real argparse, real TVM, real run folders.
"""

from __future__ import annotations

import json
import math

import pytest

from evo.cli import main
from evo.errors import UsageError
from evo.search.config import RunConfig

ANALYTIC = ["run", "--model", "tiny", "--evaluator", "analytic", "--population", "2",
            "--generations", "0", "--out", "r", "--cache", "r/c.sqlite", "--quiet"]


def refusal(argv: list[str], capsys) -> str:
    """Run `evo ARGV`; assert it refused with exit 2 and one line; return that line."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's refusal
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("extra,fragment", [
    (["--threshold", "nan"], "argument --threshold: 'nan': must be a number in (0, 1e+06]"),
    (["--threshold", "inf"], "argument --threshold: 'inf'"),
    (["--seed", "-1"], "argument --seed: '-1': must be an integer in [0, 4294967296)"),
    (["--seed", "123456789012345678901234567890"], "argument --seed: '1234567890"),
    (["--fisher-batch", "1000000000"], "argument --fisher-batch: '1000000000': must be an "
                                       "integer in [1, 1024]"),
    (["--crossover-prob", "nan"], "argument --crossover-prob"),
    (["--build-timeout", "nan"], "argument --build-timeout: 'nan'"),
    (["--time-budget", "0"], "--time-budget '0': must be more than 0"),
    (["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler is the Dask scheduler of "
                                              "--backend dask"),
    (["--runner", "rpc://127.0.0.1:9190/k"], "--runner goes with --evaluator tvm"),
    (["--target", "{"], "argument --target: not JSON"),
    (["--target", '{"kind": "llvm", "mcpu": "notacpu"}'],
     "argument --target: mcpu 'notacpu' is not a CPU LLVM knows for "),
    (["--target", '{"kind": "cuda"}'], "kind 'cuda' is not supported"),
])
def test_run_refuses_at_parse_time(extra, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert fragment in refusal([*ANALYTIC, *extra], capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,fragment", [
    (["train", "--data", "synthetic", "--weight-decay", "nan"], "argument --weight-decay"),
    (["train", "--data", "synthetic", "--lr", "inf"], "argument --lr"),
    (["measure", "--model", "tiny", "--build-timeout", "nan"], "argument --build-timeout"),
    (["measure", "--model", "tiny", "--evaluator", "analytic", "--scheduler", "tcp://h:1"],
     "--scheduler is the Dask scheduler"),
    (["verify", "--layer", "8,8,8,8,3,1", "--target", '{"kind":"cuda"}'],
     "argument --target: kind 'cuda' is not supported; evo compiles for and times on CPUs"),
    (["verify", "--layer", "8,8,8,8,3,1", "--seed", "-1"], "argument --seed"),
    (["fisher", "--model", "tiny", "--batch", "1000000000"], "argument --batch"),
    (["resume", "nowhere", "--time-budget", "0"], "--time-budget '0': must be more than 0"),
    (["resume", "nowhere", "--build-timeout", "nan"], "argument --build-timeout"),
])
def test_other_commands_refuse_at_parse_time(argv, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert fragment in refusal(argv, capsys)
    assert list(tmp_path.iterdir()) == []


def test_tvm_string_form_target_is_accepted_and_stored_as_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*ANALYTIC, "--target", "llvm -mcpu=znver3 -mattr=+avx2,+fma",
                 "--build-timeout", "90"]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert json.loads(config["target"]) == {"kind": "llvm", "mcpu": "znver3",
                                            "mattr": ["+avx2", "+fma"]}
    assert config["build_timeout_s"] == 90.0


@pytest.mark.parametrize("field,value", [("threshold", math.nan), ("threshold", math.inf),
                                         ("seed", -1), ("seed", 10**30),
                                         ("fisher_batch", 10**9),
                                         ("build_timeout_s", math.nan)])
def test_a_config_json_with_such_values_is_refused_too(field, value):
    with pytest.raises(UsageError, match="must be"):
        RunConfig.from_json({**RunConfig().to_json(), field: value})


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == "evo 0.1.0"
