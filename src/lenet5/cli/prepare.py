"""``lenet5 prepare``: get a dataset verified into the local cache."""

from __future__ import annotations

from pathlib import Path

from ..data import dataset_status, list_datasets, prepare
from ..errors import Lenet5Error
from ..io import ensure_writable_dir
from .common import add_data_args


def add_parser(sub) -> None:
    p = sub.add_parser("prepare", help="download or copy a dataset into the cache, verified",
                       description="Download the dataset from its public mirrors (tried in "
                       "turn), or take its files from --data-dir, verify every file by the "
                       "SHA-256 of its decompressed content, and keep it in the cache.")
    add_data_args(p)
    p.add_argument("--mirror", action="append", metavar="URL",
                   help="base URL to download from instead of the built-in mirrors "
                        "(repeatable; tried in order)")
    p.add_argument("--list", action="store_true",
                   help="list every dataset and where it is found (or that it is missing)")
    p.add_argument("--save-examples", metavar="DIR",
                   help="also write a few of its test images (for mnist-strings: test numbers "
                        "and training numbers) as PNGs into DIR, and grid.png of them all")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.list:
        for name, where in dataset_status(args.data_dir, args.dataset):
            print(f"{name:<14} {where}")
        return 0
    if args.dataset not in list_datasets():
        raise Lenet5Error(f"--dataset {args.dataset} is read from --data-dir where it is; "
                          "there is nothing to prepare")
    if args.save_examples:
        ensure_writable_dir(Path(args.save_examples))  # before the work, not after
    target, hashes = prepare(args.dataset, args.data_dir, mirrors=args.mirror)
    for name, digest in hashes.items():
        print(f"ok  {name:<26} sha256 {digest}")
    print(f"{args.dataset} is ready in {target}")
    if args.save_examples:
        from ..data import load_dataset
        from ..data.examples import save_examples

        written = save_examples(load_dataset(args.dataset, args.data_dir), args.save_examples)
        print(f"{len(written) - 1} examples and their grid in {args.save_examples}: {written[-1]}")
    return 0
