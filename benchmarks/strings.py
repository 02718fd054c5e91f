"""Train both string readers on composed MNIST numbers and write their table.

    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/strings.py --data-dir DIR --out runs/strings

For each reader (``lenet5-ctc``, ``lenet5-sdnn``) and seed: train with its recipe (a
minimal loop: the batches, the loss and the evaluation are ``lenet5.reading.objectives``'),
evaluate the last epoch on the string test set of ``mnist-strings`` (10,000 numbers of 1-8
digits from MNIST's test digits, fixed seed), and time reading one 5-digit number on one
thread. Writes ``strings.json`` and ``strings.md`` (the table) under ``--out``; with
``--save`` the trained readers as checkpoints too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from lenet5.checkpoint import Checkpoint, save_checkpoint
from lenet5.data import load_dataset
from lenet5.data.strings import compose
from lenet5.fastpath import autocast, resolve_precision, to_channels_last
from lenet5.io import atomic_write_text
from lenet5.models import create_model, get_model_entry
from lenet5.reading.line import read_ink_maps
from lenet5.reading.metrics import by_length, reading_metrics
from lenet5.reading.objectives import evaluate_reader, get_objective
from lenet5.reading.read import METHODS, DecodeOptions, read_strips
from lenet5.training.optim import weight_average
from lenet5.training.recipes import recipe_for

READERS = ("lenet5-ctc", "lenet5-sdnn")


def train_reader(name: str, data, epochs: int, batch_size: int, lr: float, seed: int,
                 precision: str = "auto", ema: float = 0.0, log=print,
                 objective_args: dict | None = None, model_args: dict | None = None):
    """Adam, one-cycle cosine schedule over all steps, an exponential average of the weights
    (``ema``, 0: none); the last epoch's weights are kept. Returns (model, wall seconds,
    CPU seconds of this process: what the training cost however loaded the machine was)."""
    torch.manual_seed(seed)
    entry = get_model_entry(name)
    model = to_channels_last(create_model(name, num_classes=len(data.classes),
                                          **(model_args or {})))
    obj = get_objective(model.objective, **(objective_args or {}))
    steps_per_epoch = math.ceil(obj.epoch_size(data.train) / batch_size)
    total = epochs * steps_per_epoch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total,
                                                pct_start=0.05, anneal_strategy="cos")
    average = weight_average(model, ema)
    gen = torch.Generator().manual_seed(seed)
    device = torch.device("cpu")
    prec = resolve_precision(precision, device)
    started, cpu = time.perf_counter(), time.process_time()
    for epoch in range(1, epochs + 1):
        model.train()
        running, t0 = 0.0, time.perf_counter()
        for _ in range(steps_per_epoch):
            batch = obj.batch(data.train, batch_size, gen, entry.preprocess)
            with autocast(device, prec):
                scores = model(batch.x.contiguous(memory_format=torch.channels_last))
            loss = obj.loss(scores, batch, model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if average is not None:
                average.update_parameters(model)
            running += loss.item()
        log(f"{name} seed {seed} epoch {epoch}/{epochs}: loss {running / steps_per_epoch:.4f} "
            f"({time.perf_counter() - t0:.0f} s)")
    final = model if average is None else average.module
    return final.eval(), time.perf_counter() - started, time.process_time() - cpu


def latency_ms(model, pre, strings, n: int = 200) -> tuple[float, float]:
    """p50 of reading one image (5 digits) end to end, one thread, model loaded: wall
    milliseconds, and CPU milliseconds (the same on an idle machine; on a shared one, what
    the reading itself cost)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        wall, cpu = [], []
        read_strips(model, pre, strings.images[:1])  # warm up
        for i in range(n):
            j = i % len(strings)
            img = strings.images[j:j + 1, :, :int(strings.widths[j])]
            t, c = time.perf_counter(), time.process_time()
            read_strips(model, pre, img)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def tune_character_model(model, pre, data, n: int = 1000, log=print) -> DecodeOptions:
    """The SDNN character model's penalties (reading/transducer.py) that read most of ``n``
    validation strings right: composed like the test set, from training digits (not the
    test set's)."""
    val = compose(data.digits.train, n, data.test_options, torch.Generator().manual_seed(1))
    truths = val.texts()
    best = None
    for enter in (0.0, 0.5, 1.0):
        for switch in (0.0, 1.0, 2.0, 3.0, 5.0):
            opts = DecodeOptions(method="viterbi", enter=enter, switch=switch)
            readings = read_strips(model, pre, val.images, val.widths, opts)
            right = sum(r.text == t for r, t in zip(readings, truths))
            log(f"character model: enter {enter}, switch {switch}: {right}/{n} right")
            if best is None or right > best[0]:
                best = (right, opts)
    log(f"character model: enter {best[1].enter}, switch {best[1].switch} "
        f"({best[0]}/{n} validation strings right)")
    return best[1]


def measure(model, pre, test, options: DecodeOptions) -> dict:
    metrics, readings = evaluate_reader(model, pre, test, options)
    truths, texts = test.texts(), [r.text for r in readings]
    conf = [r.confidence for r in readings]
    five = [i for i, t in enumerate(truths) if len(t) == 5]
    # the same strips brought to the line geometry as a photo's ink map would be
    n = min(2000, len(test))
    inks = [test.images[i, :, :int(test.widths[i])] for i in range(n)]
    again = read_ink_maps(model, pre, inks, options)
    agree = sum(a.text == b.text for a, b in zip(again, readings[:n])) / n
    return {"all": metrics.to_dict(), "normalized_agreement": agree,
            "by_length": {n: m.to_dict() for n, m in by_length(truths, texts, conf).items()},
            **dict(zip(("latency_ms", "latency_cpu_ms"),
                       latency_ms(model, pre, test.subset(torch.tensor(five[:50]))))),
            "five": reading_metrics([truths[i] for i in five], [texts[i] for i in five],
                                    [conf[i] for i in five]).to_dict()}


