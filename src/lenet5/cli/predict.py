"""``lenet5 predict``: read the digits in image files with a trained model."""

from __future__ import annotations

import json
import sys

from ..errors import Lenet5Error
from ..io import ensure_writable_dir
from ..predict import Failure, Predictor, find_images
from ..training import pick_device
from .common import add_device_arg


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict", help="read the digit in image files",
        description="Predict the digit in each image (PNG, JPEG, BMP, GIF, WebP; any size, "
        "colour or grey, dark ink on light paper or the reverse). Each image is prepared as "
        "MNIST was: grey, light paper inverted, cropped to the ink, longer side scaled to "
        "20 px, centred by mass in 28x28. A bad file gets its own error line; the others are "
        "still predicted, and the exit status is 1 if any failed.")
    p.add_argument("checkpoint", help="a .safetensors checkpoint written by `lenet5 train`")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files, or directories searched (recursively) for them")
    p.add_argument("--top", type=int, default=3, metavar="K",
                   help="also list the K most likely classes (default: 3)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON array: an object per file (errors too, with 'error')")
    p.add_argument("--save-preprocessed", metavar="DIR",
                   help="write the 28x28 image fed to the model for each file to DIR/<name>.png")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    add_device_arg(p)
    p.set_defaults(func=run)


def format_prediction(pred, width: int) -> str:
    """``three.png  digit: 3  probability: 0.9981  top-3: 3 0.9981, 8 0.0012, 5 0.0004``"""
    top = ", ".join(f"{name} {p:.4f}" for name, p in pred.top)
    return (f"{pred.file:<{width}}  digit: {pred.digit}  probability: {pred.probability:.4f}  "
            f"top-{len(pred.top)}: {top}")


def run(args) -> int:
    if args.top < 1:
        raise Lenet5Error(f"--top must be at least 1, not {args.top}")
    if args.batch_size < 1:
        raise Lenet5Error(f"--batch-size must be positive, not {args.batch_size}")
    if args.save_preprocessed:
        ensure_writable_dir(args.save_preprocessed)
    predictor = Predictor.from_checkpoint(args.checkpoint, pick_device(args.device),
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
