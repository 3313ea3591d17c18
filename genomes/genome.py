"""Layer and network genomes: canonical JSON, content hashes, and decoding to a plan."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genomes.genes import Gene, GeneError, GenomeFormatError, gene_from_json
from genomes.plan import LayerPlan, initial_plan
from genomes.spec import LayerSpec

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerGenome:
    """An ordered sequence of genes for one conv layer (a slot)."""

    genes: tuple[Gene, ...] = ()

    def to_json(self) -> list[dict[str, Any]]:
        return [g.to_json() for g in self.genes]

    @classmethod
    def from_json(cls, data: Any, where: str = "genes") -> LayerGenome:
        if not isinstance(data, list):
            raise GenomeFormatError(f"{where}: expected a list of genes, got {type(data).__name__}")
        return cls(tuple(gene_from_json(item, f"{where}[{i}]") for i, item in enumerate(data)))

    @property
    def neural(self) -> LayerGenome:
        """The genes that change what the layer computes (what capacity depends on)."""
        return LayerGenome(tuple(g for g in self.genes if g.kind == "neural"))

    @property
    def program(self) -> LayerGenome:
        return LayerGenome(tuple(g for g in self.genes if g.kind == "program"))

    def canonical(self) -> str:
        return canonical_json(self.to_json())

    def hash(self) -> str:
        return content_hash(self.canonical())

    def describe(self) -> str:
        return " ; ".join(g.label() for g in self.genes) or "(identity)"

    def __len__(self) -> int:
        return len(self.genes)


@dataclass(frozen=True)
class NetworkGenome:
    """One layer genome per slot id; slots not named keep the original layer."""

    layers: dict[str, LayerGenome] = field(default_factory=dict)

    def layer(self, slot_id: str) -> LayerGenome:
        return self.layers.get(slot_id, LayerGenome())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "layers": {k: v.to_json() for k, v in sorted(self.layers.items()) if v.genes},
        }

    @classmethod
    def from_json(cls, data: Any) -> NetworkGenome:
        if not isinstance(data, dict):
            raise GenomeFormatError(f"genome: expected a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"schema", "layers"}
        if unknown:
            raise GenomeFormatError(f"genome: unknown field(s) {', '.join(sorted(unknown))}")
        if data.get("schema") != SCHEMA_VERSION:
            raise GenomeFormatError(f"genome.schema: expected {SCHEMA_VERSION}, "
                                    f"got {data.get('schema')!r}")
        layers = data.get("layers", {})
        if not isinstance(layers, dict):
            raise GenomeFormatError("genome.layers: expected an object mapping slot id to genes")
        return cls({str(k): LayerGenome.from_json(v, f"layers.{k}") for k, v in layers.items()})

    def canonical(self) -> str:
        return canonical_json(self.to_json())

    def hash(self) -> str:
        return content_hash(self.canonical())

    @property
    def neural(self) -> NetworkGenome:
        return NetworkGenome({k: v.neural for k, v in self.layers.items() if v.neural.genes})

    @property
    def program(self) -> NetworkGenome:
        return NetworkGenome({k: v.program for k, v in self.layers.items() if v.program.genes})


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_genome_file(path: str | Path) -> NetworkGenome | LayerGenome:
    """Read a genome JSON file: a network genome object or a bare list of genes.

    Raises GenomeFormatError with a one-line message for a missing, unreadable or
    malformed file.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise GenomeFormatError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GenomeFormatError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenomeFormatError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        if isinstance(data, list):
            return LayerGenome.from_json(data)
        return NetworkGenome.from_json(data)
    except GenomeFormatError as exc:
        raise GenomeFormatError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class DecodeResult:
    """Either a plan or the reason the genome does not apply to this layer."""

    plan: LayerPlan | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.plan is not None


def decode_layer(spec: LayerSpec, genome: LayerGenome) -> DecodeResult:
    """Apply the genes in order to the untransformed layer; never raises for a bad genome."""
    plan = initial_plan(spec)
    for position, gene in enumerate(genome.genes):
        try:
            plan = gene.apply(plan)
        except GeneError as exc:
            return DecodeResult(None, f"gene {position}: {exc}")
    return DecodeResult(plan)
