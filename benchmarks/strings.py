"""Train both string readers on composed MNIST numbers and write their table.

    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/strings.py --data-dir DIR
    python benchmarks/strings.py --data-dir DIR --checkpoints runs/lenet5-ctc-*.safetensors

For each reader (``reader-ctc``, ``lenet5-ctc``, ``lenet5-sdnn``) and seed: train with its recipe through
``lenet5.training`` (what ``lenet5 train --model NAME --seed S`` does), or take readers
``lenet5 train`` trained (``--checkpoints``); evaluate the last epoch on the string test
set of ``mnist-strings`` (10,000 numbers of 1-8 digits from MNIST's test digits, fixed
seed) with each of its decoders, and time reading one 5-digit number on one thread.
Writes the runs and the table (mean over seeds) as JSON (``--json``, default
``docs/results/strings.json``, which docs/reading.md renders) and the table as Markdown
beside ``--out``; with ``--save`` the trained readers as checkpoints under ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from lenet5.checkpoint import load_checkpoint
from lenet5.data import load_dataset
from lenet5.data.strings import compose
from lenet5.io import atomic_write_text
from lenet5.models import get_model_entry
from lenet5.reading.line import read_ink_maps
from lenet5.reading.metrics import by_length, reading_metrics
from lenet5.reading.objectives import evaluate_reader
from lenet5.reading.read import METHODS, DecodeOptions, read_strips
from lenet5.training import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.` from anywhere
from measure import conditions  # noqa: E402  (how every results file records the machine)

from benchmarks.timing import one_thread_p50  # noqa: E402

READERS = ("reader-ctc", "lenet5-ctc", "lenet5-sdnn")


def train_reader(name: str, data, seed: int, out: Path | None = None, log=print, **overrides):
    """Train ``name`` with its recipe (``lenet5 train --model NAME``; ``overrides``: the
    recipe's fields to change) through ``lenet5.training.train``. Returns (model, wall
    seconds, CPU seconds of this process: what the training cost however loaded the
    machine was)."""
    cfg = TrainConfig.for_model(name, dataset=data.name, seed=seed, progress=False,
                                out=None if out is None else str(out),
                                **{k: v for k, v in overrides.items() if v is not None})
    started, cpu = time.perf_counter(), time.process_time()
    result = train(cfg, data, log=lambda line: log(f"{name} seed {seed} {line}"))
    return result.model.eval(), time.perf_counter() - started, time.process_time() - cpu


def trained_seconds(ckpt_path: Path) -> float | None:
    """The training seconds of a checkpoint written by ``lenet5 train``: its epochs'
    ``train_seconds`` from the metrics log beside it (evaluation not counted)."""
    log = ckpt_path.with_name(ckpt_path.stem + ".metrics.jsonl")
    if not log.is_file():
        return None
    return sum(json.loads(line)["train_seconds"] for line in log.read_text().splitlines())


def latency_ms(model, pre, strings, options: DecodeOptions | None = None, n: int = 200
               ) -> tuple[float, float]:
    """p50 of reading one image (5 digits) end to end as ``options`` say, one thread,
    model loaded: wall milliseconds, and CPU milliseconds (the same on an idle machine; on
    a shared one, what the reading itself cost)."""
    def reading(j: int):
        return lambda: read_strips(model, pre, strings.images[j:j + 1, :, :int(strings.widths[j])],
                                   options=options)

    return one_thread_p50((reading(i % len(strings)) for i in range(n)), warm_up=reading(0))


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


def measure(model, pre, test, options: DecodeOptions, as_read_too: bool = True) -> dict:
    metrics, readings = evaluate_reader(model, pre, test, options)
    truths, texts = test.texts(), [r.text for r in readings]
    conf = [r.confidence for r in readings]
    five = [i for i, t in enumerate(truths) if len(t) == 5]
    result = {"all": metrics.to_dict(),
              "by_length": {n: m.to_dict() for n, m in by_length(truths, texts, conf).items()},
              **dict(zip(("latency_ms", "latency_cpu_ms"),
                         latency_ms(model, pre, test.subset(torch.tensor(five[:50])), options))),
              "five": reading_metrics([truths[i] for i in five], [texts[i] for i in five],
                                      [conf[i] for i in five]).to_dict()}
    if not as_read_too:
        return result
    # the same strips read as `lenet5 read` reads a line: normalized, at three heights
    inks = [test.images[i, :, :int(test.widths[i])] for i in range(len(test))]
    again = read_ink_maps(model, pre, inks, options)
    agree = sum(a.text == b.text for a, b in zip(again, readings)) / len(test)
    as_read = [r.text for r in again]
    return {**result, "normalized_agreement": agree,
            "as_read": {"all": reading_metrics(truths, as_read, [r.confidence for r in again]
                                               ).to_dict(),
                        "five": reading_metrics([truths[i] for i in five],
                                                [as_read[i] for i in five],
                                                [again[i].confidence for i in five]).to_dict()}}


def _number(v) -> float:
    return float("nan") if v is None else v


def _whole(v: float) -> str:
    return "-" if v != v else f"{v:.0f}"  # NaN: not measured


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
        seconds = statistics.mean(_number(r.get("seconds")) for r in rs)
        cpu = statistics.mean(_number(r.get("cpu_seconds")) for r in rs)
        rows.append(f"| {model} | {decoder} | {len(rs)} | {five:.2%} | {cer:.2%} | {accept:.1%} | "
                    f"{latency:.2f} ms | {_whole(seconds)} | {_whole(cpu)} |")
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


def readers(args, data, log):
    """(name, seed, model, wall s, CPU s, preprocess) of each reader: trained here, or read
    from ``--checkpoints``."""
    if args.checkpoints:
        for path in map(Path, args.checkpoints):
            ckpt = load_checkpoint(path)
            yield (ckpt.model_name, ckpt.config.get("seed", 0), ckpt.build_model().eval(),
                   trained_seconds(path), None, ckpt.preprocess)
        return
    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, ema=args.ema,
                     precision=args.precision, model_args=json.loads(args.model_args) or None)
    for name in args.models:
        for seed in args.seeds:
            out = Path(args.out) / f"{name}-{seed}.safetensors" if args.save else None
            model, seconds, cpu = train_reader(name, data, seed, out, log, **overrides)
            yield name, seed, model, seconds, cpu, get_model_entry(name).preprocess


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--models", nargs="+", default=list(READERS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--checkpoints", nargs="+", metavar="CKPT",
                   help="measure these readers (trained by lenet5 train) instead of training")
    p.add_argument("--epochs", type=int, help="default: each reader's recipe")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--test-size", type=int, help="strings in the test set (default 10,000)")
    p.add_argument("--model-args", default="{}", metavar="JSON",
                   help='arguments of the models, e.g. \'{"norm": true}\'')
    p.add_argument("--ema", type=float, help="decay of the weights' average (default: recipe)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    p.add_argument("--out", default="runs/strings", metavar="DIR",
                   help="where strings.md (and with --save the checkpoints) go")
    p.add_argument("--json", default=str(Path(__file__).resolve().parents[1] / "docs" / "results"
                                         / "strings.json"), metavar="FILE",
                   help="the runs and the table as JSON (default: docs/results/strings.json)")
    p.add_argument("--tune", action="store_true",
                   help="choose the SDNN character model's penalties on validation strings "
                        "of training digits (default: reading/read.py's)")
    p.add_argument("--save", action="store_true", help="also save each reader as a checkpoint")
    p.add_argument("--no-as-read", action="store_true",
                   help="skip reading the strips again as `lenet5 read` reads a line "
                        "(normalized, at three heights): benchmarks/read_photos.py measures that")
    args = p.parse_args(argv)
    data = load_dataset("mnist-strings", args.data_dir)
    if args.test_size:
        data.test_size = args.test_size
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cond = conditions(torch.get_num_threads())
    print(f"threads {cond['threads']}, load average {cond['load_average']} on {cond['cores']} "
          "cores", file=sys.stderr)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    results = []
    for name, seed, model, seconds, cpu_seconds, pre in readers(args, data, log):
        default = METHODS[model.objective][0]
        # each decoder as read by default, and the default decoder by the line reader alone
        # (one look, no verifier)
        for method, alone in [(m, False) for m in METHODS[model.objective]] + [(default, True)]:
            options = DecodeOptions(method=method, **({"shifts": (), "verifier": None} if alone
                                                      else {}))
            if method == "viterbi" and args.tune:
                options = dataclasses.replace(tune_character_model(model, pre, data),
                                              shifts=options.shifts, verifier=options.verifier)
            res = measure(model, pre, data.test, options, as_read_too=not args.no_as_read)
            decoder = f"{method}, line reader alone" if alone else method
            res.update(model=name, decoder=decoder, seed=seed, seconds=seconds,
                       cpu_seconds=cpu_seconds, threads=torch.get_num_threads(),
                       load_average=round(os.getloadavg()[0], 1),
                       enter=options.enter, switch=options.switch)
            results.append(res)
            print(f"{name} {decoder} seed {seed}: exact(5) {res['five']['exact_match']:.4f} "
                  f"cer {res['all']['cer']:.4f} accept(5) {res['five']['accept_rate']:.3f} "
                  f"p50 {res['latency_ms']:.2f} ms (CPU {res['latency_cpu_ms']:.2f}), "
                  f"trained in {seconds or float('nan'):.0f} s, agreement after "
                  f"normalize_line {res.get('normalized_agreement', float('nan')):.4f}",
                  file=sys.stderr)
        md = table(results)
        command = "python benchmarks/strings.py " + " ".join(
            a if not a.startswith("/") else "DIR" for a in (argv or sys.argv[1:]))
        atomic_write_text(Path(args.json), json.dumps(
            {"about": "string readers on the mnist-strings test set, last epoch; "
                      "measured by benchmarks/strings.py", "source": "measured",
             "command": command, "conditions": cond, "runs": results, "table": md},
            indent=1) + "\n")
        atomic_write_text(out / "strings.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
