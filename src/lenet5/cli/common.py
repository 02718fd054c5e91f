"""Flags several commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import Checkpoint
from ..data import IMAGE_FOLDER, Dataset, dataset_choices, load_dataset
from ..data.folder import FolderFormat, folder_format
from ..data.store import DATA_DIR_ENV
from ..errors import Lenet5Error
from ..models import get_model_entry

_TASKS = {"classify": "classifier of single images", "read": "reader of whole numbers"}
DEFAULT_DATASETS = {"classify": "mnist", "read": "mnist-strings"}  # what `train` uses unasked


def add_data_args(p: argparse.ArgumentParser, of_checkpoint: bool = False,
                  by_task: bool = False) -> None:
    """``--dataset``, ``--data-dir``, ``--limit``; ``of_checkpoint``: the dataset defaults to
    the one the checkpoint was trained on (see ``load_checkpoint_data``); ``by_task``: to
    the model's task's (``default_dataset``)."""
    default = ("the checkpoint's" if of_checkpoint else
               "mnist, or mnist-strings for readers of whole numbers" if by_task else "mnist")
    p.add_argument("--dataset", default=None if of_checkpoint or by_task else "mnist",
                   choices=dataset_choices(),
                   help=f"dataset (default: {default}); {IMAGE_FOLDER}: your own images in "
                        "--data-dir ROOT as ROOT/<class>/<image>")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"directory with the dataset's IDX files (.gz or raw); default: "
                        f"${DATA_DIR_ENV}, else the cache, else the system's dataset "
                        "directories, downloading what is missing")
    p.add_argument("--limit", type=int, metavar="N",
                   help="use only the first N images of each split (quick experiments)")


CHECKPOINT_HELP = ("a .safetensors checkpoint written by `lenet5 train`, or the name of "
                   "shipped weights (`lenet5 weights` lists them)")


def checkpoint_file(source: str) -> Path:
    """Where files derived from a checkpoint go by default: beside a checkpoint file
    (``runs/classic.safetensors``), or named after shipped weights in the current directory
    (``modern.mnist`` -> ``modern.mnist.safetensors``)."""
    from ..weights import is_weights_name

    path = Path(source)
    if is_weights_name(source) and not path.exists():
        return Path(source + ".safetensors")
    return path


def split_checkpoint(words: list[str], task: str) -> tuple[str, list[str]]:
    """``[CHECKPOINT] INPUT...`` as ``(checkpoint, inputs)``: the first word is the
    checkpoint if it is a ``.safetensors`` file or the name of shipped weights (and no
    file of that name exists), else the shipped default of ``task`` reads the inputs."""
    from ..weights import default_weights, is_weights_name

    first = words[0]
    named = first.endswith(".safetensors") or (is_weights_name(first) and not Path(first).exists())
    if not named:
        return default_weights(task).name, words
    if len(words) == 1:
        raise Lenet5Error(f"nothing to read: give image files or directories after {first}")
    return first, words[1:]


def add_decode_args(p: argparse.ArgumentParser, what: str = "how the output strip is decoded"
                    ) -> None:
    """``--decoder``, ``--one-look``, ``--verifier`` and ``--trust``: how a reader of whole
    numbers turns its outputs into text (``decode_options``)."""
    from ..reading.read import TRUST, VERIFIER

    p.add_argument("--decoder", choices=["greedy", "beam", "viterbi"],
                   help=f"{what} (default: viterbi for lenet5-sdnn, beam for the CTC readers)")
    p.add_argument("--one-look", action="store_true",
                   help="read each line once (by default a line read with confidence under "
                        "0.9 is read again a pixel higher and lower, and the three averaged)")
    p.add_argument("--verifier", default=VERIFIER, metavar="WEIGHTS|CKPT|none",
                   help="the reader of single digits that reads each digit found again, "
                        f"cut out of the line (default: {VERIFIER}; none: the line reader alone)")
    p.add_argument("--trust", type=float, default=TRUST, metavar="P",
                   help="a line whose every digit the line reader reads with a probability "
                        f"over P is not verified (default: {TRUST}; 1: every line is)")


def decode_options(args: argparse.Namespace, model, name: str):
    """The ``DecodeOptions`` of ``add_decode_args``'s flags, for the reader ``model`` (of the
    model ``name``)."""
    from ..reading.read import METHODS, DecodeOptions
    from ..reading.verify import digit_reader

    methods = METHODS[model.objective]
    if args.decoder and args.decoder not in methods:
        raise Lenet5Error(f"{name} decodes by {' or '.join(methods)}, "
                          f"not {args.decoder}")
    verifier = None if args.verifier.lower() == "none" else args.verifier
    if not 0 <= args.trust <= 1:
        raise Lenet5Error(f"--trust takes a probability between 0 and 1, not {args.trust}")
    if verifier is not None:
        digit_reader(verifier)  # a bad name or file fails here, before any reading
    return DecodeOptions(method=args.decoder, shifts=() if args.one_look else DecodeOptions.shifts,
                         verifier=verifier, trust=args.trust)


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps")


def image_format_for(model: str) -> FolderFormat:
    """How ``imagefolder`` images are made for ``model``: from its registry entry."""
    entry = get_model_entry(model)
    return folder_format(entry.input_size, entry.preprocess.pad)


def load_checkpoint_data(args: argparse.Namespace, ckpt: Checkpoint) -> Dataset:
    """The dataset to run a checkpoint on: ``--dataset``, else the one it was trained on."""
    name = args.dataset or ckpt.dataset.get("name") or "mnist"
    return load_dataset(name, args.data_dir,
                        image_format=image_format_for(ckpt.model_name)).head(args.limit)


def default_dataset(model: str) -> str:
    """The dataset a model trains on when none is named: its task's."""
    return DEFAULT_DATASETS[get_model_entry(model).task]


def check_task(model_name: str, data) -> str:
    """The model's task (models/registry.py), refused unless the data is for it too."""
    task, data_task = get_model_entry(model_name).task, getattr(data, "task", "classify")
    if task != data_task:
        hint = " (--dataset mnist-strings)" if task == "read" else ""
        raise Lenet5Error(f"{model_name} is a {_TASKS[task]}, {data.name} a dataset for a "
                          f"{_TASKS[data_task]}{hint}")
    return task
