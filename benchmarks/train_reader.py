"""Experiments for the ``reader`` model: one compact training loop, every knob a flag.

Trains a registered model with the project's pieces (data, ``to_input``, optimizers,
schedules, the weight average, ``lenet5.data.augment``) and prints one JSON line per run:
validation accuracy after the last epoch, seconds per epoch, and (``--robustness``) the
accuracy on the robustness shifts of the held-out digits, (``--other-writers``) on
scikit-learn's 8x8 digits by 43 other writers. Every choice in docs/reader.md was made on
``--val-split 0.1`` (10% of the training set held out); ``--val-split 0`` trains on the
whole training set and reports the test set (the final runs only).

    python benchmarks/train_reader.py --data-dir DIR --seeds 0 1 --robustness \\
        --aug '{"rotate": 10}' --model-args '{"c1": 12}' --tag my-ablation
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` as a package

from lenet5.checkpoint import Checkpoint, save_checkpoint  # noqa: E402
from lenet5.data import Split, load_dataset, to_input  # noqa: E402
from lenet5.data.augment import Augment, augment_input  # noqa: E402
from lenet5.evaluation import evaluate  # noqa: E402
from lenet5.evaluation.robustness import SHIFTS, robustness  # noqa: E402
from lenet5.fastpath import autocast, input_memory_format, resolve_precision, to_channels_last  # noqa: E402
from lenet5.models import create_model, get_model_entry  # noqa: E402
from lenet5.training import build_loss, build_optimizer, build_schedule, seed_everything  # noqa: E402
from lenet5.training.optim import weight_average  # noqa: E402


def hold_out(train: Split, fraction: float, seed: int) -> tuple[Split, Split | None]:
    """The training loop's ``--val-split``: a seeded permutation (the same digits it holds out)."""
    if not fraction:
        return train, None
    n_val = max(1, round(len(train) * fraction))
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 1))
    return train.subset(perm[n_val:]), train.subset(perm[:n_val])


