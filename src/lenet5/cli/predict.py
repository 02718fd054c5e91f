"""``lenet5 predict``: read the digits in image files with a trained model."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from ..data.folder import IMAGE_SUFFIXES
from ..errors import Lenet5Error
from ..io import ensure_writable_dir
from ..predict import Failure, Predictor, find_images
from ..training import pick_device
from .common import CHECKPOINT_HELP, add_device_arg, split_checkpoint

JSON_HELP = """\
--json prints one array, an object per file, in the order the files were given:
  {"file": "three.png", "label": 3, "class": "3", "digit": 3, "probability": 0.9981,
   "top": [{"label": 3, "class": "3", "digit": 3, "probability": 0.9981}, ...]}
  label: int, the class's index (its position in the model's classes); class: str, its
  name; digit: int, the digit that name is, or null when the classes are not digits
  (Fashion-MNIST: "label": 9, "class": "Ankle boot", "digit": null). `lenet5 serve`'s
  /api/predict names the class with the same three fields. A file that failed:
  {"file": "x.png", "error": "..."}.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict", help="read the digit in image files",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=JSON_HELP,
        description=textwrap.fill(
            "Predict the digit in each image (PNG, JPEG, BMP, GIF, WebP, TIFF, PGM/PPM/PBM; "
            "any size, colour or grey, dark ink on light paper or the reverse). Each image is "
            "prepared as MNIST was: grey, light paper inverted, cropped to the ink, longer side "
            "scaled to 20 px, centred by mass in 28x28. A bad file gets its own error line; the "
            "others are still predicted, and the exit status is 1 if any failed.", 88))
    p.add_argument("images", nargs="+", metavar="[CHECKPOINT] IMAGE_OR_DIR",
                   help=f"{CHECKPOINT_HELP}; without one, the best shipped reader of digits "
                        "reads them. Then image files, or directories searched (recursively) "
                        f"for files ending in {', '.join(IMAGE_SUFFIXES)}")
    p.add_argument("--top", type=int, default=3, metavar="K",
                   help="also list the K most likely classes (default: 3)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON array: an object per file (errors too, with 'error'); "
                        "its fields are below")
    p.add_argument("--save-preprocessed", metavar="DIR",
                   help="write the 28x28 image fed to the model for each file to DIR/<name>.png")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    add_device_arg(p)
    p.set_defaults(func=run)


def format_prediction(pred, width: int) -> str:
    """``three.png  digit: 3  probability: 0.9981  top-3: 3 0.9981, 8 0.0012, 5 0.0004``
    (``class: Ankle boot`` where the classes are not digits)."""
    top = ", ".join(f"{c.class_name} {c.probability:.4f}" for c in pred.top)
    kind = "class" if pred.digit is None else "digit"
    return (f"{pred.file:<{width}}  {kind}: {pred.class_name}  "
            f"probability: {pred.probability:.4f}  top-{len(pred.top)}: {top}")


def run(args) -> int:
    if args.top < 1:
        raise Lenet5Error(f"--top must be at least 1, not {args.top}")
    if args.batch_size < 1:
        raise Lenet5Error(f"--batch-size must be positive, not {args.batch_size}")
    if args.save_preprocessed:
        ensure_writable_dir(args.save_preprocessed)
    checkpoint, args.images = split_checkpoint(args.images, "classify")
    predictor = Predictor.from_checkpoint(checkpoint, pick_device(args.device),
                                          batch_size=args.batch_size)
    width = min(max((len(name) for name, _, _ in find_images(args.images)), default=0), 60)
    results, failed = [], 0
    for r in predictor.iter_files(args.images, args.top, args.save_preprocessed):
        if isinstance(r, Failure):
            failed += 1
            print(f"lenet5: error: {r.error}", file=sys.stderr, flush=True)
        elif not args.json:
            print(format_prediction(r, width), flush=True)
        results.append(r)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    if failed:
        done = len(results) - failed
        print(f"lenet5: {failed} of {len(results)} files failed ({done} predicted)", file=sys.stderr)
        return 1
    return 0
