"""Flags several commands share."""

from __future__ import annotations

import argparse

from ..data import IMAGE_FOLDER, dataset_choices
from ..data.store import DATA_DIR_ENV


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mnist", choices=dataset_choices(),
                   help=f"dataset (default: mnist); {IMAGE_FOLDER}: your own images in "
                        "--data-dir ROOT as ROOT/<class>/<image>")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"directory with the dataset's IDX files (.gz or raw); default: "
                        f"${DATA_DIR_ENV}, else the cache, else the system's dataset "
                        "directories, downloading what is missing")
    p.add_argument("--limit", type=int, metavar="N",
                   help="use only the first N images of each split (quick experiments)")


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps")
