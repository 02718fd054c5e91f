"""``lenet5 bench``: the usual plain-PyTorch loop against the project's path, in one run."""

from __future__ import annotations

import json

from ..bench import BenchConfig, format_table, run_bench
from ..bench.core import QUICK_EPOCHS, QUICK_LIMIT, QUICK_TARGET
from ..models import list_models
from .common import add_data_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench", help="time the project's training and evaluation against a plain PyTorch loop",
        description="Train and evaluate the reference loop (per-sample Dataset, DataLoader, "
        "batch 64, Adam 1e-3) and the project's path on the same data and machine; print "
        "seconds per epoch, images/s, peak memory, test accuracy, time to a target accuracy "
        "from process start, single-image latency, and each ratio project/reference.")
    p.add_argument("--model", default="modern", help=f"one of: {', '.join(list_models())}")
    add_data_args(p)
    p.add_argument("--epochs", type=int, help="epochs for both paths (default: the recipe's)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    p.add_argument("--target", type=float, default=0.99,
                   help="test accuracy for time-to-accuracy (default: 0.99)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--quick", action="store_true",
                   help=f"a first look: the first {QUICK_LIMIT:,} images, {QUICK_EPOCHS} epochs, "
                   f"target {QUICK_TARGET} (both paths learn; the table says what was run)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = BenchConfig(model=args.model, epochs=args.epochs, device=args.device,
                      dataset=args.dataset, data_dir=args.data_dir, limit=args.limit,
                      target=args.target, seed=args.seed, quick=args.quick)
    log = (lambda s: None) if args.json else print
    result = run_bench(cfg, log=log)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0