def train_one(args, data, seed: int, aug: Augment | None) -> tuple[torch.nn.Module, dict]:
    seed_everything(seed)
    entry = get_model_entry(args.model)
    pre = entry.preprocess
    train_split, val_split = hold_out(data.train, args.val_split, seed)
    model = to_channels_last(create_model(args.model, **args.model_args))
    fmt = input_memory_format(model)
    device = torch.device("cpu")
    precision = resolve_precision(args.precision, device)
    steps = math.ceil(len(train_split) / args.batch_size)
    optimizer = build_optimizer(args.optimizer, model.parameters(), lr=args.lr,
                                weight_decay=args.weight_decay)
    schedule = build_schedule(args.schedule, optimizer, args.epochs, steps)
    average = weight_average(model, args.ema)
    evaluated = model if average is None else average.module
    loss_fn = build_loss("cross_entropy", label_smoothing=args.label_smoothing)
    report_fn = build_loss("cross_entropy")
    shuffle = torch.Generator().manual_seed(seed)
    augmentations = torch.Generator().manual_seed(seed + 2)
    seconds, curve = [], []
    for _epoch in range(args.epochs):
        started = time.perf_counter()
        model.train()
        perm = torch.randperm(len(train_split), generator=shuffle)
        for step in range(steps):
            idx = perm[step * args.batch_size:(step + 1) * args.batch_size]
            x = to_input(train_split.images.index_select(0, idx), pre, memory_format=fmt)
            y = train_split.labels.index_select(0, idx)
            if aug is not None:
                x = augment_input(x, augmentations, aug, pre.mean, pre.std)
            with autocast(device, precision):
                out = model(x)
            loss = loss_fn(out.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average is not None:
                average.update_parameters(model)
            if schedule is not None:
                schedule.step()
        seconds.append(time.perf_counter() - started)
        if args.every_epoch and val_split is not None:
            curve.append(round(evaluate(evaluated, val_split, pre, report_fn).acc, 5))
    watched = val_split if val_split is not None else data.test
    metrics = evaluate(evaluated, watched, pre, report_fn)
    record = {"seed": seed, "epochs": args.epochs,
              ("val" if val_split is not None else "test"): round(metrics.acc, 5),
              "seconds_per_epoch": round(sum(seconds) / len(seconds), 2),
              "params": sum(p.numel() for p in model.parameters())}
    if curve:
        record["val_curve"] = curve
    return evaluated, record, watched


def _views_file(directory: str | None, val_split: float, seed: int) -> Path | None:
    return Path(directory) / f"views_val{val_split}_seed{seed}.pt" if directory else None


def load_views(directory: str | None, val_split: float, seed: int) -> dict:
    """The shifted held-out digits made by an earlier run (they depend only on the split)."""
    path = _views_file(directory, val_split, seed)
    if path is None or not path.exists():
        return {}
    return {tuple(k.split("|")): v for k, v in torch.load(path, weights_only=True).items()}


def save_views(cache: dict, directory: str | None, val_split: float, seed: int) -> None:
    if (path := _views_file(directory, val_split, seed)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two runs may share the cache
        torch.save({"|".join(k): v for k, v in cache.items()}, tmp)
        os.replace(tmp, path)


def other_writers(model, pre) -> float | None:
    """Accuracy on scikit-learn's 8x8 digits (UCI optdigits), read as ``predict`` reads."""
    try:
        from benchmarks.robustness import other_writers_digits
    except ImportError:
        return None
    digits = other_writers_digits()
    if digits is None:
        return None
    from lenet5.evaluation.robustness import accuracy
    return round(accuracy(model, pre, *digits), 5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--model", default="reader")
    p.add_argument("--model-args", type=json.loads, default={})
    p.add_argument("--aug", default="{}",
                   help="'none', or JSON overrides of lenet5.data.augment.Augment's defaults")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.98)
    p.add_argument("--precision", default="auto")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--val-split", type=float, default=0.1)
    p.add_argument("--every-epoch", action="store_true", help="validation accuracy after every epoch")
    p.add_argument("--robustness", action="store_true", help="accuracy on the shifted held-out digits")
    p.add_argument("--other-writers", action="store_true", help="accuracy on sklearn's 8x8 digits")
    p.add_argument("--views-cache", help="directory keeping the shifted held-out digits between runs")
    p.add_argument("--tag", default="")
    p.add_argument("--out", help="append the JSON lines to this file")
    p.add_argument("--save", help="checkpoint path; {seed} is replaced by the seed")
    args = p.parse_args(argv)
    aug = None if args.aug == "none" else dataclasses.replace(Augment(), **json.loads(args.aug))
    data = load_dataset(data_dir=args.data_dir)
    for seed in args.seeds:
        model, record, watched = train_one(args, data, seed, aug)
        record = {"tag": args.tag, "model": args.model, "model_args": args.model_args,
                  "aug": None if aug is None else dataclasses.asdict(aug),
                  **{k: getattr(args, k) for k in ("lr", "batch_size", "ema", "label_smoothing",
                                                   "optimizer", "weight_decay")},
                  **record}
        pre = get_model_entry(args.model).preprocess
        if args.robustness:
            cache = load_views(args.views_cache, args.val_split, seed)
            n = len(cache)
            acc = robustness(model, pre, watched.images, watched.labels, SHIFTS, cache=cache)
            if len(cache) > n:
                save_views(cache, args.views_cache, args.val_split, seed)
            record["robustness"] = {f"{s}/{v}": round(a, 5) for (s, v), a in acc.items()}
        if args.other_writers:
            record["other_writers"] = other_writers(model, pre)
        if args.save:
            out = args.save.format(seed=seed)
            save_checkpoint(out, Checkpoint(
                model_name=args.model, model_args={"num_classes": 10, "in_channels": 1,
                                                   **args.model_args},
                preprocess=pre, state_dict=model.state_dict(), metrics=record,
                dataset=data.describe(), config={**vars(args), "seed": seed}))
        line = json.dumps(record)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
