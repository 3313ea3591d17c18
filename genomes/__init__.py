"""Genomes: transformation sequences for conv layers and their two decoders.

Nothing here knows about the search: `evo/` and `operators/` import this package,
never the other way round.
"""

from genomes.genes import (
    GENES,
    NEURAL_GENES,
    PROGRAM_GENES,
    Gene,
    GeneError,
    GenomeFormatError,
    gene_from_json,
)
from genomes.genome import (
    SCHEMA_VERSION,
    DecodeResult,
    LayerGenome,
    NetworkGenome,
    decode_layer,
    load_genome_file,
)
from genomes.plan import LayerPlan, Piece, ScheduleConfig, initial_plan
from genomes.spec import LayerSpec, SpecError, parse_layer_option

__all__ = [
    "GENES",
    "NEURAL_GENES",
    "PROGRAM_GENES",
    "SCHEMA_VERSION",
    "DecodeResult",
    "Gene",
    "GeneError",
    "GenomeFormatError",
    "LayerGenome",
    "LayerPlan",
    "LayerSpec",
    "NetworkGenome",
    "Piece",
    "ScheduleConfig",
    "SpecError",
    "decode_layer",
    "gene_from_json",
    "initial_plan",
    "load_genome_file",
    "parse_layer_option",
]