def _mean(rs: list[dict], part: str, key: str) -> float:
    return statistics.mean(r[part][key] for r in rs)


def table(results: list[dict]) -> str:
    """Mean over seeds, one row per reader and decoder."""
    rows = ["| reader | decoder | seeds | exact, 5 digits | CER, 1-8 digits | accept at 1% error, "
            "5 digits | read one 5-digit number (p50, CPU) | training: wall seconds | CPU seconds |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    keys = sorted({(r["model"], r["decoder"]) for r in results}, key=lambda k: results.index(
        next(r for r in results if (r["model"], r["decoder"]) == k)))
    for model, decoder in keys:
        rs = [r for r in results if (r["model"], r["decoder"]) == (model, decoder)]
        five = _mean(rs, "five", "exact_match")
        cer = _mean(rs, "all", "cer")
        accept = _mean(rs, "five", "accept_rate")
        latency = statistics.mean(r.get("latency_cpu_ms", r["latency_ms"]) for r in rs)
        seconds = statistics.mean(r["seconds"] for r in rs)
        cpu = statistics.mean(r.get("cpu_seconds", float("nan")) for r in rs)
        rows.append(f"| {model} | {decoder} | {len(rs)} | {five:.2%} | {cer:.2%} | {accept:.1%} | "
                    f"{latency:.2f} ms | {seconds:.0f} | {cpu:.0f} |")
    lengths = sorted({int(n) for r in results for n in r["by_length"]})
    rows += ["", "By length (mean over seeds): exact match / CER", "",
             "| reader | decoder | " + " | ".join(str(n) for n in lengths) + " |",
             "| --- | --- | " + " | ".join("---" for _ in lengths) + " |"]
    for model, decoder in keys:
        rs = [r for r in results if (r["model"], r["decoder"]) == (model, decoder)]
        cells = []
        for n in lengths:
            ms = [r["by_length"][n] if n in r["by_length"] else r["by_length"][str(n)] for r in rs]
            cells.append(f"{statistics.mean(m['exact_match'] for m in ms):.2%} / "
                         f"{statistics.mean(m['cer'] for m in ms):.2%}")
        rows.append(f"| {model} | {decoder} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--models", nargs="+", default=list(READERS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, help="default: each reader's recipe")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--test-size", type=int, help="strings in the test set (default 10,000)")
    p.add_argument("--model-args", default="{}", metavar="JSON",
                   help='arguments of the models, e.g. \'{"norm": true}\'')
    p.add_argument("--ema", type=float, help="decay of the weights' average (default: recipe)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--out", default="runs/strings", metavar="DIR")
    p.add_argument("--tune", action="store_true",
                   help="choose the SDNN character model's penalties on validation strings "
                        "of training digits (default: reading/read.py's)")
    p.add_argument("--save", action="store_true", help="also save each reader as a checkpoint")
    args = p.parse_args(argv)
    model_args = json.loads(args.model_args)
    data = load_dataset("mnist-strings", args.data_dir)
    if args.test_size:
        data.test_size = args.test_size
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"threads {torch.get_num_threads()}, load average {load:.1f} on {os.cpu_count()} cores",
          file=sys.stderr)
    results = []
    for name in args.models:
        entry, r = get_model_entry(name), recipe_for(name)
        for seed in args.seeds:
            model, seconds, cpu_seconds = train_reader(name, data, args.epochs or r.epochs,
                                          args.batch_size or r.batch_size, args.lr or r.lr, seed,
                                          args.precision, r.ema if args.ema is None else args.ema,
                                          model_args=model_args)
            if args.save:
                save_checkpoint(out / f"{name}-{seed}.safetensors", Checkpoint(
                    model_name=name, model_args={"num_classes": len(data.classes), **model_args},
                    preprocess=entry.preprocess, state_dict=model.state_dict(),
                    dataset=data.describe()))
            for method in METHODS[model.objective]:
                options = DecodeOptions(method=method)
                if method == "viterbi" and args.tune:
                    options = tune_character_model(model, entry.preprocess, data)
                res = measure(model, entry.preprocess, data.test, options)
                res.update(model=name, decoder=method, seed=seed, seconds=seconds,
                           cpu_seconds=cpu_seconds, threads=torch.get_num_threads(),
                           load_average=load, enter=options.enter, switch=options.switch)
                results.append(res)
                print(f"{name} {method} seed {seed}: exact(5) {res['five']['exact_match']:.4f} "
                      f"cer {res['all']['cer']:.4f} accept(5) {res['five']['accept_rate']:.3f} "
                      f"p50 {res['latency_ms']:.2f} ms (CPU {res['latency_cpu_ms']:.2f}), "
                      f"{seconds:.0f} s (CPU {cpu_seconds:.0f}), "
                      f"agreement after normalize_line {res['normalized_agreement']:.4f}",
                      file=sys.stderr)
            atomic_write_text(out / "strings.json", json.dumps(results, indent=1) + "\n")
    md = table(results)
    atomic_write_text(out / "strings.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
