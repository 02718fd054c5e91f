"""Ablations of the ``reader`` model on a validation split: ``lenet5.training.train`` with
the model's recipe, changed one knob at a time, and what each change is worth.

Every run trains with the project's loop (``TrainConfig.for_model``: what ``lenet5 train
--model MODEL`` does) on 90% of the training set and prints one JSON line: the accuracy
on the held-out 10% after the last epoch (the test set is never looked at), seconds per
epoch, and with ``--robustness`` the accuracy on the held-out digits under every shift of
``lenet5.evaluation.robustness`` as ``predict`` reads them. docs/reader.md was made with it.

    python benchmarks/train_reader.py --data-dir DIR --seeds 0 1 --robustness \\
        --augment writing:rotate=15 --model-args '{"c1": 12}' --tag my-ablation
    python benchmarks/train_reader.py --data-dir DIR --model modern --augment none
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lenet5.data import load_dataset
from lenet5.evaluation.robustness import SHIFTS, load_views, robustness, save_views
from lenet5.models import get_model_entry
from lenet5.training import TrainConfig, train
from lenet5.training.augment import parse_augment
from lenet5.training.train import split_validation


def views_file(directory: str | None, val_split: float, seed: int) -> Path | None:
    """Where the shifted held-out digits of a split are kept (they depend only on it)."""
    return Path(directory) / f"views_val{val_split}_seed{seed}.pt" if directory else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--model", default="reader")
    p.add_argument("--model-args", type=json.loads, default={})
    p.add_argument("--augment", action="append", metavar="NAME[:K=V,...]",
                   help="instead of the recipe's augmentations ('none': no augmentation)")
    p.add_argument("--set", type=json.loads, default={},
                   help="other recipe overrides as JSON, e.g. '{\"ema\": 0, \"epochs\": 15}'")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--val-split", type=float, default=0.1)
    p.add_argument("--robustness", action="store_true",
                   help="accuracy on the shifted held-out digits (predict view)")
    p.add_argument("--views-cache", help="directory keeping the shifted held-out digits between runs")
    p.add_argument("--tag", default="")
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args(argv)
    overrides = dict(args.set)
    if args.augment:
        overrides["augment"] = ({} if args.augment == ["none"]
                                else dict(parse_augment(s) for s in args.augment))
    data = load_dataset(data_dir=args.data_dir)
    pre = get_model_entry(args.model).preprocess
    for seed in args.seeds:
        cfg = TrainConfig.for_model(args.model, model_args=args.model_args, seed=seed,
                                    val_split=args.val_split, progress=False, **overrides)
        result = train(cfg, data, log=lambda line: None)
        last = result.history[-1]
        seconds = [h["train_seconds"] for h in result.history]
        record = {"tag": args.tag, "model": args.model, "model_args": args.model_args,
                  "augment": cfg.augment, "overrides": args.set, "seed": seed,
                  "epochs": cfg.epochs, "val": last["val"]["acc"],
                  "seconds_per_epoch": round(sum(seconds) / len(seconds), 2),
                  "params": sum(q.numel() for q in result.model.parameters())}
        if args.robustness:
            _, val = split_validation(data.train, args.val_split, seed)
            path = views_file(args.views_cache, args.val_split, seed)
            cache = load_views(path)
            n = len(cache)
            acc = robustness(result.model, pre, val.images, val.labels, SHIFTS, ["predict"], cache)
            if len(cache) > n:
                save_views(cache, path)
            record["robustness"] = {s: round(a, 5) for (s, _), a in acc.items()}
        line = json.dumps(record)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
