"""`evo train`: train the original or a discovered network and report test accuracy."""

from __future__ import annotations

import argparse

HELP = ("Train the original network or a discovered one (--genome) on CIFAR-10 (binary "
        "format) or an npz file and report test accuracy; a checkpoint after every epoch, "
        "and the same command resumes a stopped training.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny",
                        help="zoo name (tiny, resnet18, resnet34, resnext29_2x64d, "
                             "densenet161) or path/to/file.py:factory (default tiny)")
    parser.add_argument("--genome", metavar="FILE",
                        help="network genome JSON to apply, or a folder written by evo "
                             "export; default: the original network")
    parser.add_argument("--data", required=True, metavar="SPEC",
                        help="cifar10:DIR (data_batch_*.bin + test_batch.bin) or npz:FILE "
                             "(x, y and optionally x_test, y_test)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs (default 200)")
    parser.add_argument("--batch-size", type=int, default=128, help="minibatch (default 128)")
    parser.add_argument("--lr", type=float, default=0.1,
                        help="initial learning rate, cosine-annealed to 0 (default 0.1)")
    parser.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument("--weight-decay", type=float, default=5e-4,
                        help="L2 weight decay (default 5e-4)")
    parser.add_argument("--no-augment", action="store_true",
                        help="no random crop and flip")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights, shuffling and augmentation")
    parser.add_argument("--out", metavar="DIR",
                        help="where checkpoints and the trained model go (default "
                             "runs/train-MODEL-GENOME-sSEED); an existing training there "
                             "with the same settings is continued")
    parser.add_argument("--resume", action="store_true",
                        help="insist on continuing a training in --out (error if none)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar; one line per epoch")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from evo.errors import UsageError
    from evo.training import TrainSettings, default_out, train
    from genomes.genome import NetworkGenome, load_genome_file

    genome = NetworkGenome()
    if args.genome:
        path = Path(args.genome)
        genome = load_genome_file(path / "genome.json" if path.is_dir() else path)
        if not isinstance(genome, NetworkGenome):
            raise UsageError(f"--genome {args.genome}: a list of genes is a layer genome; "
                             "training needs a network genome ({\"schema\": 1, \"layers\": "
                             "{...}})")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    settings = TrainSettings(args.model, genome.to_json(), _data_key(args.data), args.epochs,
                             args.batch_size, args.lr, args.momentum, args.weight_decay,
                             args.seed, not args.no_augment)
    out = args.out or default_out(settings)
    final = train(settings, out, quiet=args.quiet, resume_required=args.resume)
    print(f"test accuracy {final['test_accuracy']:.4f} on {final['test_images']} images after "
          f"{final['epoch']} epochs; trained model in {out} (evo.load_model({str(out)!r}))")
    return 0


def _data_key(text: str) -> str:
    """`--data` with its path made absolute, so a resume from elsewhere still matches."""
    from pathlib import Path

    kind, sep, where = text.partition(":")
    if sep and kind in ("cifar10", "npz") and where:
        return f"{kind}:{Path(where).resolve()}"
    return text
