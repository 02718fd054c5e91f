"""Peak memory of refusing hostile input: a gzip bomb in a data directory, a gzip bomb from a
download mirror, a checkpoint whose metadata asks for 2,050,000 classes of AlexNet.

    python benchmarks/bounded_memory.py [--gigabytes 1.5]

Each case runs in a fresh interpreter that prints lenet5's one-line error and its own peak
RSS (``ru_maxrss``); the first row, the same interpreter doing nothing but the imports, is
the floor (torch's import). The tests (tests/data/test_idx.py, tests/data/test_download.py,
tests/test_checkpoint.py) use these helpers and assert each peak is under 1 GiB.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import struct
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MNIST_FILES = {"train-images-idx3-ubyte": (60000, 28, 28), "train-labels-idx1-ubyte": (60000,),
               "t10k-images-idx3-ubyte": (10000, 28, 28), "t10k-labels-idx1-ubyte": (10000,)}

_CHILD = """
import resource, sys
from pathlib import Path
from lenet5.checkpoint import load_checkpoint
from lenet5.data import load_dataset
from lenet5.data.download import download_file
from lenet5.data.registry import MNIST
from lenet5.errors import Lenet5Error
what, args = sys.argv[1], sys.argv[2:]
f = "train-images-idx3-ubyte"
for case in [args] if what == "mirror" else [[a] for a in args]:
    try:
        if what == "data-dir":
            load_dataset(data_dir=case[0])
        elif what == "checkpoint":
            load_checkpoint(case[0])
        elif what == "mirror":
            download_file(f, [case[0]], Path(case[1]), MNIST.sha256[f], MNIST.idx_format(f),
                          retries=0)
        print("accepted")
    except Lenet5Error as e:
        print(e)
# VmHWM: this process's own peak. ru_maxrss would also count the parent's memory at the
# fork, which Linux carries across exec (a large pytest process then "peaks" here).
try:
    status = Path("/proc/self/status").read_text()
    print(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")))
except (OSError, StopIteration):
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def gzip_bomb(header_shape: tuple[int, ...], gigabytes: float) -> bytes:
    """A gzip file whose IDX header announces ``header_shape`` and whose content then goes on
    for ``gigabytes`` of zeros: members of 1 MiB of zeros, about 1 KB each compressed."""
    header = bytes([0, 0, 0x08, len(header_shape)]) + struct.pack(f">{len(header_shape)}I",
                                                                   *header_shape)
    zeros = gzip.compress(bytes(1 << 20), mtime=0)
    return gzip.compress(header, mtime=0) + zeros * int(gigabytes * 1024)


def bomb_data_dir(directory: Path, header_shape: tuple[int, ...], gigabytes: float) -> Path:
    """A data directory of MNIST's four files, the training images a bomb, the others empty
    (never reached: the training images are read first)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, shape in MNIST_FILES.items():
        header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
        (directory / f"{name}.gz").write_bytes(gzip.compress(header))
    (directory / "train-images-idx3-ubyte.gz").write_bytes(gzip_bomb(header_shape, gigabytes))
    return directory


def refuse_in_child(what: str, *args: str) -> tuple[list[str], int]:
    """Run the ``what`` case in a fresh interpreter: "data-dir" (``args``: directories),
    "checkpoint" (files), "mirror" (a base URL and the directory to download into) or
    "imports" (nothing); returns its output lines, one per case, and its peak RSS in KiB."""
    r = subprocess.run([sys.executable, "-c", _CHILD, what, *args], capture_output=True,
                       text=True, timeout=600)
    *lines, peak = r.stdout.strip().splitlines() or ["", "0"]
    if r.returncode:
        raise RuntimeError(f"the child failed: {r.stderr[-2000:]}")
    return lines, int(peak)


def huge_checkpoint(path: Path) -> Path:
    """A classic checkpoint relabelled as AlexNet with 2,050,000 classes (33.6 GB of last
    layer, were it built), its weights hash intact."""
    from safetensors.torch import save as safetensors_save

    import lenet5
    from lenet5.checkpoint import weights_sha256
    from lenet5.models import get_model_entry

    tensors = {k: v.contiguous() for k, v in lenet5.create_model("classic").state_dict().items()}
    meta = {"format": "lenet5-checkpoint", "version": 1, "model": "alexnet",
            "model_args": {"num_classes": 2_050_000, "in_channels": 3},
            "preprocess": get_model_entry("alexnet").preprocess.to_dict(),
            "weights_sha256": weights_sha256(tensors)}
    path.write_bytes(safetensors_save(tensors, metadata={"lenet5": json.dumps(meta)}))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gigabytes", type=float, default=1.5, help="what each bomb expands to")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        served = bomb_data_dir(tmp / "served", (60000, 28, 28), args.gigabytes)
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
        handler.log_message = lambda *a: None
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        size = (served / "train-images-idx3-ubyte.gz").stat().st_size
        cases = [
            ("imports only (the floor)", "imports", []),
            (f"data dir: {size:,} B .gz, header 60000x28x28, {args.gigabytes} GB", "data-dir",
             [str(served)]),
            ("data dir: the same, header 60000x28x28000", "data-dir",
             [str(bomb_data_dir(tmp / "wide", (60000, 28, 28000), args.gigabytes))]),
            ("mirror: the first bomb over HTTP", "mirror",
             [f"http://127.0.0.1:{srv.server_address[1]}/", str(tmp / "cache")]),
            ("checkpoint: alexnet with 2,050,000 classes", "checkpoint",
             [str(huge_checkpoint(tmp / "huge.safetensors"))]),
        ]
        print("| case | peak RSS (MiB) | what lenet5 said |\n| --- | ---: | --- |")
        for label, what, case_args in cases:
            lines, peak = refuse_in_child(what, *case_args)
            said = (lines[0] if lines else "").replace(str(tmp), "TMP")
            print(f"| {label} | {peak // 1024:,} | {said[:160]} |")
        srv.shutdown()


if __name__ == "__main__":
    main()
