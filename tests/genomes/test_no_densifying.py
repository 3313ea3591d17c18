"""No neural gene adds connections a conv did not have: Seq1 (`split_channels`) and
Seq2 (`unroll_channels`) count groups relative to the piece, so a grouped or
depthwise conv never becomes denser, and `evo slots` lists a gene only where it can
apply (a neural gene with some parameters, a program gene where it changes the
program)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evo.cli import main
from evo.networks import load_network
from evo.networks.transform import transform_network
from evo.search.variation import SEED_SCHEDULES, seed_genome
from genomes.genes import GeneError, InlinePad, SplitChannels, UnrollChannels, Winograd
from genomes.genome import LayerGenome, NetworkGenome, decode_layer
from genomes.plan import initial_plan
from genomes.sampling import NEURAL_GENE_NAMES, random_layer_genome
from genomes.spec import LayerSpec


def test_seq1_on_resnext_grouped_conv_keeps_its_flops() -> None:
    network = load_network("resnext29_2x64d", (1, 3, 32, 32), seed=0)
    spec = network.slot("layer1.0.conv2").spec
    assert spec.groups == 2
    plan = SplitChannels((1, 1)).apply(initial_plan(spec))
    # before the fix each part was dense (groups 1): twice the slot's FLOPs
    assert plan.flops == spec.flops
    assert all(piece.groups == 2 for piece in plan.pieces)


def test_seq2_cannot_densify_a_depthwise_conv() -> None:
    depthwise = LayerSpec(64, 64, 16, 16, 3, groups=64)
    with pytest.raises(GeneError, match="not divisible by piece 0's 64 groups"):
        UnrollChannels(8, 8).apply(initial_plan(depthwise))
    grouped = LayerSpec(64, 64, 16, 16, 3, groups=4)
    plan = UnrollChannels(8, 2).apply(initial_plan(grouped))
    assert [p.groups for p in plan.pieces] == [4, 8]
    assert plan.flops < grouped.flops


@pytest.mark.parametrize("groups", [1, 2, 4, 16, 32])
def test_no_neural_genome_exceeds_the_original_flops(groups: int) -> None:
    spec = LayerSpec(32, 32, 16, 16, 3, groups=groups)
    rng = np.random.default_rng(groups)
    changed = 0
    for _ in range(300):
        genome = random_layer_genome(rng, spec, 3, NEURAL_GENE_NAMES)
        result = decode_layer(spec, genome)
        assert result.ok, result.error
        assert result.plan.flops <= spec.flops, genome.describe()
        changed += result.plan.flops < spec.flops
    assert changed > 0 or groups == spec.in_channels  # the draws did transform the layer


MODEL = '''
from torch import nn
def net():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                         nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
                         nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
'''


def test_slots_list_a_gene_only_where_it_applies(tmp_path: Path, capsys) -> None:
    path = tmp_path / "dwnet.py"
    path.write_text(MODEL)
    assert main(["slots", "--model", f"{path}:net", "--json"]) == 0
    slots = {s["id"]: s["allowed"] for s in json.loads(capsys.readouterr().out)}
    neural = [g for g in slots["3"] if g in NEURAL_GENE_NAMES]
    assert neural == ["split_rows"]  # depthwise already: nothing else can apply
    assert "group" not in slots["0"] and "depthwise" not in slots["0"]  # 3 inputs
    assert main(["slots", "--model", f"{path}:net"]) == 0
    assert "except where they cannot apply: 0 not group, depthwise; 3 not group" in \
        capsys.readouterr().out


def test_decoded_genome_of_a_layer_with_only_program_genes_is_unchanged() -> None:
    spec = LayerSpec(16, 16, 8, 8, 3, groups=16)
    assert decode_layer(spec, LayerGenome(())).plan.flops == spec.flops


SHORTCUT_MODEL = '''
from torch import nn
def net():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.ReLU(),
                         nn.Conv2d(16, 32, 1, stride=2, bias=False), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
'''


def test_padding_genes_are_listed_only_on_padded_convs_yet_admitted_as_no_ops(
        tmp_path: Path, capsys) -> None:
    path = tmp_path / "shortcut.py"
    path.write_text(SHORTCUT_MODEL)
    assert main(["slots", "--model", f"{path}:net", "--json"]) == 0
    slots = {s["id"]: s["allowed"] for s in json.loads(capsys.readouterr().out)}
    assert {"inline_pad", "tile_pad"} <= set(slots["0"])
    assert not {"inline_pad", "tile_pad", "inner_kh", "winograd"} & set(slots["2"])  # 1x1
    assert main(["slots", "--model", f"{path}:net"]) == 0
    assert "tile_pad applies to 1 of 2 slots (padded convs): 0" in capsys.readouterr().out
    # a genome written when they were listed there, or a seed shared by every slot,
    # still decodes: the genes do nothing on an unpadded conv; winograd is refused
    network = load_network(f"{path}:net", (1, 3, 32, 32))
    seed = SEED_SCHEDULES["channels+tile_pad"]
    assert seed_genome(network.slots, seed).layer("2") == seed
    padded = NetworkGenome({"2": LayerGenome((InlinePad(),)), "0": seed})
    assert transform_network(network, padded, plans_only=True).error is None
    refused = transform_network(network, NetworkGenome({"2": LayerGenome((Winograd(2),))}),
                                plans_only=True)
    assert refused.error == "slot 2: gene 'winograd' not allowed here"
