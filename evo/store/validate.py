"""Checks of what a run store holds, so that damage is named before anything uses it.

Every field read from the store is parsed here: JSON that does not parse or has
the wrong shape, a number column holding text, an RNG state numpy does not accept,
a content-addressed row (schema 3) that does not match its hash, a reference to a
slot, gene, layer genome or slot result that does not exist (`reference`).
`check_references` then checks that what the checkpoints name exists: population,
Pareto set, best and parents are individuals of the store, each with its evaluation.
Each check raises `Damage` naming the damaged part; `RunStore` turns it into a
one-line `UsageError` with the store's path.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from evo.sqlite_files import table_columns
from evo.store.records import Checkpoint, Evaluation, Individual
from genomes.genes import GenomeFormatError
from genomes.genome import NetworkGenome, content_hash

# The columns of each table of a schema-3 store, in order.
COLUMNS = {
    "meta": ["key", "value"],
    "slots": ["id", "name"],
    "genes": ["id", "hash", "gene"],
    "layer_genomes": ["id", "hash", "genes"],
    "slot_results": ["id", "hash", "result"],
    "individuals": ["id", "hash", "layers", "generation", "parents", "operator", "detail"],
    "evaluations": ["individual_id", "latency_ms", "fisher", "violation", "error", "results"],
    "generations": ["generation", "population", "front", "best", "rng_state", "next_id",
                    "evaluations", "elapsed_s", "logbook", "finished_at"],
    "sessions": ["id", "pid", "command", "started_at", "ended_at", "reason", "host"],
}
# Schemas 1 and 2 held each whole genome and each evaluation's per-slot results in its
# row, and no content tables; schema 1's sessions had no `host`.
LEGACY_COLUMNS = {
    "individuals": ["id", "hash", "genome", "generation", "parents", "operator", "detail"],
    "evaluations": ["individual_id", "latency_ms", "fisher", "violation", "error", "slots"],
}
CONTENT_TABLES = ("slots", "genes", "layer_genomes", "slot_results")


class Damage(ValueError):
    """A part of the run store that cannot be what the code that wrote it wrote."""


def parse_json(text: Any, kind: type, part: str) -> Any:
    """`text` parsed as JSON holding a `kind` (dict or list)."""
    if not isinstance(text, str):
        raise Damage(f"{part} is {type(text).__name__}, not JSON text")
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise Damage(f"{part} is not valid JSON") from None
    if not isinstance(value, kind):
        raise Damage(f"{part} is a JSON {type(value).__name__}, expected a {kind.__name__}")
    return value


def ids(value: Any, part: str) -> tuple[int, ...]:
    """A JSON list of individual ids (JSON text or already parsed)."""
    items = parse_json(value, list, part) if isinstance(value, str) else value
    if not isinstance(items, list) or not all(_is_int(i) for i in items):
        raise Damage(f"{part} is not a list of individual ids")
    return tuple(items)


def integer(value: Any, part: str, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if not _is_int(value):
        raise Damage(f"{part} is {value!r}, not an integer")
    return value


def number(value: Any, part: str, optional: bool = False) -> float | None:
    """A finite or infinite real (SQLite keeps whatever was put in a REAL column)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise Damage(f"{part} is {value!r}, not a number")
    return value


