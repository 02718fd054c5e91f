"""``lenet5 read``: read the whole number written in image files with a string reader."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from dataclasses import dataclass

from ..data.folder import IMAGE_SUFFIXES
from ..errors import Lenet5Error
from ..io import ensure_writable_dir
from ..models import get_model_entry
from ..predict import Failure, _PreprocessedWriter, find_images
from ..training import pick_device
from ..weights import resolve_checkpoint
from .common import add_decode_args, add_device_arg, decode_options, split_checkpoint

JSON_HELP = """\
--json prints one array, an object per file, in the order the files were given:
  {"file": "4096.jpg", "text": "4096", "confidence": 0.9873,
   "digits": [{"digit": 4, "probability": 0.9990, "box": [x0, y0, x1, y1]}, ...]}
  text: the number read (a string: it may start with 0); confidence: the probability of
  that reading; box: each digit's place in the image, in its own pixels (x1, y1
  exclusive). With --reject T, a reading under T: {"file", "text": null, "rejected": true,
  "confidence"}. A file that failed: {"file": "x.png", "error": "..."}.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "read", help="read the whole number written in image files",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=JSON_HELP,
        description=textwrap.fill(
            "Read the number written in each image (a photo or scan of one line of "
            "handwritten digits: PNG, JPEG, BMP, GIF, WebP, TIFF, PGM/PPM/PBM; any size, "
            "colour or grey, dark ink on light paper or the reverse). The line is cropped to "
            "its ink and scaled so its digits are 20 pixels high, as MNIST's, and a string "
            "reader (reader-ctc, lenet5-ctc, lenet5-sdnn) reads it. A bad file gets its own "
            "error line; "
            "the others are still read, and the exit status is 1 if any failed.", 88))
    p.add_argument("inputs", nargs="+", metavar="[CKPT] IMAGE_OR_DIR",
                   help="a reader's .safetensors checkpoint or shipped weights' name (default: "
                        "the shipped reader), then image files, or directories searched "
                        f"(recursively) for files ending in {', '.join(IMAGE_SUFFIXES)}")
    p.add_argument("--json", action="store_true",
                   help="print one JSON array: an object per file; its fields are below")
    p.add_argument("--reject", type=float, metavar="T",
                   help="report readings of confidence under T (0-1) as rejected, not read")
    add_decode_args(p)
    p.add_argument("--save-preprocessed", metavar="DIR",
                   help="write the 32-pixel-high strip the reader saw for each file to "
                        "DIR/<name>.png")
    add_device_arg(p)
    p.set_defaults(func=run)


@dataclass
class Read:
    """One file's answer."""

    file: str
    reading: object  # a reading.line.LineReading
    rejected: bool = False
    preprocessed: str | None = None

    def to_dict(self) -> dict:
        r = self.reading
        if self.rejected:
            d = {"file": self.file, "text": None, "rejected": True, "confidence": r.confidence}
        else:
            d = {"file": self.file, "text": r.text, "confidence": r.confidence,
                 "digits": [{"digit": g.digit, "probability": g.probability, "box": list(g.box)}
                            for g in r.digits]}
        if self.preprocessed is not None:
            d["preprocessed"] = self.preprocessed
        return d

    def line(self, width: int) -> str:
        """``4096.jpg  4096  confidence: 0.9873  digits: 4 0.9990, 0 0.9981, 9 ..., 6 ...``"""
        r = self.reading
        if self.rejected:
            return f"{self.file:<{width}}  rejected  confidence: {r.confidence:.4f}"
        digits = ", ".join(f"{g.digit} {g.probability:.4f}" for g in r.digits)
        return (f"{self.file:<{width}}  {r.text or '(nothing read)'}  confidence: "
                f"{r.confidence:.4f}" + (f"  digits: {digits}" if digits else ""))


def load_reader(source: str):
    """The checkpoint ``source`` names, refused unless it is a reader of whole numbers."""
    ckpt = resolve_checkpoint(source)
    if get_model_entry(ckpt.model_name).task != "read":
        raise Lenet5Error(f"{source} holds {ckpt.model_name}, a classifier of single digits, "
                          "not a reader of whole numbers (`lenet5 predict` reads it)")
    return ckpt


def run(args) -> int:
    from ..reading.image import read_file

    if args.reject is not None and not 0 <= args.reject <= 1:
        raise Lenet5Error(f"--reject takes a confidence between 0 and 1, not {args.reject}")
    source, images = split_checkpoint(args.inputs, "read")
    ckpt = load_reader(source)
    if args.save_preprocessed:
        ensure_writable_dir(args.save_preprocessed)
    device = pick_device(args.device)
    model = ckpt.build_model().to(device).eval()
    options = decode_options(args, model, ckpt.model_name)
    saver = _PreprocessedWriter(args.save_preprocessed) if args.save_preprocessed else None
    width = min(max((len(name) for name, _, _ in find_images(images)), default=0), 60)
    results, failed = [], 0
    for name, path, error in find_images(images):
        if error is None:
            try:
                reading = read_file(model, ckpt.preprocess, path, name, options)
            except Lenet5Error as e:
                error = str(e)
        if error is not None:
            failed += 1
            results.append(Failure(name, error))
            print(f"lenet5: error: {error}", file=sys.stderr, flush=True)
            continue
        r = Read(name, reading, args.reject is not None and reading.confidence < args.reject)
        if saver is not None:
            r.preprocessed = str(saver.write(name, reading.strip.numpy()))
        results.append(r)
        if not args.json:
            print(r.line(width), flush=True)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    if failed:
        print(f"lenet5: {failed} of {len(results)} files failed ({len(results) - failed} read)",
              file=sys.stderr)
        return 1
    return 0
