"""Robustness table: accuracy of digit models on MNIST's test set changed the way people's
writing differs from MNIST (``lenet5.evaluation.robustness``), on photos of the digits
(``benchmarks/predict_photos.py``'s generator), and on digits by other writers.

    python benchmarks/robustness.py [CHECKPOINT_OR_WEIGHTS...] --data-dir DIR [--limit N] [--markdown]
    python benchmarks/robustness.py ... --json docs/results/robustness.json   # docs/robustness.md's table

Two views of every shifted digit: ``predict`` (drawn as dark ink on white paper and read
through ``lenet5 predict``'s preprocessing, what a user gets) and ``raw`` (the shifted 28x28
straight into the network). "Other writers" is scikit-learn's bundled ``load_digits``
(UCI optdigits: 1,797 digits of 8x8 by 43 writers who are not MNIST's), read as
``predict`` reads an image; it needs scikit-learn (``pip install scikit-learn``) and is
left out without it. The transformed digits are made once and shared by all models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` as a package

from lenet5.data import load_dataset  # noqa: E402
from lenet5.data.images import mnistify  # noqa: E402
from lenet5.evaluation.robustness import (  # noqa: E402
    SHIFTS,
    VIEWS,
    accuracy,
    as_page,
    load_views,
    save_views,
    view,
)
from lenet5.weights import list_weights, resolve_checkpoint  # noqa: E402

FLOOR_POINTS = 2.0  # each shift (but the exempt ones) within this many points of clean


def other_writers_digits(pad: int = 2) -> tuple[torch.Tensor, torch.Tensor] | None:
    """scikit-learn's 8x8 digits (grey levels 0-16) drawn as dark ink on white paper with
    ``pad`` px of margin, enlarged 4 times (as a scan of them would be: a photo is not 12
    pixels wide) and read through ``mnistify``: uint8 (N, 28, 28) and labels; None without
    scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    d = load_digits()
    ink = np.round(d.images * (255 / 16)).astype(np.uint8)
    pages = (as_page(np.pad(a, pad)) for a in ink)
    digits = np.stack([mnistify(p.resize((4 * p.width, 4 * p.height), Image.BILINEAR), "optdigits")
                       for p in pages])
    return torch.from_numpy(digits), torch.from_numpy(d.target).long()


def photo_digits(images: torch.Tensor, seed: int = 0) -> torch.Tensor | None:
    """The digits as photos by ``benchmarks/predict_photos.py``'s generator, read through
    ``lenet5 predict``'s preprocessing (``load_digit`` on the PNG); None without it. The
    "photos" column: a richer generator (uneven light, ruled paper, coloured ink) plugs in
    here, returning the digits as ``predict`` reads them."""
    try:
        from benchmarks.predict_photos import encode, make_photo
    except ImportError:
        return None
    from lenet5.data.images import load_digit

    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([load_digit(encode(make_photo(d, rng), "PNG"), "photo")
                                      for d in images.numpy()]))


def shipped_digit_weights() -> list[str]:
    """Every shipped digit reader's weights name (``lenet5 weights``)."""
    return list_weights("classify")


def display_name(source: str, ckpt) -> str:
    """A row's name: a weights name as given, a checkpoint by its model's name."""
    return ckpt.model_name if source.endswith(".safetensors") else source


def prepare(data, limit: int | None, views: list[str], photos: bool, writers: bool,
            cache_file: str | None = None) -> dict:
    """Every digit set the models are measured on, keyed (set, view) -> (images, labels):
    the shifted test digits, photos and other writers; kept in ``cache_file`` if given
    (made once, about two minutes of one core for the whole test set)."""
    images, labels = data.test.images[:limit], data.test.labels[:limit]
    cache = load_views(cache_file)
    n = len(cache)
    for shift in SHIFTS:
        for how in views:
            if (shift.name, how) not in cache:
                cache[(shift.name, how)] = view(images, shift, how)
    if photos and ("photos", "predict") not in cache and (p := photo_digits(images)) is not None:
        cache[("photos", "predict")] = p
    if writers and ("other_writers", "predict") not in cache and (w := other_writers_digits()):
        cache[("other_writers", "predict")], cache[("other_writers", "labels")] = w
    if len(cache) > n:
        save_views(cache, cache_file)
    sets = {(s.name, how): (cache[(s.name, how)], labels) for s in SHIFTS for how in views}
    if photos and ("photos", "predict") in cache:
        sets[("photos", "predict")] = (cache[("photos", "predict")], labels)
    if writers and ("other_writers", "predict") in cache:
        sets[("other_writers", "predict")] = (cache[("other_writers", "predict")],
                                              cache[("other_writers", "labels")])
    return sets


