"""Flags several commands share."""

from __future__ import annotations

import argparse

from ..data import list_datasets
from ..data.store import DATA_DIR_ENV


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mnist", choices=list_datasets(),
                   help="dataset (default: mnist)")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"directory with the dataset's IDX files (.gz or raw); default: "
                        f"${DATA_DIR_ENV}, else the cache, downloading what is missing")
    p.add_argument("--limit", type=int, metavar="N",
                   help="use only the first N images of each split (quick experiments)")


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps")
