"""Measure what the docs show from long runs, into ``docs/results/*.json``.

    python docs/measure.py training --data-dir DIR   # every model's recipe, 10 epochs (one core: ~1 h)
    python docs/measure.py classic --data-dir DIR    # eval, export, predict of the classic checkpoint
    python docs/measure.py bench --data-dir DIR      # lenet5 bench --model modern --json
    python docs/measure.py reproduce-1998 PATH       # benchmarks/reproduce_1998.py's results.jsonl

then ``python docs/generate.py`` renders the pages from these files. Each command runs as a
user would type it, in a work directory (``--workdir``, default ``runs/docs``; its
``runs/`` holds the checkpoints), with the data found through ``LENET5_DATA_DIR`` so that
no machine path appears in what is shown. Training runs on one thread
(``OMP_NUM_THREADS=1``): the same seed on the same machine gives the same numbers, while
the thread count can move the last digit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
RESULTS = DOCS / "results"
ROOT = DOCS.parent

# (model, dataset, the command as shown); every run is the model's recipe, seed 0
TRAINING = [
    ("classic", "mnist", "lenet5 train --model classic"),
    ("modern", "mnist", "lenet5 train --model modern"),
    ("classic-c5conv", "mnist", "lenet5 train --model classic-c5conv"),
    ("modern-c5conv", "mnist", "lenet5 train --model modern-c5conv"),
    ("keras", "mnist", "lenet5 train --model keras"),
    ("sigmoid", "mnist", "lenet5 train --model sigmoid"),
    ("modern", "fashion-mnist", "lenet5 train --model modern --dataset fashion-mnist"),
]
NO_PROGRESS = ["--no-progress"]  # progress bars are for a terminal, not for a page

CLASSIC = "runs/classic.safetensors"
ONNX_EXAMPLE = """\
import onnxruntime as ort
from lenet5.data import load_dataset

images = load_dataset().test.images.numpy()  # uint8 (10000, 28, 28)
session = ort.InferenceSession("runs/classic.onnx")
logits = session.run(None, {"images": images[:8, None]})[0]  # (8, 1, 28, 28) -> (8, 10)
print(logits.argmax(1))
"""
THROUGHPUT = """\
import torch
import torch.nn.functional as F
from lenet5.checkpoint import load_checkpoint
from lenet5.data import load_dataset
from lenet5.evaluation import evaluate
from lenet5.export import onnx_throughput
from lenet5.fastpath import accelerate
import time

torch.set_num_threads(1)
ckpt = load_checkpoint("runs/classic.safetensors")
test = load_dataset().test
model = accelerate(ckpt.build_model())  # as lenet5 eval runs it
best = float("inf")
for _ in range(4):
    t = time.perf_counter()
    evaluate(model, test, ckpt.preprocess, F.cross_entropy)
    best = min(best, time.perf_counter() - t)