def evaluate_all(names: list[str], sets: dict) -> dict[str, dict[str, float]]:
    table = {}
    for name in names:
        ckpt = resolve_checkpoint(name)
        model, pre = ckpt.build_model(), ckpt.preprocess
        table[display_name(name, ckpt)] = {f"{s}/{v}": accuracy(model, pre, x, y)
                                           for (s, v), (x, y) in sets.items()}
    return table


def save_examples(images: torch.Tensor, path: str, count: int = 10) -> None:
    """A PNG: one row per shift (its name on the left), the first ``count`` test digits in
    the raw view (left) and the predict view (right)."""
    from PIL import Image, ImageDraw

    x = images[:count]
    label_w, gap, scale = 70, 8, 2
    rows = []
    for shift in SHIFTS:
        raw = torch.cat(list(view(x, shift, "raw")), 1)
        pred = torch.cat(list(view(x, shift, "predict")), 1)
        rows.append(torch.cat([raw, torch.full((28, gap), 128, dtype=torch.uint8), pred], 1))
    grid = torch.cat(rows, 0).numpy()
    img = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale),
                                       Image.Resampling.NEAREST)
    page = Image.new("L", (img.width + label_w, img.height), 255)
    page.paste(img, (label_w, 0))
    draw = ImageDraw.Draw(page)
    for i, shift in enumerate(SHIFTS):
        draw.text((4, i * 28 * scale + 22), shift.name, fill=0)
    page.save(path)


def format_table(table: dict[str, dict[str, float]], view: str, markdown: bool) -> str:
    """Accuracy % per model (rows) and shift (columns) in one view; a shift more than
    FLOOR_POINTS below clean is starred (exempt shifts in parentheses in the header)."""
    keys = [k for k in next(iter(table.values())) if k.endswith("/" + view)
            or (view == "predict" and not k.endswith("/raw"))]
    keys = list(dict.fromkeys(keys))
    exempt = {s.name for s in SHIFTS if s.exempt}

    def head(k: str) -> str:
        s = k.split("/")[0]
        return f"({s})" if s in exempt else s

    lines = []
    cols = ["model"] + [head(k) for k in keys]
    for name, row in table.items():
        clean = row.get(f"clean/{view}", 1.0)
        cells = [name]
        for k in keys:
            a = row[k]
            star = "*" if (k.split("/")[0] not in exempt and k.split("/")[0] != "other_writers"
                           and (clean - a) * 100 > FLOOR_POINTS) else ""
            cells.append(f"{a * 100:.2f}{star}")
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        out += ["| " + " | ".join(c) + " |" for c in lines]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in [cols, *lines]) for i in range(len(cols))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))) for r in [cols, *lines])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="*",
                   help="checkpoint paths or shipped weights names (default: every shipped digit reader)")
    p.add_argument("--data-dir")
    p.add_argument("--limit", type=int, help="the first N test digits only")
    p.add_argument("--views", nargs="+", choices=VIEWS, default=list(VIEWS))
    p.add_argument("--no-photos", action="store_true")
    p.add_argument("--no-other-writers", action="store_true")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--views-cache", metavar="FILE",
                   help="keep the shifted digits here and reuse them (same --limit only)")
    p.add_argument("--json", help="also write the accuracies to this file")
    p.add_argument("--save-examples", metavar="PNG",
                   help="draw the first test digits under every shift, raw and through predict")
    args = p.parse_args(argv)
    names = args.checkpoints or shipped_digit_weights()
    if not names:
        p.error("name the checkpoints to measure (this package ships no weights)")
    data = load_dataset(data_dir=args.data_dir)
    if args.save_examples:
        save_examples(data.test.images, args.save_examples)
    sets = prepare(data, args.limit, args.views, not args.no_photos, not args.no_other_writers,
                   args.views_cache)
    table = evaluate_all(names, sets)
    for how in args.views:
        print(f"\n{how} view: accuracy % (* more than {FLOOR_POINTS:g} points below clean; "
              "(exempt) shifts are reported, not held to that)")
        print(format_table(table, how, args.markdown))
    if args.json:
        from lenet5.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(record(table, names, args), indent=1) + "\n")
    return 0


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def record(table: dict[str, dict[str, float]], names: list[str], args) -> dict:
    """What ``--json`` writes (docs/generate.py renders it): the accuracies, the command and
    where they were measured."""
    cmd = ["python benchmarks/robustness.py", *names, "--data-dir DIR"]
    if args.limit:
        cmd.append(f"--limit {args.limit}")
    return {"about": "accuracy on MNIST's test digits under each shift (benchmarks/robustness.py)",
            "source": "measured", "command": " ".join(cmd),
            "conditions": {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
                           "cpu": _cpu(), "cores": os.cpu_count()},
            "floor_points": FLOOR_POINTS,
            "exempt": [s.name for s in SHIFTS if s.exempt],
            "models": table}


if __name__ == "__main__":
    raise SystemExit(main())
