"""Predict's floor on photos: MNIST test digits made into phone photos are read as the originals.

Each 28x28 test digit becomes a photo of paper (``benchmarks/photogen.py``: uneven light,
shadows, ruled and squared paper, coloured pens, noise, JPEG, small digits on big sheets,
and held-out kinds of photo the preprocessing was not tuned on), goes through
``lenet5.data.images.load_digit`` (the preprocessing of ``lenet5 predict``) and the model;
its answer is compared with the model's answer on the original 28x28 image. Digit i of
the test set becomes a photo of condition i mod (number of conditions), so every test
digit is used once per group of conditions.

    python benchmarks/predict_photos.py CHECKPOINT --data-dir DIR [--limit N] [--held-out]

``make_photo`` / ``photo_experiment`` are the plain case (evenly lit paper, PNG and JPEG).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

FLOOR = 0.99
FORMATS = {"PNG": {}, "JPEG": {"quality": 90}}


def make_photo(digit: np.ndarray, rng: np.random.Generator,
               resample: Image.Resampling = Image.Resampling.BILINEAR) -> Image.Image:
    """A 28x28 uint8 MNIST digit as a photo of dark ink on light paper, off-centre.

    ``BILINEAR`` upscaling blurs the strokes a little more than MNIST's own; ``NEAREST``
    keeps exactly the original's pixels, blown up, so any disagreement is preprocessing's.
    """
    scale = int(rng.integers(4, 11))
    paper, ink = float(rng.integers(215, 256)), float(rng.integers(0, 41))
    page = paper - digit.astype(np.float32) / 255.0 * (paper - ink)
    side = 28 * scale
    big = Image.fromarray(np.round(page).astype(np.uint8)).resize(
        (side, side), resample)
    width = side + int(rng.integers(side // 4, side + 1))
    height = side + int(rng.integers(side // 4, side + 1))
    canvas = Image.new("L", (width, height), int(paper))
    canvas.paste(big, (int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))))
    return canvas


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **FORMATS[fmt])
    return buf.getvalue()


@dataclass
class PhotoResult:
    images: int
    agree: dict[str, int]  # format -> photos answered as the original
    correct_original: int
    correct: dict[str, int]  # format -> photos answered with the true label

    def agreement(self, fmt: str) -> float:
        return self.agree[fmt] / self.images


def photo_experiment(predictor, images: np.ndarray, labels: np.ndarray, seed: int = 0,
                     batch: int = 500, resample: Image.Resampling = Image.Resampling.BILINEAR
                     ) -> PhotoResult:
    """Answers on the originals against answers on their PNG and JPEG photos."""
    from lenet5.data.images import load_digit

    rng = np.random.default_rng(seed)
    agree = dict.fromkeys(FORMATS, 0)
    correct = dict.fromkeys(FORMATS, 0)
    correct_original = 0
    for start in range(0, len(images), batch):
        chunk, truth = images[start:start + batch], labels[start:start + batch]
        original = predictor.probabilities(chunk).argmax(1).numpy()
        correct_original += int((original == truth).sum())
        photos = [make_photo(d, rng, resample) for d in chunk]
        for fmt in FORMATS:
            digits = np.stack([load_digit(encode(p, fmt), f"photo.{fmt.lower()}") for p in photos])
            answer = predictor.probabilities(digits).argmax(1).numpy()
            agree[fmt] += int((answer == original).sum())
            correct[fmt] += int((answer == truth).sum())
    return PhotoResult(len(images), agree, correct_original, correct)



def agreement_by_condition(predictor, images: np.ndarray, conditions, seed: int = 0,
                           read=None, batch: int = 200, progress=None) -> dict:
    """Per condition: photos, how many the model answers as it answers the original, how
    many are refused, and the preprocessing seconds per photo (decode included)."""
    from benchmarks.photogen import encode as encode_as
    from benchmarks.photogen import render, scene
    from lenet5.data.images import load_digit
    from lenet5.errors import Lenet5Error

    read = read or load_digit
    stats = {c.name: {"photos": 0, "agree": 0, "refused": 0, "seconds": 0.0} for c in conditions}
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        original = predictor.probabilities(chunk).argmax(1).numpy()
        digits, where = [], []
        for j, d in enumerate(chunk):
            c = conditions[(start + j) % len(conditions)]
            s = scene(c, start + j, seed)
            photo = render(d, s)
            data = encode_as(photo, s.fmt, s.quality)
            t = time.perf_counter()
            try:
                digits.append(read(data, f"{c.name}-{start + j}"))
                where.append((c.name, j))
            except Lenet5Error:
                stats[c.name]["refused"] += 1
            stats[c.name]["seconds"] += time.perf_counter() - t
            stats[c.name]["photos"] += 1
        if digits:
            answer = predictor.probabilities(np.stack(digits)).argmax(1).numpy()
            for (name, j), a in zip(where, answer):
                stats[name]["agree"] += int(a == original[j])
        if progress:
            progress(start + len(chunk))
    return stats


def print_table(title: str, stats: dict) -> float:
    """The per-condition table and the overall agreement (returned)."""
    from benchmarks.photogen import get_condition

    print(title)
    print(f"  {'condition':<16} {'photos':>6} {'agree':>7} {'differ':>6} {'refused':>7} {'ms/photo':>8}  what")
    total = agree = 0
    for name, st in stats.items():
        total += st["photos"]
        agree += st["agree"]
        print(f"  {name:<16} {st['photos']:>6} {st['agree'] / max(1, st['photos']):>7.4f} "
              f"{st['photos'] - st['agree']:>6} {st['refused']:>7} {1000 * st['seconds'] / max(1, st['photos']):>8.1f}"
              f"  {get_condition(name).describe}")
    overall = agree / max(1, total)
    print(f"  {'all':<16} {total:>6} {overall:>7.4f} {total - agree:>6}")
    return overall


def main(argv: list[str] | None = None) -> int:
    from lenet5.data import load_dataset
    from lenet5.predict import Predictor

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data-dir")
    ap.add_argument("--limit", type=int, help="only the first N test images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--upscale", default="bilinear", choices=["bilinear", "bicubic", "nearest"],
                    help="how the digit is enlarged into the photo (default: bilinear)")
    ap.add_argument("--save-examples", metavar="PATH",
                    help="write a PNG of the first 8 photos and what predict fed the model")
    args = ap.parse_args(argv)
    test = load_dataset("mnist", args.data_dir).head(args.limit).test
    predictor = Predictor.from_checkpoint(args.checkpoint)
    started = time.perf_counter()
    resample = Image.Resampling[args.upscale.upper()]
    r = photo_experiment(predictor, test.images.numpy(), test.labels.numpy(), args.seed,
                         resample=resample)
    seconds = time.perf_counter() - started
    print(f"{r.images} MNIST test images as photos ({args.upscale} upscaling), model "
          f"{predictor.checkpoint.model_name} ({seconds:.0f} s)")
    print(f"  original 28x28: accuracy {r.correct_original / r.images:.4f}")
    ok = True
    for fmt in FORMATS:
        a = r.agreement(fmt)
        ok &= a >= FLOOR
        print(f"  {fmt:<4} photos:    agreement with the originals' answers {a:.4f} "
              f"({r.images - r.agree[fmt]} differ), accuracy {r.correct[fmt] / r.images:.4f}"
              f"  [{'ok' if a >= FLOOR else 'BELOW'} floor {FLOOR}]")
    if args.save_examples:
        save_examples(test.images.numpy()[:8], args.save_examples, args.seed)
    return 0 if ok else 1


def save_examples(digits: np.ndarray, path: str, seed: int) -> None:
    """Original, photo (as JPEG) and the 28x28 predict made of it, for the README."""
    from matplotlib.figure import Figure

    from lenet5.data.images import load_digit
    from lenet5.plots import save_figure

    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(1.3 * len(digits), 4.2), layout="constrained")
    axes = fig.subplots(3, len(digits))
    for j, d in enumerate(digits):
        photo = Image.open(io.BytesIO(encode(make_photo(d, rng), "JPEG")))
        for row, (img, what) in enumerate([(255 - d, "MNIST"), (np.asarray(photo), "photo"),
                                           (255 - load_digit(encode(photo, "PNG")), "predict's")]):
            ax = axes[row, j]
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(what)
            if row == 1:
                ax.set_xlabel(f"{photo.width}x{photo.height}", fontsize=8)
    fig.suptitle("MNIST digit, its JPEG photo, and the 28x28 predict fed the model")
    save_figure(fig, path)


if __name__ == "__main__":
    sys.exit(main())
