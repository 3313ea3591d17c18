"""A run's configuration: written once to `runs/NAME/config.json`, read on resume."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from evo import options
from evo.errors import UsageError

CONFIG_NAME = "config.json"
# A cache path that starts with this lies in the run folder and moves with it.
RUN_FOLDER = "{run}"
STRATEGIES = ("nsga2", "aging", "ga")
EVALUATORS = ("tvm", "analytic")
# BatchNorm statistics of the Fisher Potential (evo.capacity.fisher.BN_MODES); default first.
FISHER_BN_MODES = ("running", "batch")
# Measures a --capacity spec is made of (evo.capacity.measures.MEASURES); default first.
CAPACITY_MEASURES = ("flops", "fisher", "params", "synflow", "snip", "grad_norm", "naswot",
                     "jacob_cov")
# The default check and the --threshold each measure has when none is given: the FLOPs
# of the slot convs at 0.6, the calibration study's choice (benchmarks/RESULTS.md:
# no zero-cost rule reaches 90 % precision on trained resnet20 genomes; this is the most
# precise at recall >= 50 % among the measures a search cannot raise for free), 1.0 for
# the others.
DEFAULT_CAPACITY = "flops"
DEFAULT_THRESHOLDS = {"flops": 0.6}
CAPACITY_HELP = ("what makes a neural change legal: one measure, legal when it keeps >= "
                 "--threshold x the original's (flops of the slot convs, the default, at "
                 "0.6; fisher: the Fisher Potential, the paper's; params; a zero-cost "
                 "proxy: synflow, snip, grad_norm, naswot, jacob_cov), or several, each "
                 "with its own threshold, all of which must hold, e.g. "
                 "flops@0.6+fisher@0.8; see docs/capacity.md and benchmarks/RESULTS.md "
                 "for how each predicts trained accuracy")
THRESHOLD_HELP = ("legal when the capacity measure >= threshold x the original's; scales "
                  "every term of a combined check (default: 0.6 for flops alone, 1.0 "
                  "otherwise)")


def default_threshold(capacity: str) -> float:
    """The --threshold a check has when none is given (see DEFAULT_THRESHOLDS)."""
    return DEFAULT_THRESHOLDS.get(capacity, 1.0)


def default_without_genes(capacity: str, neural: bool = True) -> tuple[str, ...]:
    """The gene kinds a search with `capacity` never draws unless told otherwise: those
    the check cannot see (`evo.capacity.check.unseen_genes`), none for a program-only
    search (it draws no neural gene anyway)."""
    from evo.capacity.check import unseen_genes

    return unseen_genes(capacity) if neural else ()


WITHOUT_GENES_HELP = ("comma-separated gene kinds the search never draws, or 'none' "
                      "(default: those the capacity check cannot see: split_rows for "
                      "every check but fisher, since Seq3 keeps FLOPs and parameters and "
                      "cost 7-15 points of trained accuracy on resnet20; see "
                      "docs/capacity.md)")


def parse_gene_list(text: str) -> tuple[str, ...]:
    """--without-genes's value: 'none' or comma-separated names (checked by RunConfig)."""
    if text.strip().lower() == "none":
        return ()
    return tuple(name.strip() for name in text.split(",") if name.strip())


