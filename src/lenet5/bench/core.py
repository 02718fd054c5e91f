"""``lenet5 bench``: the reference loop against the project's path, same data, same machine.

Training runs in one subprocess per path (:mod:`lenet5.bench.child`): its clock starts
before the interpreter does, so time-to-accuracy counts process start, imports and data
loading, and its peak resident memory is its own. The two processes take turns, one epoch
each (:func:`train_by_turns`), so that a machine whose speed drifts over minutes (a shared
VM) slows both paths alike instead of whichever ran second. Evaluation throughput and
single-image latency are measured here, in-process, on freshly built models (speed does not
depend on the weights).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data import load_dataset, to_input
from ..errors import Lenet5Error
from ..evaluation import evaluate
from ..fastpath import accelerate, input_memory_format
from ..models import check_input, create_model, get_model_entry
from ..training import TrainConfig, pick_device, seed_everything
from ..training.recipes import recipe_for
from . import reference

PATHS = ("reference", "project")
# --quick: enough images and steps that both paths learn (each ends near 95%), so that
# every figure means what it says, at about a sixth of one full epoch's work per path
QUICK_LIMIT = 10_000
QUICK_EPOCHS = 2
QUICK_TARGET = 0.9

# (key, label, unit, lower is better)
METRICS = [
    ("epoch_seconds", "training epoch", "s", True),
    ("train_images_per_s", "training throughput", "img/s", False),
    ("eval_images_per_s", "test-set evaluation", "img/s", False),
    ("peak_rss_mb", "peak RSS, training run", "MiB", True),
    ("test_acc", "test accuracy after {epochs_text}", "", False),
    ("time_to_target_s", "time to {target:.1%} test acc, from process start", "s", True),
    ("predict_p50_ms", "predict one image, p50", "ms", True),
]


@dataclass
class BenchConfig:
    model: str = "modern"
    epochs: int | None = None  # None: the model's recipe
    device: str = "cpu"
    dataset: str = "mnist"
    data_dir: str | None = None
    limit: int | None = None
    target: float = 0.99
    seed: int = 0
    predict_reps: int = 300
    eval_reps: int = 3
    quick: bool = False

    def resolved(self) -> BenchConfig:
        """Fill in the defaults; quick mode: a slice, two epochs, a target both reach."""
        recipe = recipe_for(self.model)  # an unknown name fails here, before any run
        if self.epochs is not None and self.epochs < 1:
            raise Lenet5Error(f"--epochs must be positive, not {self.epochs}")
        epochs = self.epochs or (QUICK_EPOCHS if self.quick else recipe.epochs)
        limit = self.limit or (QUICK_LIMIT if self.quick else None)
        target = QUICK_TARGET if self.quick and self.target == 0.99 else self.target
        reps = min(self.predict_reps, 30) if self.quick else self.predict_reps
        return BenchConfig(self.model, epochs, self.device, self.dataset, self.data_dir, limit,
                           target, self.seed, reps, 1 if self.quick else self.eval_reps,
                           self.quick)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


class _Child:
    """One training run in a subprocess that waits for its turns (``"turns": true``)."""

    def __init__(self, path: str, args: dict):
        self.path, self.records, self.done, self.active = path, [], {}, 0.0
        self.stderr = tempfile.TemporaryFile(mode="w+")  # a file: a full pipe would block
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lenet5.bench.child", json.dumps({**args, "turns": True})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True)

    def turn(self, go: bool = True) -> bool:
        """Let the child run until it waits again (or ends); False once it has ended.
        The time from go to waiting is added to its active time; each epoch record gets
        ``active``, the active time up to that record, and ``ended``, the time it came."""
        started = time.time()
        if go:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        for line in self.proc.stdout:
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record.get("waiting"):
                self.active += time.time() - started
                return True
            if "epoch" in record:
                now = time.time()
                self.records.append({**record, "active": self.active + now - started,
                                     "ended": now})
            else:
                self.done = record
        self.active += time.time() - started
        if self.proc.wait() != 0:
            self.stderr.seek(0)
            tail = (self.stderr.read().strip().splitlines() or ["(no output)"])[-1]
            raise Lenet5Error(f"bench: the {self.path} training run failed: {tail}")
        return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.stderr):
            f.close()


def train_by_turns(cfg: BenchConfig, device: str, n_train: int) -> dict[str, dict]:
    """Train every path in its own subprocess, by turns: each start-up alone, then one
    epoch (with its test evaluation) of each path in turn. The other process waits
    meanwhile; time-to-accuracy counts only a path's own turns."""
    return {child.path: _summary(child, cfg, n_train) for child in run_by_turns(cfg, device)}


