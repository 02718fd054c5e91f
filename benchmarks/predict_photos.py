"""Predict's floor on photos: MNIST test digits made into phone photos are read as the originals.

Each 28x28 test digit becomes a photo of paper (``benchmarks/photogen.py``: uneven light,
shadows, ruled and squared paper, coloured pens, noise, JPEG, small digits on big sheets),
goes through ``lenet5.data.images.load_digit`` (the preprocessing of ``lenet5 predict``)
and the model; its answer is compared with the model's answer on the original 28x28
image. Test digit i becomes a photo of condition i mod (number of conditions). The floor:
the tuned conditions together agree on at least 99%. ``--held-out`` also runs the
conditions the preprocessing was not tuned on, on the same digits, reported apart.

    python benchmarks/predict_photos.py CHECKPOINT --data-dir DIR [--limit N] [--held-out]
        [--save-examples PNG] [--json]

Besides agreement, each condition's table row gives the mean correlation of the 28x28
the photo gave with the original (a model-free check, the better of the shifts by up to
one pixel) and the preprocessing's milliseconds per photo (decoding included).
``make_photo`` / ``photo_experiment`` are the plain case: evenly lit paper, PNG and JPEG.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import asdict, dataclass, field

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


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 28x28 digits, the best over shifts by up to one pixel (centring
    by mass rounds to whole pixels)."""
    b = b.astype(np.float64).ravel()
    return max(float(np.corrcoef(np.roll(a, (dy, dx), (0, 1)).astype(np.float64).ravel(), b)[0, 1])
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@dataclass
class ConditionStats:
    photos: int = 0
    agree: int = 0  # the model answers as it does on the original
    refused: int = 0  # "no ink found": counted as disagreeing
    similarity: float = 0.0  # summed; see mean_similarity
    seconds: float = 0.0  # preprocessing, decoding included
    sizes: list = field(default_factory=list)  # photo megapixels

    @property
    def agreement(self) -> float:
        return self.agree / max(1, self.photos)


def _read_photo(job: tuple) -> tuple:
    """One photo: made, then read as predict reads it. (index, condition name, 28x28 or
    None when refused, preprocessing seconds, similarity to the original, megapixels)."""
    from benchmarks.photogen import photo_file
    from lenet5.data.images import load_digit
    from lenet5.errors import Lenet5Error

    i, name, scene, digit = job
    data = photo_file(digit, scene)
    t = time.perf_counter()
    try:
        out = load_digit(data, f"{name}-{i}")
    except Lenet5Error:
        out = None
    seconds = time.perf_counter() - t
    return (i, name, out, seconds, similarity(out, digit) if out is not None else 0.0,
            scene.sheet[0] * scene.sheet[1] / 1e6)


def run_conditions(predictor, images: np.ndarray, conditions, seed: int = 0, jobs: int = 1,
                   batch: int = 500) -> dict[str, ConditionStats]:
    """Test digit i as a photo of ``conditions[i % len(conditions)]``: per condition, how
    the model's answers on the photos compare with its answers on the originals. ``jobs``
    processes make and read the photos (the timings are then each process's own)."""
    from multiprocessing import get_context

    from benchmarks.photo_conditions import scene

    stats = {c.name: ConditionStats() for c in conditions}
    pool = get_context("spawn").Pool(jobs) if jobs > 1 else None
    try:
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            original = predictor.probabilities(chunk).argmax(1).numpy()
            work = [(start + j, c.name, scene(c, start + j, seed), d)
                    for j, d in enumerate(chunk) for c in [conditions[(start + j) % len(conditions)]]]
            results = pool.map(_read_photo, work, chunksize=8) if pool else map(_read_photo, work)
            read = []
            for i, name, digit, seconds, sim, mp in results:
                st = stats[name]
                st.photos += 1
                st.seconds += seconds
                st.sizes.append(mp)
                if digit is None:
                    st.refused += 1
                    continue
                st.similarity += sim
                read.append((i - start, name, digit))
            if read:
                answer = predictor.probabilities(np.stack([d for _, _, d in read])).argmax(1).numpy()
                for (j, name, _), a in zip(read, answer):
                    stats[name].agree += int(a == original[j])
    finally:
        if pool:
            pool.close()
    return stats


def print_table(title: str, stats: dict[str, ConditionStats]) -> float:
    """The per-condition table; returns the overall agreement."""
    from benchmarks.photo_conditions import get_condition

    print(title)
    print(f"  {'condition':<16} {'photos':>6} {'agree':>7} {'differ':>6} {'refused':>7} "
          f"{'similar':>7} {'ms/photo':>8} {'MP':>4}  what")
    total = agree = 0
    for name, st in stats.items():
        total += st.photos
        agree += st.agree
        n = max(1, st.photos)
        print(f"  {name:<16} {st.photos:>6} {st.agreement:>7.4f} {st.photos - st.agree:>6} "
              f"{st.refused:>7} {st.similarity / n:>7.3f} {1000 * st.seconds / n:>8.1f} "
              f"{np.mean(st.sizes or [0]):>4.1f}  {get_condition(name).describe}")
    overall = agree / max(1, total)
    print(f"  {'all':<16} {total:>6} {overall:>7.4f} {total - agree:>6}")
    return overall


def main(argv: list[str] | None = None) -> int:
    from benchmarks.photo_conditions import CONDITIONS
    from lenet5.data import load_dataset
    from lenet5.predict import Predictor

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data-dir")
    ap.add_argument("--limit", type=int, help="only the first N test images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--held-out", action="store_true",
                    help="also the conditions the preprocessing was not tuned on")
    ap.add_argument("--save-examples", metavar="PNG",
                    help="write a figure of photos of each condition and the 28x28 predict made")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument("--jobs", type=int, default=1, help="processes making and reading photos")
    args = ap.parse_args(argv)
    test = load_dataset("mnist", args.data_dir).head(args.limit).test
    predictor = Predictor.from_checkpoint(args.checkpoint)
    images = test.images.numpy()
    original = predictor.probabilities(images).argmax(1).numpy()
    print(f"{len(images)} MNIST test digits, model {predictor.checkpoint.model_name}: accuracy on "
          f"the originals {(original == test.labels.numpy()).mean():.4f}")
    report = {}
    groups = [("tuned", [c for c in CONDITIONS if not c.held_out])]
    if args.held_out:
        groups.append(("held-out", [c for c in CONDITIONS if c.held_out]))
    ok = True
    for group, conditions in groups:
        started = time.perf_counter()
        stats = run_conditions(predictor, images, conditions, args.seed, args.jobs)
        overall = print_table(f"{group} conditions ({time.perf_counter() - started:.0f} s):", stats)
        report[group] = {"agreement": overall, "conditions": {n: asdict(st) | {"agreement": st.agreement}
                                                              for n, st in stats.items()}}
        if group == "tuned":
            ok = overall >= FLOOR
            print(f"  [{'ok' if ok else 'BELOW'} floor {FLOOR}]")
    if args.save_examples:
        save_examples(images, args.save_examples, args.seed)
    if args.json:
        for r in report.values():
            for st in r["conditions"].values():
                st.pop("sizes")
        print(json.dumps(report, indent=1))
    return 0 if ok else 1


def save_examples(images: np.ndarray, path: str, seed: int = 0, per_row: int = 4) -> None:
    """For some conditions, a few photos and the 28x28 digits predict made of them."""
    from matplotlib.figure import Figure

    from benchmarks.photo_conditions import CONDITIONS, scene
    from benchmarks.photogen import photo_file
    from lenet5.data.images import load_digit
    from lenet5.plots import save_figure

    shown = [c for c in CONDITIONS if c.name in ("shadow", "ruled", "squared", "colour-pen",
                                                   "small", "phone")]
    fig = Figure(figsize=(2.1 * per_row, 1.25 * len(shown)), layout="constrained")
    axes = fig.subplots(len(shown), 2 * per_row, width_ratios=[3, 1] * per_row)
    for r, c in enumerate(shown):
        for k in range(per_row):
            i = r * per_row + k
            data = photo_file(images[i], scene(c, i, seed))
            photo = Image.open(io.BytesIO(data)).convert("RGB")
            photo.thumbnail((240, 180))
            ax, ax28 = axes[r, 2 * k], axes[r, 2 * k + 1]
            ax.imshow(np.asarray(photo))
            ax28.imshow(255 - load_digit(data), cmap="gray", vmin=0, vmax=255)
            for a in (ax, ax28):
                a.set_xticks([])
                a.set_yticks([])
            if k == 0:
                ax.set_ylabel(c.name, fontsize=8)
    fig.suptitle("Generated photos and the 28x28 digit predict reads from each", fontsize=9)
    save_figure(fig, path)


if __name__ == "__main__":
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks.` from anywhere
    sys.exit(main())
