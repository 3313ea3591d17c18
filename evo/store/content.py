"""Schema 3's content-addressed tables: each distinct part of a run stored once.

A search makes thousands of individuals that differ from their parents in one or two
slots, and measures the same layer genomes again and again; storing each whole
network genome and all its per-slot results in every row made about 12 KB per
individual on ResNet-18. Schema 3 stores each distinct content once and rows name it:

- `slots` (id, name): every slot id (conv layer) a genome or an evaluation names;
- `genes` (id, hash, gene): every distinct gene, its canonical JSON;
- `layer_genomes` (id, hash, genes): every distinct layer genome, as the JSON list of
  its genes' ids; `hash` is `LayerGenome.hash()`, the hash of its canonical JSON;
- `slot_results` (id, hash, result): every distinct per-slot result of an evaluation
  (latency, spread, threads, ...), its canonical JSON;
- `individuals.layers`: JSON object slot id -> layer genome id (slots whose layer
  genome has genes); `evaluations.results`: JSON object slot id -> slot result id.

`hash` is `content_hash` (sha256, 16 hex digits) of the canonical JSON, unique per
table: `insert_rows` finds what is already stored by it and writes only what is
new. Reading checks every row against its hash and every id against its table
(`evo.store.validate`), so a damaged or dangling part is named, never used.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from evo.store import validate as v
from evo.store.records import Evaluation, Individual
from genomes.genes import Gene, GenomeFormatError, gene_from_json
from genomes.genome import LayerGenome, NetworkGenome, canonical_json, content_hash

# The tables schema 3 added or changed (`RunStore.create` makes them with the others;
# the upgrade of a schema-1 or -2 store replaces its individuals and evaluations).
TABLES = (
    "CREATE TABLE slots (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    "CREATE TABLE genes (id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, gene TEXT NOT NULL)",
    "CREATE TABLE layer_genomes (id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, "
    "genes TEXT NOT NULL)",
    "CREATE TABLE slot_results (id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, "
    "result TEXT NOT NULL)",
    "CREATE TABLE individuals (id INTEGER PRIMARY KEY, hash TEXT NOT NULL, layers TEXT NOT NULL, "
    "generation INTEGER NOT NULL, parents TEXT NOT NULL, operator TEXT NOT NULL, "
    "detail TEXT NOT NULL)",
    "CREATE INDEX individuals_hash ON individuals(hash)",
    "CREATE TABLE evaluations (individual_id INTEGER PRIMARY KEY REFERENCES individuals(id), "
    "latency_ms REAL, fisher REAL, violation REAL, error TEXT, results TEXT NOT NULL)",
)

# What a content table's rows are found by: its unique key column.
_KEYS = {"slots": "name", "genes": "hash", "layer_genomes": "hash", "slot_results": "hash"}


class ContentIndex:
    """The ids of the rows of the content tables, by key, for one write transaction:
    each distinct slot name, gene, layer genome and slot result is looked up (by its
    unique key) or inserted once, and remembered until the transaction ends."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._ids: dict[str, dict[str, int]] = {table: {} for table in _KEYS}

    def genome_row(self, genome: NetworkGenome) -> str:
        """`individuals.layers` for `genome`: slot id -> layer genome id, as JSON."""
        refs = {str(self._id("slots", slot, lambda s=slot: (s,))): self._layer(layer)
                for slot, layer in sorted(genome.layers.items()) if layer.genes}
        return canonical_json(refs)

    def results_row(self, slots: dict[str, Any]) -> str:
        """`evaluations.results` for an evaluation's per-slot results, as JSON."""
        refs = {}
        for slot, result in sorted(slots.items()):
            text = canonical_json(result)
            hash_ = content_hash(text)
            refs[str(self._id("slots", slot, lambda s=slot: (s,)))] = self._id(
                "slot_results", hash_, lambda h=hash_, t=text: (h, t))
        return canonical_json(refs)

    def _layer(self, layer: LayerGenome) -> int:
        hash_ = layer.hash()

        def row() -> tuple[str, str]:
            ids = []
            for gene in layer.genes:
                text = canonical_json(gene.to_json())
                gene_hash = content_hash(text)
                ids.append(self._id("genes", gene_hash, lambda h=gene_hash, t=text: (h, t)))
            return hash_, json.dumps(ids, separators=(",", ":"))

        return self._id("layer_genomes", hash_, row)

    def _id(self, table: str, key: str, row: Callable[[], tuple]) -> int:
        """The id of the row of `table` with `key`, inserting `row()` if there is none."""
        ids = self._ids[table]
        found = ids.get(key)
        if found is None:
            hit = self._db.execute(f"SELECT id FROM {table} WHERE {_KEYS[table]} = ?",
                                   (key,)).fetchone()
            if hit is not None:
                found = hit[0]
            else:
                columns = v.COLUMNS[table][1:]
                found = int(self._db.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})", row()).lastrowid)
            ids[key] = found
        return found