def run_by_turns(cfg: BenchConfig, device: str) -> list[_Child]:
    """The finished children of :func:`train_by_turns`, with their records."""
    args = {"model": cfg.model, "epochs": cfg.epochs, "device": device,
            "dataset": cfg.dataset, "data_dir": str(cfg.data_dir) if cfg.data_dir else None,
            "limit": cfg.limit, "seed": cfg.seed}
    children: list[_Child] = []
    try:
        for path in PATHS:  # start-ups one at a time: they count in time-to-accuracy
            children.append(_Child(path, {**args, "path": path}))
            children[-1].turn(go=False)
        running = list(children)
        while running:
            running = [child for child in running if child.turn()]
    finally:
        for child in children:
            child.close()
    return children


def _summary(child: _Child, cfg: BenchConfig, n_train: int) -> dict:
    epochs, done = child.records, child.done
    seconds = statistics.median(r["train_seconds"] for r in epochs)
    reached = next((r for r in epochs if r["test_acc"] >= cfg.target), None)
    return {"epoch_seconds": seconds, "train_images_per_s": n_train / seconds,
            "peak_rss_mb": done["peak_rss_mb"], "test_acc": epochs[-1]["test_acc"],
            "time_to_target_s": reached["active"] if reached else None,
            "epochs_to_target": reached["epoch"] if reached else None,
            "epoch_seconds_all": [r["train_seconds"] for r in epochs],
            "epoch_seconds_mean": statistics.fmean(r["train_seconds"] for r in epochs),
            **({"cuda_peak_mb": done["cuda_peak_mb"]} if "cuda_peak_mb" in done else {})}


