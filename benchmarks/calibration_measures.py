"""Every capacity measure of every calibration genome, at initialisation (no training).

    .venv/bin/python -m benchmarks.calibration_measures [--threads N]

For each genome of `benchmarks.calibration_genomes` one JSON line is appended to
benchmarks/results/calibration-resnet20-measures.jsonl (genomes already there are
skipped) with:

    fisher_{batch,running}_{network,layer}  the Fisher Potential (`evo.capacity`) with
        BatchNorm on batch or running statistics, as a ratio to the original's: at
        network scope the totals' ratio, at layer scope the smallest per-slot ratio
        (what `--fisher-scope layer` checks); minibatch of FISHER_BATCH images
    params, flops                 trainable parameters, multiply-adds (ratios)
    synflow, snip, grad_norm, naswot, jacob_cov   the zero-cost proxies
        (`evo.capacity.proxies`) on a minibatch of PROXY_BATCH images; raw values and,
        for the positive ones, ratios to the original's
    short_{accuracy,loss}         `short_training`: SHORT_STEPS SGD steps (lr 0.1,
        batch 128, about 3 % of the study's protocol) on training images, scored on
        2,000 other training images (never the validation split); and
        short_train_loss, the mean training loss over those steps (Ru et al. 2021)

Every minibatch is drawn from the training part of val5000-seed0 (`imagefolder:`),
so no measure sees a validation image. `measures` holds what a search computes: one
seed (0) of weights and minibatch. The measures at initialisation are also taken
with seeds 1 and 2, and `mean` / `spread` over the three seeds are kept, to show how
much a single draw varies (short training: seed 0 only, it costs ~100x more).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from statistics import mean, pstdev
from typing import Any

import torch

from benchmarks.calibration_genomes import MODEL, study_genomes
from benchmarks.training_queue import REPO, SHARED_DATA, finished
from evo.capacity import FisherPotential, load_batch, parse_data
from evo.capacity.proxies import ZERO_COST, all_proxies, flops, params, short_training
from evo.networks import load_network, transform_network
from evo.training.data import load_train_data
from genomes.genome import NetworkGenome

MEASURES = REPO / "benchmarks" / "results" / "calibration-resnet20-measures.jsonl"
FISHER_BATCH, PROXY_BATCH, SHORT_STEPS, SEEDS = 64, 64, 50, (0, 1, 2)


def _fisher(network, data: str, genome: NetworkGenome, seed: int) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for bn in ("batch", "running"):
        potential = FisherPotential(network, data, seed=seed, batch=FISHER_BATCH, bn=bn)
        original, candidate = potential.original(), potential.of(genome)
        if candidate.total is None or not original.total:
            out[f"fisher_{bn}_network"] = out[f"fisher_{bn}_layer"] = None
            continue
        out[f"fisher_{bn}_network"] = candidate.total / original.total
        ratios = [candidate.per_slot.get(slot, 0.0) / value
                  for slot, value in original.per_slot.items() if value > 0]
        out[f"fisher_{bn}_layer"] = min(ratios) if ratios else None
    return out


def measure(name: str, genome_json: dict, data: str, short_data) -> dict[str, Any]:
    """All measures of one genome: seed 0's, and mean and spread over SEEDS."""
    genome = NetworkGenome.from_json(genome_json)
    per_seed = []
    for seed in SEEDS:
        network = load_network(MODEL, (1, 3, 32, 32), seed=seed)
        module = transform_network(network, genome, seed=seed).module
        x, y = load_batch(parse_data(data), (3, 32, 32), PROXY_BATCH, 10, seed)
        row: dict[str, Any] = _fisher(network, data, genome, seed)
        row["params"] = params(module)
        row["flops"] = flops(module, (1, 3, 32, 32))
        row.update(all_proxies(lambda network=network, seed=seed:
                               transform_network(network, genome, seed=seed).module, x, y))
        if seed == SEEDS[0]:
            acc, loss, train_loss = short_training(module, *short_data, steps=SHORT_STEPS,
                                                   seed=seed)
            row["short_accuracy"], row["short_loss"] = acc, loss
            row["short_train_loss"] = train_loss
        per_seed.append(row)
    mean_row: dict[str, Any] = {}
    spread_row: dict[str, Any] = {}
    for key in per_seed[1]:
        values = [r[key] for r in per_seed]
        complete = all(v is not None for v in values)
        mean_row[key] = mean(values) if complete else None
        spread_row[key] = pstdev(values) if complete else None
    return {"name": name, "genome": genome_json, "measures": per_seed[0], "mean": mean_row,
            "spread": spread_row, "per_seed": per_seed}


def _short_data(data: str) -> tuple[torch.Tensor, ...]:
    """Training images for short_training: 40,000 to train on and 2,000 others to score,
    standardised, all from the training part of the split (a seeded shuffle first: the
    images are stored in class order)."""
    train = load_train_data(data)
    order = torch.randperm(len(train.y_train), generator=torch.Generator().manual_seed(0))
    x = train.standardise(train.scale(train.x_train[order]))
    y = train.y_train[order]
    return x[:40_000], y[:40_000], x[43_000:], y[43_000:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = f"imagefolder:{args.data.resolve()}"
    done = finished(MEASURES)
    short_data = _short_data(data)
    assert set(ZERO_COST) <= {"synflow", "snip", "grad_norm", "naswot", "jacob_cov"}
    for name, genome in study_genomes().items():
        if name in done:
            continue
        started = time.monotonic()
        row = measure(name, genome, data, short_data)
        row["seconds"] = time.monotonic() - started
        MEASURES.parent.mkdir(parents=True, exist_ok=True)
        with MEASURES.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        shown = {k: row["measures"][k] for k in ("fisher_batch_network",
                                                  "fisher_running_network", "short_accuracy")}
        print(f"{name:22} " + " ".join(f"{k} {'-' if v is None else f'{v:.3f}'}"
                                       for k, v in shown.items())
              + f" ({row['seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