def insert_rows(db: sqlite3.Connection, individuals: Iterable[Individual],
                evaluations: dict[int, Evaluation]) -> None:
    """Insert individuals and evaluations (by individual id), and what they name that the
    content tables lack, in the caller's transaction."""
    index = ContentIndex(db)
    db.executemany(
        "INSERT INTO individuals VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i.id, i.hash, index.genome_row(i.genome), i.generation, json.dumps(list(i.parents)),
          i.operator, json.dumps(i.detail, sort_keys=True)) for i in individuals])
    db.executemany(
        "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?)",
        [(ident, e.latency_ms, e.fisher, e.violation, e.error, index.results_row(e.slots))
         for ident, e in evaluations.items()])


def read_individuals(db: sqlite3.Connection) -> dict[int, Individual]:
    """Every individual by id, its genome rebuilt from the content tables, each field
    and each reference checked."""
    slots = _slots(db)
    layers = _layer_genomes(db, _genes(db))
    def genome_of(refs: Any, part: str) -> NetworkGenome:
        return NetworkGenome(_named(refs, slots, layers, "layer genome", f"{part} layers"))

    rows = db.execute(f"SELECT {', '.join(v.COLUMNS['individuals'])} "
                      "FROM individuals ORDER BY id")
    return {row[0]: v.individual(row, genome_of) for row in rows}


def read_evaluations(db: sqlite3.Connection) -> dict[int, Evaluation]:
    """Every evaluation by individual id, its per-slot results rebuilt from the content
    tables, each field and each reference checked."""
    slots = _slots(db)
    results = _slot_results(db)
    out = {}
    for ident, latency, fisher, violation, error, refs in db.execute(
            f"SELECT {', '.join(v.COLUMNS['evaluations'])} FROM evaluations"):
        part = f"evaluation of individual {ident}"
        v.integer(ident, "an evaluation's individual id")
        out[ident] = Evaluation(
            v.number(latency, f"{part} latency_ms", optional=True),
            v.number(fisher, f"{part} fisher", optional=True),
            v.number(violation, f"{part} violation", optional=True),
            v.text(error, f"{part} error", optional=True),
            _named(refs, slots, results, "slot result", f"{part} results"))
    return out


def _named(text: Any, slots: dict[int, str], known: dict[int, Any], what: str,
           part: str) -> dict[str, Any]:
    """A row's JSON object slot id -> content id, as slot name -> content, in the order
    of the slot names (as the whole JSON of schemas 1 and 2 was read)."""
    refs = v.parse_json(text, dict, part)
    out = {}
    for slot, ref in refs.items():
        ident = int(slot) if slot.isascii() and slot.isdigit() else slot
        name = v.reference(ident, slots, "slot", part)
        out[name] = v.reference(ref, known, what, f"{part} slot {name}")
    return dict(sorted(out.items()))


def _slots(db: sqlite3.Connection) -> dict[int, str]:
    out = {}
    for ident, name in db.execute("SELECT id, name FROM slots"):
        out[v.integer(ident, "a slot id")] = v.text(name, f"slot {ident} name")
    return out


def _genes(db: sqlite3.Connection) -> dict[int, tuple[Gene, str]]:
    """Every gene by id, with the canonical JSON its hash was made of."""
    out = {}
    for ident, hash_, text in db.execute("SELECT id, hash, gene FROM genes"):
        part = f"gene {v.integer(ident, 'a gene id')}"
        data = v.parse_json(text, dict, part)
        v.hashed(hash_, text, part)
        try:
            out[ident] = (gene_from_json(data, part), text)
        except (GenomeFormatError, RecursionError) as exc:
            raise v.Damage(f"{part} is malformed ({str(exc)[:200]})") from None
    return out


def _layer_genomes(db: sqlite3.Connection,
                   genes: dict[int, tuple[Gene, str]]) -> dict[int, LayerGenome]:
    """Every layer genome by id, its genes named by id; its hash is that of the
    canonical JSON list of its genes, as `LayerGenome.hash()` makes it."""
    out = {}
    for ident, hash_, text in db.execute("SELECT id, hash, genes FROM layer_genomes"):
        part = f"layer genome {v.integer(ident, 'a layer genome id')}"
        named = [v.reference(g, genes, "gene", part) for g in v.parse_json(text, list, part)]
        v.hashed(hash_, "[" + ",".join(t for _, t in named) + "]", part)
        out[ident] = LayerGenome(tuple(gene for gene, _ in named))
    return out


def _slot_results(db: sqlite3.Connection) -> dict[int, Any]:
    out = {}
    for ident, hash_, text in db.execute("SELECT id, hash, result FROM slot_results"):
        part = f"slot result {v.integer(ident, 'a slot result id')}"
        value = v.parse_json(text, object, part)
        v.hashed(hash_, text, part)
        out[ident] = value
    return out
