"""Reproduce the paper's two LeNet-5 experiments with ``lenet5-1998`` (issue 3).

    python benchmarks/reproduce_1998.py --data-dir ../shared/data/mnist --seeds 0 1 2

Runs the model's own recipe (SDLM, the paper's schedule, 20 passes) without and with
random affine distortions, once per seed, and writes ``runs/reproduce_1998/results.jsonl``
(one line per finished run; finished runs are skipped when the script is run again) and
``runs/reproduce_1998/table.md``. Reported: the LAST epoch's test error (no epoch or seed is
chosen by test error), the training error after 19 passes, mean and spread over seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from lenet5.data import load_dataset
from lenet5.io import atomic_write_text
from lenet5.training import TrainConfig, train

MODEL = "lenet5-1998"
EXPERIMENTS = {"plain": False, "distorted": True}
PAPER = {"plain": {"test": 0.95, "train19": 0.35}, "distorted": {"test": 0.80}}


def run_one(data, seed: int, distort: bool, epochs: int) -> dict:
    cfg = TrainConfig.for_model(MODEL, seed=seed, distort=distort, epochs=epochs,
                                progress=False)
    result = train(cfg, data, log=lambda s: print(f"  [{'distorted' if distort else 'plain'} "
                                                   f"seed {seed}] {s}", flush=True))
    hist = result.history
    return {"experiment": "distorted" if distort else "plain", "seed": seed, "epochs": epochs,
            "test_error": 100 * hist[-1]["test"]["mcr"],
            "train_error_19": 100 * hist[min(18, len(hist) - 1)]["train"]["mcr"],
            "train_seconds": sum(h["train_seconds"] for h in hist)}


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"


def table(rows: list[dict]) -> str:
    lines = ["| experiment | measure | paper | ours: mean ± std over seeds |",
             "| --- | --- | --- | --- |"]
    for exp in EXPERIMENTS:
        runs = [r for r in rows if r["experiment"] == exp]
        lines.append(f"| {exp} | test error % (after 20 passes) | {PAPER[exp]['test']:.2f} | "
                     f"{fmt([r['test_error'] for r in runs])} |")
        paper_train = PAPER[exp].get("train19")
        lines.append(f"| {exp} | training error % after 19 passes | "
                     f"{'-' if paper_train is None else f'{paper_train:.2f}'} | "
                     f"{fmt([r['train_error_19'] for r in runs])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="MNIST's IDX files (default: the lenet5 cache)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--experiments", nargs="+", choices=list(EXPERIMENTS),
                   default=list(EXPERIMENTS))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--out-dir", default="runs/reproduce_1998")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    results = out / "results.jsonl"
    rows = [json.loads(x) for x in results.read_text().splitlines()] if results.exists() else []
    data = load_dataset(data_dir=args.data_dir)
    for seed in args.seeds:  # seed by seed, so both experiments have results early
        for exp in args.experiments:
            if any(r["experiment"] == exp and r["seed"] == seed and r["epochs"] == args.epochs
                   for r in rows):
                continue
            rows.append(run_one(data, seed, EXPERIMENTS[exp], args.epochs))
            atomic_write_text(results, "".join(json.dumps(r) + "\n" for r in rows))
            atomic_write_text(out / "table.md", table(rows))
            print(table(rows), flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
