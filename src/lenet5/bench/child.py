"""One training run of the benchmark, in its own process so that its clock starts with
the interpreter (imports and data loading count in time-to-accuracy) and its peak memory
is its own.

    python -m lenet5.bench.child '{"path": "project", "model": "modern", "epochs": 3, ...}'

Prints one JSON object per line: one per epoch (``train_seconds``, ``test_acc`` after
that epoch), then a last one with the peak memory.

With ``"turns": true`` (how ``lenet5 bench`` starts it) the run takes turns with the other
path's: after its start-up and after each epoch it prints ``{"waiting": true}`` and blocks
until a line arrives on stdin, so that the parent can run the two paths one epoch each by
turns (see :func:`lenet5.bench.core.train_by_turns`).
"""

from __future__ import annotations

import json
import resource
import sys
import time


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def wait_for_turn(args: dict) -> None:
    """Block until the parent says go, when the parent runs the paths by turns."""
    if args.get("turns"):
        emit({"waiting": True})
        sys.stdin.readline()


def run_project(args: dict) -> None:
    from lenet5.data import load_dataset
    from lenet5.training import TrainConfig, train

    data = load_dataset(args["dataset"], args["data_dir"]).head(args["limit"])
    cfg = TrainConfig.for_model(args["model"], epochs=args["epochs"], device=args["device"],
                                seed=args["seed"], progress=False)

    def on_epoch(record: dict) -> None:
        emit({"epoch": record["epoch"], "train_seconds": record["train_seconds"],
              "test_acc": record["test"]["acc"]})
        if record["epoch"] < cfg.epochs:
            wait_for_turn(args)

    wait_for_turn(args)
    train(cfg, data, log=lambda line: None, on_epoch=on_epoch)


def run_reference(args: dict) -> None:
    import torch

    from lenet5.bench import reference
    from lenet5.data import load_dataset
    from lenet5.models import create_model, get_model_entry
    from lenet5.training import pick_device, seed_everything

    data = load_dataset(args["dataset"], args["data_dir"]).head(args["limit"])
    seed_everything(args["seed"])
    device = pick_device(args["device"])
    pre = get_model_entry(args["model"]).preprocess
    model = create_model(args["model"], num_classes=len(data.classes),
                         in_channels=data.in_channels).to(device)
    train_loader = reference.train_loader(data.train, pre, args["seed"])
    test_loader = reference.test_loader(data.test, pre)
    optimizer = reference.make_optimizer(model)
    for epoch in range(1, args["epochs"] + 1):
        wait_for_turn(args)
        started = time.perf_counter()
        reference.train_epoch(model, train_loader, optimizer, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        _, correct, total = reference.evaluate(model, test_loader, device)
        emit({"epoch": epoch, "train_seconds": round(seconds, 3), "test_acc": correct / total})


def main(argv: list[str]) -> None:
    args = json.loads(argv[0])
    {"project": run_project, "reference": run_reference}[args["path"]](args)
    done = {"peak_rss_mb": round(peak_rss_mb(), 1)}
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        done["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    emit(done)


if __name__ == "__main__":
    main(sys.argv[1:])