# Measures with per-slot values, which --scope layer can check.
PER_LAYER_MEASURES = ("fisher", "params", "flops")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a search, so that a resume continues it exactly."""

    model: str = "tiny"
    input_shape: tuple[int, ...] | None = None
    strategy: str = "nsga2"
    population: int = 16
    generations: int = 10
    time_budget_s: float | None = None
    seed: int = 0
    evaluator: str = "tvm"
    jobs: int | None = None
    target: str | None = None
    cache: str | None = None
    runner: str | None = None
    backend: str = "loky"
    scheduler: str | None = None
    capacity: str = DEFAULT_CAPACITY
    threshold: float | None = None  # None: default_threshold(capacity)
    scope: str = "network"
    data: str = "synthetic"
    fisher_batch: int = 16
    fisher_bn: str = "running"
    crossover_prob: float = 0.5
    initial_genes: int = 4
    max_attempts: int = 20
    neural: bool = True
    build_timeout_s: float = 60.0
    without_genes: tuple[str, ...] | None = None  # None: default_without_genes(...)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UsageError(f"--strategy {self.strategy!r}: choose one of "
                             f"{', '.join(STRATEGIES)}")
        if self.evaluator not in EVALUATORS:
            raise UsageError(f"--evaluator {self.evaluator!r}: choose one of "
                             f"{', '.join(EVALUATORS)}")
        from evo.capacity.check import canonical, is_single

        object.__setattr__(self, "capacity", canonical(self.capacity))  # UsageError if bad
        if self.threshold is None:
            object.__setattr__(self, "threshold", default_threshold(self.capacity))
        object.__setattr__(self, "without_genes", self._checked_without_genes())
        self._check_numbers()
        if self.fisher_bn not in FISHER_BN_MODES:
            raise UsageError(f"--fisher-bn {self.fisher_bn!r}: choose "
                             f"{' or '.join(FISHER_BN_MODES)}")
        if self.scope not in ("network", "layer"):
            raise UsageError(f"--scope {self.scope!r}: choose network or layer")
        single = is_single(self.capacity)
        if self.scope == "layer" and not (single and self.capacity in PER_LAYER_MEASURES):
            raise UsageError(f"--scope layer: --capacity {self.capacity} has no per-layer "
                             f"values (only {', '.join(PER_LAYER_MEASURES)} alone); use "
                             f"--scope network")

    def _checked_without_genes(self) -> tuple[str, ...]:
        """--without-genes as sorted known gene names; when not given, the genes the
        capacity check cannot see (`default_without_genes`)."""
        if self.without_genes is None:
            return default_without_genes(self.capacity, self.neural)
        if isinstance(self.without_genes, str) or not all(
                isinstance(name, str) for name in self.without_genes):
            raise UsageError(f"--without-genes {self.without_genes!r}: expected gene names")
        from genomes.genes import GENES

        unknown = sorted(set(self.without_genes) - set(GENES))
        if unknown:
            raise UsageError(f"--without-genes: unknown gene(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(GENES)}")
        return tuple(sorted(set(self.without_genes)))

    def _check_numbers(self) -> None:
        """Every numeric field in its range (`evo.options`), finite: NaN or an infinity
        would silently switch off what the field configures."""
        for option, value, allowed in (
                ("--population", self.population, options.POPULATION),
                ("--generations", self.generations, options.GENERATIONS),
                ("--seed", self.seed, options.SEED),
                ("--crossover-prob", self.crossover_prob, options.PROBABILITY),
                ("--initial-genes", self.initial_genes, options.INITIAL_GENES),
                ("--threshold", self.threshold, options.THRESHOLD),
                ("--fisher-batch", self.fisher_batch, options.FISHER_BATCH),
                ("--build-timeout", self.build_timeout_s, options.BUILD_TIMEOUT_S),
                ("max_attempts", self.max_attempts, options.count(1, 10_000))):
            allowed.check(option, value)
        if self.jobs is not None:
            options.JOBS.check("--jobs", self.jobs)
        if self.time_budget_s is not None:
            options.DURATION_S.check("--time-budget", self.time_budget_s)

    def with_cache_in(self, folder: Path) -> RunConfig:
        """This config with a cache path inside `folder` written as `{run}/...`, so that a
        copied, archived or restored run folder measures into its own cache, not the
        original's."""
        if self.cache is None or self.cache.startswith(RUN_FOLDER + "/"):
            return self
        try:
            inner = Path(self.cache).absolute().relative_to(Path(folder).absolute())
        except ValueError:
            return self  # a cache outside the folder, shared by runs
        return replace(self, cache=f"{RUN_FOLDER}/{inner.as_posix()}")

    def cache_path(self, folder: Path) -> str | None:
        """The measurement cache of the run in `folder` (None: the evaluator's default).

        `{run}/...` is resolved against `folder`. An absolute path that ends in the
        folder's own name and file, written before `{run}` existed, means the folder's
        own cache when the folder has that file: the run was moved or copied."""
        if self.cache is None:
            return None
        if self.cache.startswith(RUN_FOLDER + "/"):
            return str(Path(folder) / self.cache[len(RUN_FOLDER) + 1:])
        recorded, own = Path(self.cache), Path(folder) / Path(self.cache).name
        if (recorded.is_absolute() and recorded.parent.name == Path(folder).absolute().name
                and own.is_file()):
            return str(own)
        return self.cache

    def to_json(self) -> dict:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape) if self.input_shape else None
        data["without_genes"] = list(self.without_genes or ())
        return data

    @classmethod
    def from_json(cls, data: dict, where: str = CONFIG_NAME) -> RunConfig:
        if not isinstance(data, dict):
            raise UsageError(f"{where}: expected a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if "fisher_bn" not in data:  # written before the option existed: batch statistics
            data = {**data, "fisher_bn": "batch"}
        if "capacity" not in data:  # written before the option existed: Fisher Potential
            data = {**data, "capacity": "fisher"}
        if data.get("threshold") is None:  # every run wrote it; 1.0 was the only default
            data = {**data, "threshold": 1.0}
        if "without_genes" not in data:  # written before the option: every gene was drawn
            data = {**data, "without_genes": []}
        for name in ("input_shape", "without_genes"):
            if isinstance(data.get(name), list):
                data = {**data, name: tuple(data[name])}
        try:
            return cls(**data)
        except TypeError as exc:
            raise UsageError(f"{where}: {exc}") from None

    def save(self, folder: Path) -> None:
        (Path(folder) / CONFIG_NAME).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> RunConfig:
        path = Path(folder) / CONFIG_NAME
        if path.exists() and not path.is_file():  # a FIFO would block the read
            raise UsageError(f"{path}: not a regular file")
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"{folder}: not a run folder (no {CONFIG_NAME})") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise UsageError(f"{path}: unreadable ({exc.__class__.__name__})") from None
        return cls.from_json(data, str(path))


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `15m`, `2h`, `1h30m`: more than 0, at most a year."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise UsageError(f"--time-budget {text!r}: expected e.g. 90s, 15m, 2h or 1h30m")
        scale = {"h": 3600.0, "m": 60.0, "s": 1.0}
        seconds = sum(float(n) * scale[u] for n, u in parts)
    if not options.DURATION_S.admits(seconds):
        raise UsageError(f"--time-budget {text!r}: must be more than 0 and at most 366 days")
    return seconds
