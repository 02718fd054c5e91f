"""Robustness table: accuracy of digit models on MNIST's test set changed the way people's
writing differs from MNIST (``lenet5.evaluation.robustness``), on photos of the digits
(``benchmarks/predict_photos.py``'s generator), and on digits by other writers.

    python benchmarks/robustness.py [CHECKPOINT_OR_WEIGHTS...] --data-dir DIR [--limit N] [--markdown]

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
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` as a package

from lenet5.checkpoint import load_checkpoint  # noqa: E402
from lenet5.data import load_dataset  # noqa: E402
from lenet5.data.images import mnistify  # noqa: E402
from lenet5.evaluation.robustness import SHIFTS, VIEWS, accuracy, as_page, robustness  # noqa: E402

FLOOR_POINTS = 2.0  # each shift (but the exempt ones) within this many points of clean


def other_writers_digits(pad: int = 2) -> tuple[torch.Tensor, torch.Tensor] | None:
    """scikit-learn's 8x8 digits (grey levels 0-16) drawn as dark ink on white paper with
    ``pad`` px of margin and read through ``mnistify``: uint8 (N, 28, 28) and labels; None
    without scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    d = load_digits()
    ink = np.round(d.images * (255 / 16)).astype(np.uint8)
    digits = np.stack([mnistify(as_page(np.pad(a, pad)), "optdigits") for a in ink])
    return torch.from_numpy(digits), torch.from_numpy(d.target).long()


def photo_digits(images: torch.Tensor, seed: int = 0) -> torch.Tensor | None:
    """The digits as photos by ``benchmarks/predict_photos.py``'s generator, read through
    ``lenet5 predict``'s preprocessing (``load_digit`` on the PNG); None without it."""
    try:
        from benchmarks.predict_photos import encode, make_photo
    except ImportError:
        return None
    from lenet5.data.images import load_digit

    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([load_digit(encode(make_photo(d, rng), "PNG"), "photo")
                                      for d in images.numpy()]))


def load_model(source: str):
    """A checkpoint path, or (where the package ships weights) a shipped weights name such
    as ``modern.mnist``."""
    try:
        from lenet5.weights import resolve_checkpoint
    except ImportError:
        return load_checkpoint(source)
    return resolve_checkpoint(source)


def shipped_digit_weights() -> list[str]:
    """Every shipped digit reader's weights name (none where the package ships none)."""
    try:
        from lenet5.weights import list_weights
    except ImportError:
        return []
    return list_weights("digits")


def evaluate_all(names: list[str], data, limit: int | None, views: list[str],
                 photos: bool, writers: bool) -> dict[str, dict[str, float]]:
    images, labels = data.test.images[:limit], data.test.labels[:limit]
    cache: dict = {}
    extra = {}
    if photos and (p := photo_digits(images)) is not None:
        extra["photos/predict"] = (p, labels)
    if writers and (w := other_writers_digits()) is not None:
        extra["other_writers/predict"] = w
    table = {}
    for name in names:
        ckpt = load_model(name)
        model, pre = ckpt.build_model(), ckpt.preprocess
        row = {f"{s}/{v}": a for (s, v), a in
               robustness(model, pre, images, labels, SHIFTS, views, cache).items()}
        for key, (x, y) in extra.items():
            row[key] = accuracy(model, pre, x, y)
        table[name] = row
    return table


def save_examples(images: torch.Tensor, path: str, count: int = 10) -> None:
    """A PNG: one row per shift (its name on the left), the first ``count`` test digits in
    the raw view (left) and the predict view (right)."""
    from PIL import Image, ImageDraw

    from lenet5.evaluation.robustness import view

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
        cells = [Path(name).stem if name.endswith(".safetensors") else name]
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
    table = evaluate_all(names, data, args.limit, args.views,
                         not args.no_photos, not args.no_other_writers)
    for view in args.views:
        print(f"\n{view} view: accuracy % (* more than {FLOOR_POINTS:g} points below clean; "
              "(exempt) shifts are reported, not held to that)")
        print(format_table(table, view, args.markdown))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
