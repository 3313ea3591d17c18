"""`evo train`: train the original or a discovered network and report its accuracy."""

from __future__ import annotations

import argparse

HELP = ("Train the original network or a discovered one (--genome) and report its accuracy "
        "on a validation split (imagefolder:) or test set (cifar10:, npz:); a checkpoint "
        "after every epoch, and the same command resumes a stopped training or extends a "
        "finished one to more --epochs.")

EXAMPLES = """examples:
  # the original resnet20 on a zip of one image folder per class (5,000 held out)
  evo train --model resnet20 --data imagefolder:cifar10-train-jpeg.zip --epochs 30
  # an exported winner (its model.json names the model), from fresh weights
  evo train --genome runs/demo/winner --data imagefolder:cifar10-train-jpeg.zip --epochs 10
  # CIFAR-10's binary release, another seed; run it again to resume or extend it
  evo train --model tiny --data cifar10:cifar-10-batches-bin --epochs 10 --seed 1
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo import options as o

    parser.add_argument("--model",
                        help="zoo name (tiny, resnet20, resnet56, resnet18, resnet34, "
                             "resnext29_2x64d, densenet161) or path/to/file.py:factory "
                             "(default: the model of the --genome export folder, else tiny)")
    parser.add_argument("--genome", metavar="FILE|DIR",
                        help="network genome JSON to apply, or a folder written by evo "
                             "export or evo train (its model.json names the model); "
                             "trained from fresh weights; default: the original network")
    parser.add_argument("--data", required=True, metavar="SPEC",
                        help="imagefolder:PATH (a folder or .zip, one subfolder of images "
                             "per class; validated on a held-out split), cifar10:DIR "
                             "(data_batch_*.bin + test_batch.bin) or npz:FILE (x, y and "
                             "optionally x_test, y_test)")
    add_split_arguments(parser)
    parser.add_argument("--train-images", type=o.count(0, 10**9).arg(), default=0,
                        metavar="N",
                        help="train on N of the training images, class-balanced and drawn "
                             "with --split-seed (default 0: all); for a quick look, not for "
                             "accuracy claims")
    parser.add_argument("--epochs", type=o.count(1, 100_000).arg(), default=200,
                        help="epochs (default 200); more than a saved training has extends it")
    parser.add_argument("--batch-size", type=o.count(1, 65_536).arg(), default=128,
                        help="minibatch (default 128)")
    parser.add_argument("--lr", type=o.Range(0.0, 100.0, low_open=True).arg(), default=0.1,
                        help="initial learning rate, cosine-annealed to 0 (default 0.1)")
    parser.add_argument("--momentum", type=o.Range(0.0, 1.0, high_open=True).arg(), default=0.9,
                        help="SGD momentum (default 0.9)")
    parser.add_argument("--weight-decay", type=o.Range(0.0, 1.0).arg(), default=5e-4,
                        help="L2 weight decay (default 5e-4)")
    parser.add_argument("--no-augment", action="store_true",
                        help="no random crop and flip")
    parser.add_argument("--seed", type=o.SEED.arg(), default=0,
                        help="seed of the initial weights, shuffling and augmentation")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="arithmetic of convs and matmuls: bf16 autocast or fp32; auto "
                             "(default): where the CPU has native bfloat16 (AVX512-BF16, "
                             "AMX) the faster of the two for this network (timed on a few "
                             "steps), else fp32; a resumed training keeps its own")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training step (slow to start; see "
                             "benchmarks/train_speed.py for whether it pays here)")
    parser.add_argument("--no-channels-last", action="store_true",
                        help="keep the NCHW memory layout (default: channels-last)")
    parser.add_argument("--out", metavar="DIR",
                        help="where checkpoints and the trained model go (default "
                             "runs/train-MODEL-GENOME-sSEED); an existing training there "
                             "with the same settings is continued")
    parser.add_argument("--resume", action="store_true",
                        help="insist on continuing a training in --out (error if none)")
    parser.add_argument("--threads", type=o.THREADS.arg(), metavar="N",
                        help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar; one line per epoch")


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """`--val-split` and `--split-seed`: the held-out split of an imagefolder (shared by
    every command that trains)."""
    from evo import options as o

    parser.add_argument("--val-split", type=o.count(0, 10**8).arg(), default=5000, metavar="N",
                        help="imagefolder: images held out for validation, class-balanced "
                             "(default 5000)")
    parser.add_argument("--split-seed", type=o.SEED.arg(), default=0, metavar="S",
                        help="imagefolder: seed of the validation split (default 0; keep it "
                             "fixed when comparing trainings)")


def run(args: argparse.Namespace) -> int:
    import torch

    from evo.errors import UsageError
    from evo.training import TrainSettings, default_out, train
    from evo.training.data import data_key
    from evo.training.speed import StepOptions

    model, genome = _model_and_genome(args.model, args.genome)
    if args.threads is not None:
        if not 1 <= args.threads <= 4096:
            raise UsageError("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    settings = TrainSettings(model, genome.to_json(), data_key(args.data), args.epochs,
                             args.batch_size, args.lr, args.momentum, args.weight_decay,
                             args.seed, not args.no_augment, args.precision, args.val_split,
                             args.split_seed, args.train_images)
    out = args.out or default_out(settings)
    options = StepOptions(channels_last=not args.no_channels_last, compile=args.compile)
    final = train(settings, out, quiet=args.quiet, resume_required=args.resume,
                  options=options)
    from evo.networks.zoo import ZOO

    trust = "" if settings.model in ZOO else ", trust_model_code=True"
    print(f"{final['eval_kind']} accuracy {final['accuracy']:.4f} on {final['eval_images']} "
          f"images ({final['evaluated_on']}) after {final['epoch']} epochs; trained model "
          f"in {out} (evo.load_model({str(out)!r}{trust}))")
    return 0


def _model_and_genome(model: str | None, genome_arg: str | None):
    """The model to train and the genome: from --genome's export folder (model.json),
    a genome file, or none; --model must agree with an export folder's model."""
    from pathlib import Path

    from evo.errors import UsageError
    from evo.export.model_files import read_model_info
    from evo.networks.zoo import ZOO
    from genomes.genome import NetworkGenome, load_genome_file

    if not genome_arg:
        return model or "tiny", NetworkGenome()
    path = Path(genome_arg)
    if path.is_dir():
        info = read_model_info(path)
        saved = info["model"]
        if saved in ZOO:
            if model is not None and model != saved:
                raise UsageError(f"--model {model} differs from {path}/model.json's "
                                 f"{saved!r}; leave --model out to train the exported network")
        elif model is None:
            raise UsageError(f"{path}/model.json names the model code {saved!r}; evo does "
                             f"not import code from a folder unasked: give --model "
                             f"PATH.py:FACTORY for it")
        elif model.rsplit(":", 1)[-1] != saved.rsplit(":", 1)[-1]:
            raise UsageError(f"--model {model} names another factory than {path}/"
                             f"model.json's {saved!r}")
        model = model or saved
        genome = load_genome_file(path / "genome.json")
    else:
        genome = load_genome_file(path)
    if not isinstance(genome, NetworkGenome):
        raise UsageError(f"--genome {genome_arg}: a list of genes is a layer genome; "
                         "training needs a network genome ({\"schema\": 1, \"layers\": "
                         "{...}})")
    return model or "tiny", genome
