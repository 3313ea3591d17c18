"""`evo confirm`: train a run's fastest networks until one keeps the original's accuracy."""

from __future__ import annotations

import argparse
from typing import Any

HELP = ("Confirm by training which of a run's fastest networks keep accuracy: train the "
        "original network (a few seeds) and then networks of the run's latency-capacity "
        "front with one short recipe (by bisection, or fastest first) to find the fastest "
        "whose validation accuracy is within --tolerance points of the original's; name it "
        "and the speedup it keeps. Resumable: run it again to continue.")

EXAMPLES = """examples:
  # 5-epoch trainings on a held-out split of your images, at most 5 candidates
  evo confirm runs/resnet20 --data imagefolder:cifar10-train-jpeg.zip
  # what would be trained, and what is known already, without training
  evo confirm runs/resnet20 --data imagefolder:cifar10-train-jpeg.zip --list
  # the whole front, 10 epochs, two seeds per candidate
  evo confirm runs/resnet20 --data imagefolder:train.zip --all --epochs 10 --seeds 0,1
  # another run of resnet20: take the original's trainings from the first one
  evo confirm runs/r20-b --data imagefolder:train.zip --reuse runs/r20/confirm-e5/results.jsonl
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evo import options as o
    from evo.commands.train import add_split_arguments

    parser.add_argument("run", metavar="RUN_DIR", help="the run folder")
    parser.add_argument("--data", metavar="SPEC",
                        help="training data as for evo train: imagefolder:PATH, cifar10:DIR "
                             "or npz:FILE (default: the run's --data, unless synthetic)")
    parser.add_argument("--epochs", type=o.count(1, 100_000).arg(), default=5,
                        help="epochs of every training (default 5: the calibration study's "
                             "short protocol)")
    parser.add_argument("--original-seeds", type=_seeds, default=(0, 1, 2), metavar="S,S",
                        help="seeds of the original's trainings; their mean is the accuracy "
                             "to keep (default 0,1,2)")
    parser.add_argument("--seeds", type=_seeds, default=(0,), metavar="S,S",
                        help="seeds of each candidate's trainings (default 0)")
    parser.add_argument("--tolerance", type=o.Range(0.0, 100.0).arg(), default=1.0,
                        metavar="POINTS",
                        help="kept: mean accuracy at most this many points below the "
                             "original's mean (default 1.0)")
    parser.add_argument("--order", choices=("bisect", "fastest"), default="bisect",
                        help="bisect (default): halve the front between the fastest network "
                             "not ruled out and the fastest known to keep accuracy (about "
                             "log2 of the front's size in trainings, if accuracy rises along "
                             "it); fastest: fastest first until one keeps accuracy")
    parser.add_argument("--candidates", type=o.count(1, 1_000_000).arg(), default=5,
                        metavar="N", help="judge at most N networks besides the original "
                                          "(default 5)")
    parser.add_argument("--all", action="store_true",
                        help="train every network of the front, fastest first (up to "
                             "--candidates)")
    parser.add_argument("--list", action="store_true",
                        help="train nothing: show the candidates and what is known")
    parser.add_argument("--reuse", action="append", default=[], metavar="RESULTS.jsonl",
                        help="adopt finished trainings with exactly the same settings from "
                             "this results file (another confirm's, a study's) instead of "
                             "training them again; repeatable")
    parser.add_argument("--out", metavar="DIR",
                        help="trainings and confirm.json (default RUN_DIR/confirm-eEPOCHS)")
    add_split_arguments(parser)
    parser.add_argument("--precision", choices=("bf16", "fp32"),
                        help="every training's arithmetic (default: bf16 where the CPU has "
                             "it natively, else fp32; one choice for all, so they compare)")
    parser.add_argument("--threads", type=o.THREADS.arg(), metavar="N",
                        help="torch CPU threads (default: every core this process may use)")
    parser.add_argument("--trust-model-code", action="store_true",
                        help="import the model file the run's config.json names (zoo "
                             "models need nothing)")


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: comma-separated integers, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) >= 2**32:
        raise argparse.ArgumentTypeError(f"{text!r}: distinct seeds in [0, 2**32)")
    return seeds


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evo.analysis import load_run
    from evo.errors import UsageError
    from evo.measure.evaluator import available_cores
    from evo.networks.zoo import ZOO
    from evo.training.confirm import Plan, candidates, confirm, reusable
    from evo.training.data import data_key, load_train_data
    from evo.training.speed import native_bf16
    from evo.training.trainer import TrainSettings

    snap = load_run(args.run)
    if not candidates(snap):
        raise UsageError(f"{args.run}: no legal, measured individual yet; nothing to confirm")
    model = snap.config.model
    if model not in ZOO and not args.trust_model_code:
        raise UsageError(f"{args.run}: the run's model is code ({model!r}); evo imports it "
                         "only with --trust-model-code")
    data = args.data or snap.config.data
    if data == "synthetic":
        raise UsageError(f"{args.run}: the run used synthetic data; give --data with real "
                         "images (imagefolder:PATH, cifar10:DIR or npz:FILE)")
    precision = args.precision or ("bf16" if native_bf16() else "fp32")
    base = TrainSettings(model, {"schema": 1, "layers": {}}, data_key(data), args.epochs,
                         precision=precision, val_split=args.val_split,
                         split_seed=args.split_seed)
    plan = Plan(base, args.original_seeds, args.seeds, args.tolerance, args.candidates)
    out = Path(args.out) if args.out else Path(args.run) / f"confirm-e{args.epochs}"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: not a folder")
    reuse = reusable([Path(path) for path in args.reuse])
    loaded = {}
    if not args.list:  # read (and check) the data before anything is written
        loaded[(base.data, base.val_split, base.split_seed)] = load_train_data(
            base.data, base.val_split, base.split_seed)
    threads = args.threads or available_cores()
    doing = "listing" if args.list else "confirming"
    print(f"{doing} {args.run} ({model}): {args.epochs}-epoch trainings, {precision}, "
          f"{threads} thread(s), in {out}", flush=True)
    summary = confirm(snap, plan, out, threads, loaded, on_verdict=_say_verdict,
                      train_all=args.all, dry_run=args.list, reuse=reuse,
                      order=args.order)
    print(table(summary))
    return 0


def _say_verdict(row: dict[str, Any]) -> None:
    verdict = "keeps accuracy" if row["kept"] else "loses accuracy"
    print(f"individual {row['individual']} ({row['latency_ms']:.4f} ms): "
          f"{_accuracy(row['accuracies'])}, {verdict}", flush=True)


def table(summary: dict[str, Any]) -> str:
    """The verdicts as text: the original's accuracy, one line per candidate, the
    fastest network known to keep accuracy and how to export it."""
    original = summary["original"]
    reference = original["accuracies"]
    recipe = summary["recipe"]
    epochs = f"{recipe['epochs']} epoch" + ("s" if recipe["epochs"] != 1 else "")
    lines = [f"recipe: {epochs}, batch {recipe['batch_size']}, lr "
             f"{recipe['lr']} cosine, {recipe['precision']}, on {recipe['data']} "
             f"(validation split {recipe['val_split']}, seed {recipe['split_seed']})"]
    if reference is None:
        lines.append("original: not trained yet")
    else:
        floor = 100 * sum(reference) / len(reference) - summary["tolerance_points"]
        lines.append(f"original: {_accuracy(reference)}; keeping accuracy means >= "
                     f"{floor:.2f} %")
    base_ms = original["latency_ms"]
    lines.append(f"{'id':>7}  {'ms':>9}  {'speedup':>7}  {'capacity':>9}  "
                 f"{'accuracy':>16}  verdict     neural changes")
    for row in [*summary["candidates"], original]:
        speedup = base_ms / row["latency_ms"] if base_ms == base_ms else float("nan")
        ratio = row.get("capacity_ratio")
        capacity = "-" if ratio is None else f"{ratio:.3f}x"
        if row is original:
            verdict = "original"
        else:
            verdict = {None: "-", True: "kept", False: "lost"}[row["kept"]]
        lines.append(f"{row['individual']:>7}  {row['latency_ms']:>9.4f}  {speedup:>6.2f}x  "
                     f"{capacity:>9}  {_accuracy(row['accuracies']):>16}  {verdict:<10}  "
                     f"{row['changes']}")
    best = summary["fastest_kept"]
    if best is not None:
        row = next(r for r in [*summary["candidates"], original] if r["individual"] == best)
        lines.append(f"fastest network known to keep accuracy: individual {best}, "
                     f"{row['latency_ms']:.4f} ms, {base_ms / row['latency_ms']:.2f}x the "
                     f"original's fastest schedule; export it with: evo export "
                     f"{summary['run']} --id {best} --out DIR")
    return "\n".join(lines)


def _accuracy(values: list[float] | None) -> str:
    if values is None:
        return "not trained"
    mean = 100 * sum(values) / len(values)
    return f"{mean:.2f} %" + (f" ({len(values)} seeds)" if len(values) > 1 else "")
