"""Canonical JSON, hashes, parse errors that name the field, gene preconditions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genomes import (
    GenomeFormatError,
    LayerGenome,
    LayerSpec,
    NetworkGenome,
    decode_layer,
    load_genome_file,
    parse_layer_option,
)
from genomes.genes import Bottleneck, Depthwise, Group, SplitRows, Tile
from genomes.sampling import random_layer_genome

SPEC = LayerSpec(64, 64, 16, 16, 3, 1)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_json_round_trip_preserves_genome_and_hash(seed):
    genome = random_layer_genome(np.random.default_rng(seed), SPEC, 8)
    text = json.dumps(genome.to_json())
    again = LayerGenome.from_json(json.loads(text))
    assert again == genome
    assert again.hash() == genome.hash()
    network = NetworkGenome({"a": genome, "b": LayerGenome()})
    assert NetworkGenome.from_json(json.loads(json.dumps(network.to_json()))).hash() == \
        network.hash()


def test_hash_depends_on_gene_order_and_parameters():
    a = LayerGenome((Group(2), Tile("co", 8)))
    b = LayerGenome((Tile("co", 8), Group(2)))
    c = LayerGenome((Group(2), Tile("co", 16)))
    assert len({a.hash(), b.hash(), c.hash()}) == 3
    assert a.hash() == LayerGenome((Group(2), Tile("co", 8))).hash()


def test_empty_layers_do_not_change_the_network_hash():
    assert NetworkGenome({"x": LayerGenome()}).hash() == NetworkGenome().hash()


def test_neural_part_ignores_program_genes():
    genome = NetworkGenome({"a": LayerGenome((Group(2), Tile("co", 8)))})
    assert genome.neural == NetworkGenome({"a": LayerGenome((Group(2),))})
    assert genome.neural.hash() == NetworkGenome({"a": LayerGenome((Group(2), Tile("ow", 4)))}
                                                 ).neural.hash()


@pytest.mark.parametrize("document,fragment", [
    ({"schema": 1, "layers": {"c1": [{"gene": "group", "groups": 0}]}},
     "layers.c1[0].group.groups"),
    ({"schema": 1, "layers": {"c1": [{"gene": "tile", "axis": "zz"}]}}, "layers.c1[0].tile.axis"),
    ({"schema": 1, "layers": {"c1": [{"gene": "nope"}]}}, "layers.c1[0].gene: unknown gene"),
    ({"schema": 1, "layers": {"c1": [{"gene": "group", "size": 2}]}}, "unknown field(s) for group"),
    ({"schema": 1, "layers": {"c1": {"gene": "group"}}}, "layers.c1: expected a list"),
    ({"schema": 99, "layers": {}}, "genome.schema"),
    ({"schema": 1, "layers": {"c1": [{"gene": "reorder", "order": ["co", "co", "ow"]}]}},
     "reorder.order must be a permutation"),
    ({"schema": 1, "layers": {"c1": [{"gene": "group", "groups": 2, "piece": -1}]}},
     "group.piece"),
])
def test_parse_errors_name_the_bad_field(document, fragment):
    with pytest.raises(GenomeFormatError) as info:
        NetworkGenome.from_json(document)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_load_genome_file_errors_are_one_line(tmp_path):
    with pytest.raises(GenomeFormatError, match="no such file"):
        load_genome_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenomeFormatError, match="not JSON"):
        load_genome_file(bad)


@pytest.mark.parametrize("genes,message", [
    ((Group(3),), "64 input channels, not divisible by 3 groups"),
    ((Depthwise(), Depthwise()), "already depthwise"),
    ((SplitRows(3),), "16 rows, not divisible into 3 strips"),
    ((Group(2, piece=1),), "only 1 piece"),
    ((Bottleneck(64), Group(2)), "not divisible by 2 groups"),
])
def test_preconditions_are_reported_in_words(genes, message):
    result = decode_layer(SPEC, LayerGenome(genes))
    assert not result.ok
    assert message in result.error


def test_bottleneck_of_one_piece_shifts_the_pieces_after_it():
    from genomes.genes import SplitChannels

    plan = decode_layer(SPEC, LayerGenome((SplitChannels((1, 1, 1, 1)), Bottleneck(2, piece=1))))
    assert plan.ok
    ranges = [(p.out_start, p.out_stop) for p in plan.plan.pieces]
    assert ranges == [(0, 16), (16, 24), (24, 40), (40, 56)]
    assert plan.plan.out_channels == 56


def test_layer_option_parsing():
    assert parse_layer_option("16,32,8,8,3,2") == LayerSpec(16, 32, 8, 8, 3, 2)
    assert parse_layer_option("16,32,8,8,3,1,4,2") == LayerSpec(16, 32, 8, 8, 3, 1, groups=4,
                                                                 batch=2)
    for bad in ("16,32,8", "a,b,c,d,e,f", "16,32,8,8,3,0", "15,32,8,8,3,1,2"):
        with pytest.raises(ValueError):
            parse_layer_option(bad)
