"""Do photos of the test numbers read as the numbers themselves? `lenet5 read` against the tensors.

    python benchmarks/read_photos.py CKPT --data-dir DIR [--strings 2000]

Each of the first ``--strings`` numbers of the ``mnist-strings`` test set is rendered as a
photo of a written number: dark ink on light paper (paper and ink of random greys),
enlarged 1.5 to 5 times (bilinear), set off-centre on a page with random margins, saved as
PNG and as JPEG (quality 75 to 95). ``lenet5 read CKPT DIR --json`` (the command, in a
subprocess) reads each directory; a photo agrees when its text is the text the reader
gives the number's tensor (``read_strips`` on the strip as composed), and agrees read
alike when its text is the tensor's read as ``lenet5 read`` reads a line
(``read_ink_maps``: the line's height normalized, read at three heights). Writes the
agreement per format (and the readings that differ) as JSON (``--json``, default
``docs/results/read-photos.json``), and the time to read one photo of a 5-digit number
in process (``read_file``, the model loaded, one thread): p50 over the 5-digit photos,
wall and CPU milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lenet5.checkpoint import load_checkpoint
from lenet5.data import load_dataset
from lenet5.io import atomic_write_text
from lenet5.reading.image import read_file
from lenet5.reading.line import read_ink_maps
from lenet5.reading.read import DecodeOptions, read_strips

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `benchmarks.` from anywhere
from benchmarks.timing import one_thread_p50  # noqa: E402


def render(strip: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A uint8 ink strip (bright on black) as a grey photo: dark ink on light paper,
    enlarged, off-centre."""
    k = rng.uniform(1.5, 5.0)
    h, w = strip.shape
    big = Image.fromarray(strip).resize((round(w * k), round(h * k)), Image.Resampling.BILINEAR)
    ink = np.asarray(big, dtype=np.float32) / 255
    paper, pen = rng.uniform(180, 250), rng.uniform(0, 80)
    left, right, top, bottom = (int(v) for v in rng.integers(10, 120, 4))
    page = np.full((ink.shape[0] + top + bottom, ink.shape[1] + left + right), paper, np.float32)
    page[top:top + ink.shape[0], left:left + ink.shape[1]] -= ink * (paper - pen)
    return Image.fromarray(np.clip(page.round(), 0, 255).astype(np.uint8))


def read_dir(ckpt: str, directory: Path) -> dict[str, str | None]:
    """``lenet5 read CKPT DIR --json``: file name -> text (None: an error)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, "-m", "lenet5", "read", ckpt, str(directory), "--json"],
                          capture_output=True, text=True, env=env)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"lenet5 read failed: {proc.stderr.strip()}")
    return {Path(o["file"]).name: o.get("text") for o in json.loads(proc.stdout)}


def latency_ms(model, pre, files: list[Path], rounds: int = 3) -> dict[str, float]:
    """p50 of reading one photo file in process, one thread: wall and CPU milliseconds (the
    same on an idle machine; on a shared one, CPU is what the reading itself cost)."""
    def reading(f: Path):
        return lambda: read_file(model, pre, f)

    wall, cpu = one_thread_p50((reading(f) for _ in range(rounds) for f in files),
                               warm_up=reading(files[0]))
    return {"photos": len(files), "p50_ms": round(wall, 2), "p50_cpu_ms": round(cpu, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--strings", type=int, default=2000, help="test numbers to render (of 10,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=str(ROOT / "docs" / "results" / "read-photos.json"),
                   metavar="FILE")
    args = p.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    test = load_dataset("mnist-strings", args.data_dir).test.subset(slice(0, args.strings))
    model = ckpt.build_model()
    tensors = read_strips(model, ckpt.preprocess, test.images, test.widths, DecodeOptions())
    # the tensors read as `lenet5 read` reads a line (normalize_line at each height)
    as_read = [r.text for r in read_ink_maps(model, ckpt.preprocess,
                                             [test.images[i, :, :int(test.widths[i])]
                                              for i in range(len(test))])]
    rng = np.random.default_rng(args.seed)
    result = {"about": "test numbers rendered as photos, read by lenet5 read, against the "
                       "reading of their tensors; measured by benchmarks/read_photos.py",
              "command": f"python benchmarks/read_photos.py CKPT --data-dir DIR "
                         f"--strings {args.strings}",
              "reader": {"model": ckpt.model_name, "seed": ckpt.config.get("seed"),
                         "epochs": ckpt.config.get("epochs")},
              "date": time.strftime("%Y-%m-%d"), "strings": len(test), "formats": {}}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {fmt: Path(tmp) / fmt for fmt in ("png", "jpeg")}
        for d in dirs.values():
            d.mkdir()
        for i in range(len(test)):
            photo = render(test.images[i, :, :int(test.widths[i])].numpy(), rng)
            photo.save(dirs["png"] / f"{i:05d}.png")
            photo.save(dirs["jpeg"] / f"{i:05d}.jpg", quality=int(rng.integers(75, 96)))
        for fmt, d in dirs.items():
            started = time.perf_counter()
            texts = read_dir(args.checkpoint, d)
            seconds = time.perf_counter() - started
            names = sorted(texts)
            differ = [{"string": i, "tensor": tensors[i].text, "photo": texts[n],
                       "truth": test.text(i)}
                      for i, n in enumerate(names) if texts[n] != tensors[i].text]
            agree = 1 - len(differ) / len(test)
            same_way = sum(texts[n] == as_read[i] for i, n in enumerate(names)) / len(test)
            result["formats"][fmt] = {"agreement": agree, "agreement_read_alike": same_way,
                                      "differ": differ,
                                      "right_tensor": sum(r.text == test.text(i)
                                                          for i, r in enumerate(tensors)) / len(test),
                                      "right_read_alike": sum(t == test.text(i) for i, t
                                                              in enumerate(as_read)) / len(test),
                                      "right_photo": sum(texts[n] == test.text(i)
                                                         for i, n in enumerate(names)) / len(test),
                                      "seconds": round(seconds, 1)}
            five = [d / n for i, n in enumerate(names) if len(test.text(i)) == 5]
            if five:
                result["formats"][fmt]["latency_5_digits"] = latency_ms(model, ckpt.preprocess, five)
            print(f"{fmt}: {agree:.2%} of {len(test)} photos read as their tensors "
                  f"({len(differ)} differ), {same_way:.2%} as their tensors read the same way "
                  f"(read_ink_maps), {seconds:.0f} s; one 5-digit photo: "
                  f"{result['formats'][fmt].get('latency_5_digits')}", file=sys.stderr)
    atomic_write_text(Path(args.json), json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
