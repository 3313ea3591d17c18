"""The calibration genomes' measures as a search computes them on synthetic data.

    .venv/bin/python -m benchmarks.calibration_synthetic

The study measures every genome on a minibatch of real training images
(`benchmarks.calibration_measures`); a search measures on `--data`, `synthetic` by
default. For each genome this appends one JSON line to
benchmarks/results/calibration-resnet20-synthetic.jsonl (genomes already there are
skipped) with the ratio to the original's of each measure as a search's check takes
it (`evo.capacity.measures.make_measure`, oriented totals), on a synthetic minibatch
of the study's size (64) and seed (0). `calibration_report` then shows, per measure,
Kendall's tau between these ratios and the study's: a measure a check can rely on
ranks the genomes the same whatever the minibatch.
"""

from __future__ import annotations

import json

from benchmarks.calibration_genomes import MODEL, study_genomes
from benchmarks.calibration_measures import FISHER_BATCH, PROXY_BATCH
from benchmarks.training_queue import REPO, finished
from evo.capacity.measures import PROXY_MEASURES, make_measure
from evo.networks import load_network
from genomes.genome import NetworkGenome

SYNTHETIC = REPO / "benchmarks" / "results" / "calibration-resnet20-synthetic.jsonl"
# the study's measure name -> (search measure, BatchNorm mode of the Fisher Potential)
COUNTERPARTS = {"fisher_running_network": ("fisher", "running"),
                "fisher_batch_network": ("fisher", "batch"),
                **{name: (name, "running") for name in PROXY_MEASURES}}


def main() -> int:
    network = load_network(MODEL, (1, 3, 32, 32), seed=0)
    measures = {study: make_measure(name, network, data="synthetic", seed=0,
                                    batch=FISHER_BATCH if name == "fisher" else PROXY_BATCH,
                                    bn=bn)
                for study, (name, bn) in COUNTERPARTS.items()}
    done = finished(SYNTHETIC)
    for name, genome_json in study_genomes().items():
        if name in done:
            continue
        genome = NetworkGenome.from_json(genome_json)
        ratios = {}
        for study, measure in measures.items():
            original, value = measure.original().total, measure.of(genome).total
            ratios[study] = None if value is None or not original else value / original
        SYNTHETIC.parent.mkdir(parents=True, exist_ok=True)
        with SYNTHETIC.open("a") as handle:
            handle.write(json.dumps({"name": name, "ratios": ratios}) + "\n")
        print(name, " ".join(f"{k} {'-' if v is None else f'{v:.3f}'}"
                             for k, v in ratios.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
