"""The training loop's named extension points, and the small hooks built on them.

:func:`lenet5.training.train` is one loop; everything that is not the loop itself (the
weight average, SDLM's curvature estimate, the batch ramp, augmentations, the metrics log,
the progress bar, TensorBoard) is a :class:`Callback` the loop calls at these points::

    on_train_start(loop)          once, after a resumed run's state is restored
    on_epoch_start(loop)          loop.perm is this epoch's order; may set loop.batch_size
    on_batch(loop, x, y) -> x, y  the batch about to be trained on; may transform it
    after_step(loop)              after optimizer.step(); loop.out, loop.loss, loop.units
    on_epoch_end(loop)            loop.record is the epoch's record (what the log holds)
    on_train_end(loop)            the run is over: loop.result holds the final metrics
    state_dict() / load_state_dict(state)   what --resume carries over, under cb.name

Hooks run in the order they are given. A hook that holds state that the run's future
depends on (a random generator, averaged weights) returns it from ``state_dict``: the
resume file saves it under the hook's ``name`` and hands it back to ``load_state_dict``
(before ``on_train_start``) when the run is resumed. Only tensors, numbers, strings,
lists and dicts: the file is read with ``torch.load(weights_only=True)``.

A hook never changes the loop's arithmetic unless that is its job: read ``loop`` freely,
set only the fields documented as settable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ..data import Dataset, Split
from ..evaluation import Metrics
from ..models import Preprocess
from .config import TrainConfig


class Callback:
    """A hook into :func:`~lenet5.training.train`; override the points you need.

    ``name`` keys the hook's state in the resume file, unique within a run (default: the
    class's name).
    """

    name: str = "Callback"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def on_train_start(self, loop: Loop) -> None:
        """The run starts, or carries on: ``loop.epoch`` is the last completed epoch."""

    def on_epoch_start(self, loop: Loop) -> None:
        """Before the epoch's first step; ``loop.perm`` and ``loop.batch_size`` are set."""

    def on_batch(self, loop: Loop, x: torch.Tensor, y: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The model input and labels of step ``loop.step``: return them, transformed or not."""
        return x, y

    def after_step(self, loop: Loop) -> None:
        """After ``optimizer.step()``; before the schedule advances ``loop.units`` steps."""

    def on_epoch_end(self, loop: Loop) -> None:
        """After the epoch is evaluated and logged (``loop.record``), before its state is saved."""

    def on_train_end(self, loop: Loop) -> None:
        """After the final evaluation and the checkpoint (``loop.result``)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the state of a completed epoch)."""


@dataclass(eq=False)
class Loop:
    """What the hooks see of a run. Fields marked *settable* are the ones a hook may set."""

    cfg: TrainConfig
    data: Dataset
    model: nn.Module  # what is trained: under torchrun, wrapped in DistributedDataParallel
    net: nn.Module  # the model itself
    optimizer: torch.optim.Optimizer
    schedule: Any  # an LRScheduler stepped once per step of cfg.batch_size images, or None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    preprocess: Preprocess
    device: torch.device
    train_split: Split
    watch_name: str  # "val" with --val-split, else "test": what each epoch is evaluated on
    watch_split: Split
    batch: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # training indices -> x, y
    measure: Callable[[Split], Metrics]  # the metrics of ``evaluated`` on a split
    log: Callable[[str], None]
    is_main: bool  # rank 0 (always, in one process): the rank that prints and writes
    evaluated: nn.Module  # settable at on_train_start: what each epoch evaluates and is saved
    epoch: int = 0  # the epoch in progress (1-based)
    batch_size: int = 0  # settable at on_epoch_start: images per step in this epoch
    perm: torch.Tensor | None = None  # this epoch's order of the training images (this rank's)
    step: int = 0  # the step in progress, from 0 in each epoch
    units: int = 1  # settable at on_batch: steps of cfg.batch_size images this step stands for
    out: torch.Tensor | None = None  # after_step: the step's outputs
    loss: torch.Tensor | None = None  # after_step: the step's training loss
    record: dict | None = None  # on_epoch_end: the epoch's record
    history: list[dict] = field(default_factory=list)
    result: Any = None  # on_train_end: the TrainResult
    task: str = "classify"  # the model's task: "classify" (single images) or "read" (numbers)

    @property
    def steps(self) -> int:
        """Steps in this epoch."""
        return math.ceil(len(self.perm) / self.batch_size)


class BatchRamp(Callback):
    """``--double-batch-from``: from epoch ``start`` on, each step takes twice
    ``cfg.batch_size`` images. The schedule and the weight average count steps of
    ``cfg.batch_size`` images, so a doubled step stands for two (the epoch's last, when it
    holds no more than ``cfg.batch_size``, for one): both follow the same curve per image as
    a run without the ramp."""

    name = "batch_ramp"

    def __init__(self, start: int):
        self.start = start

    def on_epoch_start(self, loop: Loop) -> None:
        if self.start <= loop.epoch:
            loop.batch_size = 2 * loop.cfg.batch_size

    def on_batch(self, loop, x, y):
        loop.units = math.ceil(len(y) / loop.cfg.batch_size)
        return x, y


class ProgressBar(Callback):
    """A tqdm bar per epoch with the loss every 50 steps (``enabled``: None, only on a terminal)."""

    name = "progress"

    def __init__(self, enabled: bool | None = None):
        self.disable = None if enabled is None else not enabled
        self.bar: tqdm | None = None

    def on_epoch_start(self, loop: Loop) -> None:
        self.bar = tqdm(total=loop.steps, desc=f"epoch {loop.epoch}/{loop.cfg.epochs}",
                        leave=False, disable=self.disable, unit="batch")

    def after_step(self, loop: Loop) -> None:
        if not self.bar.disable:
            if loop.step % 50 == 0:
                self.bar.set_postfix(loss=f"{loop.loss.item():.4f}", refresh=False)
            self.bar.update()
        if loop.step == loop.steps - 1:
            self.bar.close()


class EpochFunction(Callback):
    """Calls ``fn(record)`` after every epoch (``train(..., on_epoch=fn)``)."""

    name = "on_epoch"

    def __init__(self, fn: Callable[[dict], None]):
        self.fn = fn

    def on_epoch_end(self, loop: Loop) -> None:
        self.fn(loop.record)