ort_ips = onnx_throughput(ckpt, test.images, threads=1)
print(f"PyTorch evaluate: {len(test) / best:,.0f} images/s")
print(f"ONNX Runtime:     {ort_ips:,.0f} images/s")
"""


def conditions(threads: int | None) -> dict:
    import torch

    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "cpu": cpu,
            "cores": os.cpu_count(), "threads": threads, "load_average": round(os.getloadavg()[0], 1)}


def run(command: str, workdir: Path, data_dir: str | None, threads: int | None = 1,
        extra: list[str] | None = None, stdin: str | None = None) -> dict:
    """Run ``command`` as shown (``lenet5 ...`` or ``python -``) in ``workdir``."""
    argv = shlex.split(command) + (extra or [])
    if argv[0] == "lenet5":
        argv = [sys.executable, "-m", "lenet5", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="100")
    if data_dir:
        env["LENET5_DATA_DIR"] = str(Path(data_dir).resolve())
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    print(f"$ {command} {' '.join(extra or [])}", flush=True)
    proc = subprocess.run(argv, cwd=workdir, env=env, input=stdin, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    print(output, flush=True)
    shown = command + "".join(f" {x}" for x in extra or [])
    return {"command": shown, "output": output.rstrip("\n"), "returncode": proc.returncode}


def write(name: str, result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


def test_metrics(workdir: Path, out: str) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    from lenet5.checkpoint import load_checkpoint

    return load_checkpoint(workdir / out).metrics["test"]


def training(args) -> None:
    """Train each run of TRAINING (or those named by ``--only``: the checkpoint's stem, e.g.
    ``modern`` or ``modern-fashion-mnist``); every finished run is written at once."""
    path = RESULTS / "training.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    for model, dataset, command in TRAINING:
        stem = model if dataset == "mnist" else f"{model}-{dataset}"
        if args.only and stem not in args.only:
            continue
        out = f"runs/{stem}.safetensors"
        for stale in (args.workdir / "runs").glob(stem + ".*"):
            stale.unlink()
        extra = NO_PROGRESS + ([] if stem == model else ["--out", out])
        # --data-dir is MNIST's; other datasets are found in the cache or the system's
        # dataset directories (or downloaded), as lenet5 finds them
        record = run(command, args.workdir, args.data_dir if dataset == "mnist" else None, extra=extra)
        if record["returncode"]:
            raise SystemExit(f"failed: {command}")
        test = test_metrics(args.workdir, out)
        runs = [r for r in runs if r.get("recipe_command") != command]
        runs.append({"model": model, "dataset": dataset, "recipe_command": command, **record,
                     "test_acc": test["acc"], "test_miss": test["miss"]})
        order = [c for _, _, c in TRAINING]
        runs.sort(key=lambda r: order.index(r["recipe_command"])
                  if r["recipe_command"] in order else len(order))
        write("training", {"about": "each model's recipe (lenet5 train --model NAME), seed 0, "
                                    "one thread (OMP_NUM_THREADS=1); measured by docs/measure.py",
                           "source": "measured", "conditions": conditions(1), "runs": runs})


def classic(args) -> None:
    if not (args.workdir / CLASSIC).exists():
        run("lenet5 train --model classic", args.workdir, args.data_dir, extra=NO_PROGRESS)
    shutil.copy(DOCS / "digit.png", args.workdir / "digit.png")  # a 7 drawn for the docs
    runs = [run(c, args.workdir, args.data_dir) for c in (
        f"lenet5 eval {CLASSIC} --per-class --confusion",
        f"lenet5 export {CLASSIC} --format onnx",
        f"lenet5 export {CLASSIC} --format torchscript",
        f"lenet5 predict {CLASSIC} digit.png",
    )]
    runs.append(run("python -", args.workdir, args.data_dir, stdin=ONNX_EXAMPLE))
    runs[-1]["command"] = "python onnx_example.py"
    runs.append(run("python -", args.workdir, args.data_dir, threads=None, stdin=THROUGHPUT))
    runs[-1]["command"] = "python throughput.py"
    write("classic", {"about": "the classic checkpoint of `lenet5 train --model classic` "
                               "(seed 0, one thread); measured by docs/measure.py",
                      "source": "measured", "conditions": conditions(1), "runs": runs,
                      "scripts": {"onnx_example.py": ONNX_EXAMPLE, "throughput.py": THROUGHPUT}})


def bench(args) -> None:
    record = run("lenet5 bench --model modern --json", args.workdir, args.data_dir, threads=None)
    result = json.loads(record["output"][record["output"].index("{"):])
    result["command"] = "lenet5 bench --model modern"
    result["source"] = "measured"
    write("bench-modern", result)


def reproduce_1998(args) -> None:
    rows = [json.loads(line) for line in Path(args.path).read_text().splitlines() if line.strip()]
    write("reproduce-1998", {
        "command": "python benchmarks/reproduce_1998.py --data-dir DIR --seeds 0 1 2 --threads 1",
        "source": "measured", "conditions": conditions(1), "runs": rows,
        "paper": {"plain": {"test_error": 0.95, "train_error_19": 0.35}, "distorted": {"test_error": 0.80}}})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["training", "classic", "bench", "reproduce-1998"])
    p.add_argument("path", nargs="?", help="reproduce-1998: the results.jsonl to take")
    p.add_argument("--data-dir", help="MNIST's files (default: LENET5_DATA_DIR, the cache)")
    p.add_argument("--workdir", type=Path, default=ROOT / "runs" / "docs")
    p.add_argument("--only", nargs="+", help="training: only these runs, by checkpoint stem "
                   "(modern, modern-fashion-mnist, ...); the others are kept")
    args = p.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    {"training": training, "classic": classic, "bench": bench,
     "reproduce-1998": reproduce_1998}[args.what](args)


if __name__ == "__main__":
    main()