def text(value: Any, part: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise Damage(f"{part} is {value!r}, not text")
    return value


def rng_state(value: Any, part: str) -> dict[str, Any]:
    """A numpy bit generator state that `default_rng()` accepts (what a resume sets)."""
    state = parse_json(value, dict, part)
    try:
        np.random.default_rng().bit_generator.state = state
    except (ValueError, TypeError, KeyError, OverflowError):
        raise Damage(f"{part} is not a random generator state") from None
    return state


def columns(schema: int) -> dict[str, list[str]]:
    """The tables of a store of `schema` (1, 2 or 3) and their columns, in order."""
    if schema >= 3:
        return COLUMNS
    tables = {t: c for t, c in COLUMNS.items() if t not in CONTENT_TABLES}
    tables.update(LEGACY_COLUMNS)
    if schema == 1:
        tables["sessions"] = COLUMNS["sessions"][:-1]
    return tables


def check_tables(db: sqlite3.Connection, schema: int) -> None:
    """Every table of a store of `schema` with exactly its columns."""
    for table, expected in columns(schema).items():
        found = table_columns(db, table)
        if found != expected:
            what = "is missing" if not found else f"has columns {', '.join(found)}"
            raise Damage(f"table {table} {what} (expected {', '.join(expected)})")


def reference(value: Any, known: Mapping[int, Any], what: str, part: str) -> Any:
    """What the id `value` names among `known` (a table read whole), or `Damage` saying
    that `part` names something that does not exist."""
    if not _is_int(value) or value not in known:
        raise Damage(f"{part} names {what} {value!r}, which does not exist")
    return known[value]


def hashed(stored: Any, text: str, part: str) -> str:
    """The content hash `stored` of a content-addressed row whose content is `text`."""
    if stored != content_hash(text):
        raise Damage(f"{part} does not match its hash {stored!r}")
    return stored


def genome(text: Any, part: str) -> NetworkGenome:
    data = parse_json(text, dict, f"{part} genome")
    try:
        return NetworkGenome.from_json(data)
    except (GenomeFormatError, RecursionError) as exc:
        raise Damage(f"{part} genome is malformed ({str(exc)[:200]})") from None


def individual(row: tuple, genome_of: Callable[[Any, str], NetworkGenome]) -> Individual:
    """An individuals row (id, hash, genome column, generation, parents, operator,
    detail), each field checked; `genome_of(value, part)` reads the genome column (a
    whole genome in old stores, references to the content tables in new ones)."""
    ident, hash_, genome_column, generation, parents, operator, detail = row
    part = f"individual {ident}"
    integer(ident, "an individual id")
    text(hash_, f"{part} hash")
    return Individual(ident, genome_of(genome_column, part),
                      integer(generation, f"{part} generation"),
                      ids(parents, f"{part} parents"), text(operator, f"{part} operator"),
                      parse_json(detail, dict, f"{part} detail"))


def checkpoint(row: tuple) -> Checkpoint:
    """A `generations` row (without finished_at) as a Checkpoint, every field checked."""
    g, population, front, best, rng, next_id, evaluations, elapsed, logbook = row
    part = f"generation {g}"
    integer(g, "a generation number")
    log = parse_json(logbook, dict, f"{part} logbook")
    number(log.get("best_ms"), f"{part} logbook best_ms", optional=True)
    return Checkpoint(g, ids(population, f"{part} population"), ids(front, f"{part} front"),
                      integer(best, f"{part} best", optional=True),
                      rng_state(rng, f"{part} rng_state"), integer(next_id, f"{part} next_id"),
                      integer(evaluations, f"{part} evaluations"),
                      number(elapsed, f"{part} elapsed_s"), log)


def host(text: Any) -> dict[str, Any] | None:
    """A session's recorded host; None when absent or unreadable (it only informs)."""
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def check_references(checkpoints: list[Checkpoint], individuals: Mapping[int, Individual],
                     evaluations: Mapping[int, Evaluation]) -> None:
    """Every id a checkpoint or an individual names exists, with its evaluation; every
    individual belongs to a checkpointed generation; generations count up from 0 and
    each `next_id` lies past the ids made up to it."""
    for ident, individual in individuals.items():
        if ident not in evaluations:
            raise Damage(f"individual {ident} has no evaluation")
        for parent in individual.parents:
            if parent not in individuals:
                raise Damage(f"individual {ident} names parent {parent}, which does not exist")
    last = checkpoints[-1].generation if checkpoints else -1
    newest: dict[int, int] = {}  # generation -> the highest id it made
    for ident, individual in individuals.items():
        if individual.generation > last:
            raise Damage(f"individual {ident} belongs to generation {individual.generation}, "
                         "which has no checkpoint")
        newest[individual.generation] = max(newest.get(individual.generation, 0), ident)
    made = 0
    for index, checkpoint in enumerate(checkpoints):
        g = checkpoint.generation
        if g != index:
            raise Damage(f"generation {g} follows generation {index - 1}; generations are "
                         "missing")
        named = [("population", i) for i in checkpoint.population]
        named += [("front", i) for i in checkpoint.front]
        if checkpoint.best is not None:
            named.append(("best", checkpoint.best))
        for field, ident in named:
            member = individuals.get(ident)
            if member is None or member.generation > g or ident not in evaluations:
                raise Damage(f"generation {g} {field} names individual {ident}, which does "
                             "not exist")
        made = max(made, newest.get(g, 0))
        if checkpoint.next_id <= made:
            raise Damage(f"generation {g} next_id {checkpoint.next_id} is not past its "
                         f"individuals (up to {made})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
