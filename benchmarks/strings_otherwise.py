"""How a string reader reads numbers composed otherwise than its test set: other spacing,
sizes, jitter and slants, all at once, and digits by other writers.

    python benchmarks/strings_otherwise.py [CKPT] --data-dir DIR [--strings 1500]

Each variant is ``--strings`` numbers (lengths 1-8) of MNIST's test digits, composed with
the test set's options but for what the variant changes, drawn with the same seed. "Other
writers" are scikit-learn's bundled ``load_digits`` (43 writers who are not MNIST's, 8x8
scans, normalized as ``benchmarks/robustness.py`` reads them), composed as the test set is;
left out without scikit-learn. Each number is read twice with the default decoding: its
tensor as composed (what ``lenet5 eval`` reads) and as ``lenet5 read`` reads any line
(``read_ink_maps``: its height measured and normalized). Writes
``docs/results/strings-otherwise.json`` (``--json``), which docs/reading.md renders.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `benchmarks.` from anywhere

from benchmarks.robustness import other_writers_digits  # noqa: E402
from lenet5.data import load_dataset  # noqa: E402
from lenet5.data.dataset import Split  # noqa: E402
from lenet5.data.strings import Strings, compose  # noqa: E402
from lenet5.io import atomic_write_text  # noqa: E402
from lenet5.reading.line import read_ink_maps  # noqa: E402
from lenet5.reading.metrics import reading_metrics  # noqa: E402
from lenet5.reading.read import read_strips  # noqa: E402
from lenet5.weights import resolve_checkpoint  # noqa: E402

# What each variant changes in the test set's options (data/strings.py: StringOptions)
VARIANTS: dict[str, dict] = {
    "as the test set": {},
    "overlapping: gaps -3 to -1 px": {"gap": (-3, -1)},
    "wide apart: gaps 6 to 12 px": {"gap": (6, 12)},
    "digit sizes 75-125%": {"scale": (0.75, 1.25)},
    "number sizes 70-140%": {"string_scale": (0.7, 1.4)},
    "vertical jitter 3 px": {"vertical_jitter": 3.0},
    "slant -0.3 to 0.3": {"slant": (-0.3, 0.3)},
    "all of these at once": {"gap": (-3, 8), "scale": (0.75, 1.25), "string_scale": (0.7, 1.4),
                             "vertical_jitter": 3.0, "slant": (-0.3, 0.3)},
}


def measure(model, pre, strings: Strings) -> dict:
    """Exact match and CER of the numbers' tensors and of the numbers read as lines."""
    truths = strings.texts()
    tensors = read_strips(model, pre, strings.images, strings.widths)
    lines = read_ink_maps(model, pre, [strings.images[i, :, :int(strings.widths[i])]
                                       for i in range(len(strings))])
    out = {}
    for view, readings in (("tensor", tensors), ("as_read", lines)):
        m = reading_metrics(truths, [r.text for r in readings], [r.confidence for r in readings])
        out[view] = {"exact_match": m.exact_match, "cer": m.cer}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", nargs="?", default="reader-ctc.mnist-strings",
                   help="a reader's checkpoint or shipped weights (default: the shipped reader-ctc)")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--strings", type=int, default=1500, help="numbers per variant")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--json", default=str(ROOT / "docs" / "results" / "strings-otherwise.json"),
                   metavar="FILE")
    args = p.parse_args(argv)
    ckpt = resolve_checkpoint(args.checkpoint)
    model = ckpt.build_model().eval()
    data = load_dataset("mnist-strings", args.data_dir)
    digits: dict[str, Split] = {"mnist": data.digits.test}
    others = other_writers_digits()
    if others is not None:
        digits["other writers"] = Split(*others)
    cases = [(name, "mnist", change) for name, change in VARIANTS.items()]
    cases += [("other writers' digits", "other writers", {})] if others is not None else []
    rows = []
    for name, source, change in cases:
        options = dataclasses.replace(data.test_options, **change)
        strings = compose(digits[source], args.strings, options,
                          torch.Generator().manual_seed(args.seed))
        row = {"variant": name, "digits": source,
               "options": options.to_dict(), **measure(model, ckpt.preprocess, strings)}
        rows.append(row)
        print(f"{name}: tensor {row['tensor']['exact_match']:.2%}, as read "
              f"{row['as_read']['exact_match']:.2%}", file=sys.stderr, flush=True)
    result = {"about": "numbers composed otherwise than the test set, read with the default "
                       "decoding; measured by benchmarks/strings_otherwise.py",
              "command": f"python benchmarks/strings_otherwise.py --data-dir DIR "
                         f"--strings {args.strings}",
              "reader": {"weights": args.checkpoint if not args.checkpoint.endswith(".safetensors")
                         else Path(args.checkpoint).name, "model": ckpt.model_name},
              "date": time.strftime("%Y-%m-%d"), "strings": args.strings, "rows": rows}
    atomic_write_text(Path(args.json), json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