def _best_seconds(fn: Callable[[], object], reps: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _p50_ms(fn: Callable[[int], object], reps: int) -> float:
    for i in range(min(reps, 20)):
        fn(i)
    times = []
    for i in range(reps):
        started = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def measure_inference(cfg: BenchConfig, data, device: torch.device) -> dict[str, dict]:
    """Test-set evaluation images/s (best of ``eval_reps``) and single-image p50 latency."""
    entry = get_model_entry(cfg.model)
    pre = entry.preprocess
    args = {"num_classes": len(data.classes), "in_channels": data.in_channels}
    test = data.test
    out: dict[str, dict] = {}

    seed_everything(cfg.seed)
    ref_model = create_model(cfg.model, **args).to(device).eval()  # plain, as users write it
    loader = reference.test_loader(test, pre)
    ref_ds = loader.dataset
    secs = _best_seconds(lambda: reference.evaluate(ref_model, loader, device), cfg.eval_reps)
    lat = _p50_ms(lambda i: reference.predict_one(ref_model, ref_ds, test.images[i % len(test)],
                                                  device), cfg.predict_reps)
    out["reference"] = {"eval_images_per_s": len(test) / secs, "predict_p50_ms": lat}

    seed_everything(cfg.seed)
    model = accelerate(create_model(cfg.model, **args).to(device)).eval()
    fmt = input_memory_format(model)
    secs = _best_seconds(lambda: evaluate(model, test, pre, F.cross_entropy, device=device),
                         cfg.eval_reps)

    @torch.inference_mode()
    def predict(i: int) -> int:
        x = to_input(test.images[i % len(test)].unsqueeze(0), pre, device, memory_format=fmt)
        return int(model(x).argmax(1))

    out["project"] = {"eval_images_per_s": len(test) / secs,
                      "predict_p50_ms": _p50_ms(predict, cfg.predict_reps)}
    return out


def _batch_text(model: str) -> str:
    """The project's images per step for ``model``'s recipe, e.g. "256, 512 from epoch 3"."""
    recipe = TrainConfig.for_model(model)
    first, later = recipe.batch_size_at(1), recipe.batch_size_at(recipe.double_batch_from or 1)
    return str(first) if first == later else f"{first}, {later} from epoch {recipe.double_batch_from}"


def _epochs_text(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = lambda s: None) -> dict:
    """Everything ``lenet5 bench`` prints, as one dictionary (see :func:`format_table`)."""
    cfg = cfg.resolved()
    device = pick_device(cfg.device)
    data = load_dataset(cfg.dataset, cfg.data_dir).head(cfg.limit)
    check_input(cfg.model, tuple(data.train.images.shape[1:]), data.name)
    log(f"bench: training the {' and '.join(PATHS)} paths by turns ({_epochs_text(cfg.epochs)} each, "
        f"{device})")
    results = train_by_turns(cfg, str(device), len(data.train))
    log("bench: evaluation and single-image latency")
    for path, values in measure_inference(cfg, data, device).items():
        results[path].update(values)
    ratio = {}
    for key, *_ in METRICS:
        ref, proj = results["reference"][key], results["project"][key]
        ratio[key] = proj / ref if ref and proj is not None else None
    return {"machine": machine(), "device": str(device),
            "config": {"model": cfg.model, "epochs": cfg.epochs, "dataset": cfg.dataset,
                       "batches": {"reference": reference.BATCH_SIZE,
                                   "project": _batch_text(cfg.model)},
                       "train_images": len(data.train), "test_images": len(data.test),
                       "target": cfg.target, "seed": cfg.seed, "quick": cfg.quick},
            "reference": results["reference"], "project": results["project"], "ratio": ratio}


def _fmt(value, unit: str) -> str:
    if value is None:
        return "not reached"
    if unit == "":
        return f"{value:.4f}"
    if unit == "img/s":
        return f"{value:,.0f} {unit}"
    if unit == "ms":
        return f"{value:.3f} {unit}"
    return f"{value:.2f} {unit}" if unit == "s" else f"{value:,.0f} {unit}"


def _gain(ratio: float | None, lower_is_better: bool) -> str:
    if ratio is None or ratio == 0:
        return ""
    factor = 1 / ratio if lower_is_better else ratio
    return f"{factor:.1f}x better" if factor >= 1 else f"{1 / factor:.1f}x worse"


def format_table(result: dict) -> str:
    """A Markdown table: metric, reference, project, project/reference, and which is better."""
    cfg = result["config"]
    lines = ["| metric | reference | project | project/reference | |", "| --- | ---: | ---: | ---: | --- |"]
    for key, label, unit, lower in METRICS:
        label = label.format(**cfg, epochs_text=_epochs_text(cfg["epochs"]))
        ref, proj, r = result["reference"][key], result["project"][key], result["ratio"][key]
        gain = "" if key == "test_acc" else _gain(r, lower)
        lines.append(f"| {label} | {_fmt(ref, unit)} | {_fmt(proj, unit)} | "
                     f"{'' if r is None else f'{r:.3f}'} | {gain} |")
    m = result["machine"]
    lines.append("")
    lines.append(f"{cfg['model']} on {cfg['dataset']} ({cfg['train_images']:,} train / "
                 f"{cfg['test_images']:,} test images), {_epochs_text(cfg['epochs'])}, device "
                 f"{result['device']}; {m['cpu']}, {m['cores']} cores, torch {m['torch']} "
                 f"({m['torch_threads']} threads)")
    if "batches" in cfg:  # the training epoch is the median of the epochs
        lines.append(f"images per step: reference {cfg['batches']['reference']}, project "
                     f"{cfg['batches']['project']}; a training epoch is the median of the epochs")
    if cfg.get("quick"):
        lines.append(f"--quick: the first {cfg['train_images']:,} training images for "
                     f"{_epochs_text(cfg['epochs'])}, a first look: the times are those of this "
                     "slice, the accuracies of a short run; without --quick both paths train the "
                     "recipe's epochs on the whole training set")
    return "\n".join(lines)
