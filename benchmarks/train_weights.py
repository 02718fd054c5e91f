"""Retrain every shipped weights file from scratch with its recorded command, and check it.

    python benchmarks/train_weights.py --data-dir DIR                     # all, checked
    python benchmarks/train_weights.py --data-dir DIR --only modern.mnist
    python benchmarks/train_weights.py --data-dir DIR --add "lenet5 train --model modern"
    python benchmarks/train_weights.py --data-dir DIR --write             # ship what it trained

For each entry of ``src/lenet5/weights/catalog.json`` it runs the recorded command (a
``lenet5 train ...`` line, with ``--data-dir`` and ``--out`` added) in a fresh process,
then checks that the new file's test accuracy lands within ``--tolerance`` (0.1 points) of
the recorded one; the exit status is 1 if any does not. ``--add COMMAND`` trains a new
entry. ``--write`` copies the new files into the package and rewrites the catalog with
their measured accuracy, the dataset's and the file's SHA-256 (entries not retrained this
time are kept as they are). Each file must stay under 600 KB. ``--remeasure`` re-reads the
readers' test sets after a change to how lines are read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from lenet5.checkpoint import load_checkpoint, save_checkpoint
from lenet5.io import atomic_write_bytes, atomic_write_text
from lenet5.models import get_model_entry
from lenet5.weights import CATALOG, Weights

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "lenet5" / "weights"
MAX_BYTES = 600 * 1024


def train(command: str, data_dir: str | None, out: Path, threads: int | None) -> dict:
    """Run one recorded ``lenet5 train ...`` command; the entry it gives (file not yet shipped)."""
    words = shlex.split(command)
    if words[:2] != ["lenet5", "train"]:
        raise SystemExit(f"not a `lenet5 train` command: {command}")
    args = [sys.executable, "-m", "lenet5", *words[1:], "--out", str(out), "--no-progress"]
    if data_dir:
        args += ["--data-dir", data_dir]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    started = time.perf_counter()
    print(f"$ {command}", flush=True)
    subprocess.run(args, check=True, env=env)
    seconds = time.perf_counter() - started
    data = shippable(out)
    ckpt = load_checkpoint(out)
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{out}: {len(data):,} bytes, over the {MAX_BYTES:,}-byte limit")
    task = get_model_entry(ckpt.model_name).task
    test = ckpt.metrics["test"]
    accuracy = test["acc"] if task == "classify" else test["exact_match"]  # whole numbers right
    return {"model": ckpt.model_name, "dataset": ckpt.dataset["name"],
            "sha256": hashlib.sha256(data).hexdigest(),
            "accuracy": round(float(accuracy), 4), "command": command,
            "dataset_sha256": ckpt.dataset["sha256"], "task": task, "seconds": round(seconds, 1)}


def shippable(path: Path) -> bytes:
    """The checkpoint's bytes as shipped: the same weights and metrics, without the paths of
    the machine that trained it (``data_dir``; ``out`` kept only if relative), every
    argument of its model named."""
    ckpt = load_checkpoint(path)
    out = ckpt.config.get("out")
    if out and Path(out).is_absolute():
        out = Path(out).name
    ckpt.config = {**ckpt.config, "data_dir": None, "out": out}
    # every argument named, so that a later change of a default leaves the file readable
    ckpt.model_args = {**get_model_entry(ckpt.model_name).defaults(), **ckpt.model_args}
    save_checkpoint(path, ckpt)
    return path.read_bytes()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="the datasets' files (default: the lenet5 cache)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="retrain only these entries")
    p.add_argument("--add", nargs="+", default=[], metavar="COMMAND",
                   help="train new entries from these `lenet5 train ...` commands")
    p.add_argument("--tolerance", type=float, default=0.001,
                   help="largest accepted accuracy difference (default: 0.001, 0.1 points)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the training processes")
    p.add_argument("--write", action="store_true",
                   help="copy the new files into the package and rewrite the catalog")
    p.add_argument("--work-dir", default="runs/train_weights")
    p.add_argument("--scrub", action="store_true",
                   help="only rewrite the shipped files without their training data's path "
                        "(and their hashes in the catalog)")
    p.add_argument("--remeasure", action="store_true",
                   help="only re-measure the shipped readers' test exact match as `lenet5 eval` "
                        "reads now (after a change to how lines are read) into the catalog")
    args = p.parse_args()
    if args.scrub:
        return scrub()
    if args.remeasure:
        return remeasure(args.data_dir)

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    catalog = json.loads((PACKAGE_DIR / CATALOG).read_text())
    entries = {e["model"] + "." + e["dataset"]: e for e in catalog["weights"]}
    # --add alone trains only the new entries; --only picks among the recorded ones
    todo = [(n, e["command"]) for n, e in entries.items()
            if (n in args.only if args.only else not args.add)]
    todo += [(None, c) for c in args.add]
    failed, written = [], {}
    for i, (name, command) in enumerate(todo):
        out = work / f"{name or 'new'}-{i}.safetensors"
        new = train(command, args.data_dir, out, args.threads)
        new_name = f"{new['model']}.{new['dataset']}"
        old = entries.get(new_name)
        verdict = "new"
        if old is not None:
            diff = new["accuracy"] - old["accuracy"]
            verdict = f"recorded {old['accuracy']:.4f}, difference {100 * diff:+.2f} points"
            if abs(diff) > args.tolerance + 1e-9:
                failed.append(new_name)
                verdict += " (OUT OF TOLERANCE)"
        print(f"{new_name}: test accuracy {new['accuracy']:.4f} in {new['seconds']} s; {verdict}",
              flush=True)
        if args.write:
            atomic_write_bytes(PACKAGE_DIR / Weights(**{k: v for k, v in new.items()
                                                        if k != "seconds"}).file,
                               out.read_bytes())
            keep = {k: (old or {}).get(k) for k in ("description",) if (old or {}).get(k)}
            entries[new_name] = written[new_name] = {
                **{k: v for k, v in new.items() if k != "seconds"}, **keep}
    if args.write:  # read again: another run may have written its entries meanwhile
        catalog = json.loads((PACKAGE_DIR / CATALOG).read_text())
        entries = {e["model"] + "." + e["dataset"]: e for e in catalog["weights"]} | written
        catalog["weights"] = [entries[n] for n in sorted(entries)]
        atomic_write_text(PACKAGE_DIR / CATALOG, json.dumps(catalog, indent=2) + "\n")
        print(f"wrote {PACKAGE_DIR / CATALOG} ({len(entries)} entries)")
    if failed:
        print(f"out of tolerance: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def scrub() -> int:
    """Rewrite each shipped file as ``shippable`` and its hash in the catalog."""
    catalog = json.loads((PACKAGE_DIR / CATALOG).read_text())
    for e in catalog["weights"]:
        path = PACKAGE_DIR / Weights(**e).file
        e["sha256"] = hashlib.sha256(shippable(path)).hexdigest()
    atomic_write_text(PACKAGE_DIR / CATALOG, json.dumps(catalog, indent=2) + "\n")
    return 0


def remeasure(data_dir: str | None) -> int:
    """The catalog's accuracy of each reader of whole numbers, read again as `lenet5 eval`
    reads its test set with this version of the code (the weights are not touched)."""
    from lenet5.data import load_dataset
    from lenet5.reading.objectives import evaluate_reader

    catalog = json.loads((PACKAGE_DIR / CATALOG).read_text())
    for e in catalog["weights"]:
        w = Weights(**e)
        if w.task != "read":
            continue
        ckpt = w.load()
        metrics, _ = evaluate_reader(ckpt.build_model().eval(), ckpt.preprocess,
                                     load_dataset(w.dataset, data_dir).test)
        print(f"{w.name}: exact match {e['accuracy']:.4f} -> {metrics.exact_match:.4f}")
        e["accuracy"] = round(metrics.exact_match, 4)
    atomic_write_text(PACKAGE_DIR / CATALOG, json.dumps(catalog, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
