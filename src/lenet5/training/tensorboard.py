"""``--tensorboard [DIR]``: the run as TensorBoard shows it (the ``tensorboard`` extra).

Per epoch: ``loss/train``, ``loss/test`` (``loss/val`` with ``--val-split``), the same for
``accuracy/``, ``lr`` (at the epoch's end) and ``batch_size``. At the end: the run's
settings with its final metrics in the HPARAMS tab, and a grid of the digits the model
gets wrong on the split each epoch is evaluated on, with their labels as text.

    pip install 'lenet5[tensorboard]'
    lenet5 train --model modern --tensorboard        # runs/tensorboard/modern
    tensorboard --logdir runs/tensorboard

A resumed run writes on in the same directory; the events of the epochs it does again are
purged (``purge_step``), so each epoch is shown once. A new run with the same directory
hides the earlier run's epochs the same way.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..errors import Lenet5Error
from ..evaluation import predict_logits
from ..io import ensure_writable_dir
from .callbacks import Callback, Loop

MAX_MISSES = 64  # digits in the grid of misclassified ones
# what is drawn per epoch, of the records that have it: key -> the tag's group
SCALARS = {"loss": "loss", "acc": "accuracy", "exact_match": "exact_match", "cer": "cer",
           "accept_rate": "accept_rate"}


def default_dir(out: str | Path) -> Path:
    """``runs/modern.safetensors`` -> ``runs/tensorboard/modern``: one directory per run,
    side by side under ``tensorboard --logdir runs/tensorboard``."""
    out = Path(out)
    return out.parent / "tensorboard" / out.stem


def summary_writer():
    """torch's ``SummaryWriter``, or a one-line error naming the extra that provides it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise Lenet5Error("--tensorboard needs the tensorboard package: "
                          "pip install 'lenet5[tensorboard]'") from None
    return SummaryWriter


def image_grid(images: torch.Tensor, columns: int = 8, border: int = 2) -> torch.Tensor:
    """uint8 images (N, H, W) or (N, C, H, W) -> one (C, rows x H, columns x W) image with
    ``border`` pixels of grey between them."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    n, c, h, w = images.shape
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    grid = torch.full((c, rows * (h + border) + border, columns * (w + border) + border), 128,
                      dtype=torch.uint8)
    for i, image in enumerate(images):
        top, left = border + (i // columns) * (h + border), border + (i % columns) * (w + border)
        grid[:, top:top + h, left:left + w] = image
    return grid


def hparams(config: dict[str, Any]) -> dict[str, Any]:
    """The config as TensorBoard's HPARAMS take it: numbers, strings and bools, nested
    options as ``loss_args.label_smoothing``, None as ``"none"``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in hparams(value).items()})
        elif value is None:
            flat[key] = "none"
        elif isinstance(value, (bool, int, float, str)):
            flat[key] = value
        else:
            flat[key] = str(value)
    return flat


class TensorBoard(Callback):
    """Writes the run's scalars, settings and misclassified digits to ``log_dir``."""

    name = "tensorboard"

    def __init__(self, log_dir: str | Path):
        self.writer_class = summary_writer()  # a missing package: an error before training
        self.log_dir = ensure_writable_dir(log_dir)  # and so is a directory it cannot write
        self.writer = None

    def on_train_start(self, loop: Loop) -> None:
        # purge what a run in this directory logged from this epoch on (a resumed run's
        # epochs done again, or an earlier run's)
        self.writer = self.writer_class(str(self.log_dir), purge_step=loop.epoch + 1)

    def on_epoch_end(self, loop: Loop) -> None:
        record, w, epoch = loop.record, self.writer, loop.epoch
        for split in ("train", loop.watch_name):
            for key, tag in SCALARS.items():  # a reader's record: exact match, CER, accept rate
                if record[split].get(key) is not None:
                    w.add_scalar(f"{tag}/{split}", record[split][key], epoch)
        w.add_scalar("lr", record["lr"], epoch)
        w.add_scalar("batch_size", record["batch_size"], epoch)
        w.flush()  # a killed run keeps what it showed

    def on_train_end(self, loop: Loop) -> None:
        w, result, epoch = self.writer, loop.result, loop.epoch
        final = {"train": loop.record["train"], loop.watch_name: loop.record[loop.watch_name],
                 "test": result.test.to_dict()}
        metrics = {f"hparam/{split}_{key}": m[key] for split, m in final.items()
                   for key in SCALARS if m.get(key) is not None}
        w.add_hparams(hparams(loop.cfg.to_dict()), metrics, run_name=".", global_step=epoch)
        if loop.task == "classify":
            self._misses(loop, epoch)
        w.close()

    def _misses(self, loop: Loop, epoch: int) -> None:
        split, name = loop.watch_split, loop.watch_name
        preds = predict_logits(loop.evaluated, split, loop.preprocess, loop.cfg.eval_batch_size,
                               loop.device).argmax(1).cpu()
        wrong = (preds != split.labels).nonzero().flatten()[:MAX_MISSES]
        if not len(wrong):
            return
        self.writer.add_image(f"misclassified/{name}", image_grid(split.images[wrong]), epoch,
                              dataformats="CHW")
        classes = loop.data.classes
        rows = [f"| {i + 1} | {int(k)} | {classes[split.labels[k]]} | {classes[preds[k]]} |"
                for i, k in enumerate(wrong.tolist())]
        self.writer.add_text(f"misclassified/{name}", "\n".join(
            ["| # | image | label | predicted |", "| --- | --- | --- | --- |", *rows]), epoch)
