"""The training loop: one readable function, with named extension points (callbacks.py).

The dataset lives in memory as one uint8 tensor; each epoch draws a permutation of its
indices, and each batch is gathered, padded and normalized as whole-tensor operations.
No per-sample Python, no DataLoader workers. What is not the loop itself (the weight
average, SDLM's curvature estimate, the batch ramp, augmentations, the metrics log, the
progress bar, TensorBoard) is a hook the loop calls by name.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import Checkpoint, save_checkpoint
from ..data import Dataset, Split, to_input
from ..errors import Lenet5Error
from ..evaluation import Metrics, format_metrics
from ..fastpath import accelerate, autocast, input_memory_format, resolve_precision
from ..io import ensure_writable_dir
from ..models import check_input, create_model, get_model_entry
from . import distributed
from .augment import build_augmentations
from .callbacks import BatchRamp, Callback, EpochFunction, Loop, ProgressBar
from .config import TrainConfig
from .device import seed_everything
from .ema import WeightAverage
from .logs import MetricsLog, csv_path_for
from .losses import build_losses
from .optim import build_optimizer, build_schedule
from .readers import ReaderTraining
from .resume import RunState, state_path_for
from .sdlm import SDLM, CurvatureEstimate
from .tensorboard import TensorBoard


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    test: Metrics | None = None
    checkpoint: Path | None = None


def split_validation(train: Split, fraction: float, seed: int) -> tuple[Split, Split | None]:
    """Hold out ``fraction`` of the training set, chosen by a seeded permutation."""
    if not fraction:
        return train, None
    if not 0.0 < fraction < 1.0:
        raise Lenet5Error(f"--val-split must be between 0 and 1, not {fraction}")
    n_val = max(1, round(len(train) * fraction))
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 1))
    return train.subset(perm[n_val:]), train.subset(perm[:n_val])


def training_callbacks(cfg: TrainConfig, net: nn.Module, optimizer: torch.optim.Optimizer,
                       augment_batches: bool = True) -> list[Callback]:
    """The hooks that take part in training that ``cfg`` asks for, in the order they run;
    without ``augment_batches`` the augmentations are left to the batches' maker (a
    reader varies each digit before composing its numbers)."""
    hooks: list[Callback] = []
    if cfg.double_batch_from:
        hooks.append(BatchRamp(cfg.double_batch_from))
    if augment_batches:
        augment = {"distort": {"fraction": cfg.distort}} if cfg.distort else {}
        hooks += build_augmentations({**augment, **cfg.augment}, cfg.seed)
    if isinstance(optimizer, SDLM):  # its step sizes need the curvature before each pass
        hooks.append(CurvatureEstimate(optimizer, seed=cfg.seed + 3))
    if cfg.ema:
        hooks.append(WeightAverage(net, cfg.ema))
    return hooks


def reporting_callbacks(cfg: TrainConfig) -> list[Callback]:
    """The hooks that show and log the run, which run after every other hook."""
    hooks: list[Callback] = [ProgressBar(cfg.progress)]
    if cfg.log_path is not None:
        hooks.append(MetricsLog(cfg.log_path))
    if cfg.tensorboard is not None:
        hooks.append(TensorBoard(cfg.tensorboard))
    return hooks


def check_config(cfg: TrainConfig) -> None:
    """Refuse settings that cannot train, before anything is built."""
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.eval_batch_size < 1 or not cfg.lr > 0:
        raise Lenet5Error("epochs, batch sizes and learning rate must be positive")
    if not -2**63 <= cfg.seed < 2**63:
        raise Lenet5Error(f"--seed {cfg.seed} is out of range (a 64-bit integer)")
    if cfg.double_batch_from < 0:
        raise Lenet5Error(f"--double-batch-from takes an epoch (0: never), not {cfg.double_batch_from}")
    if not 0 <= cfg.ema < 1:
        raise Lenet5Error(f"--ema must be in [0, 1), not {cfg.ema}")
    if cfg.out is not None:
        check_out(cfg.out)


def check_out(out: str | Path, create: bool = True) -> None:
    """Fail now, not after an hour of training, when the checkpoint or a file beside it
    cannot be written: a directory in its place, a parent that is a file or not writable.
    ``create``: make the parent directory (else only check that it could be made)."""
    out = Path(out)
    for path in (out, state_path_for(out), out.with_name(out.stem + ".metrics.jsonl"),
                 csv_path_for(out.with_name(out.stem + ".metrics.jsonl"))):
        if path.is_dir():
            raise Lenet5Error(f"--out {out}: {path} is a directory; give the checkpoint's file "
                              "name, e.g. runs/model.safetensors")
    if create:
        ensure_writable_dir(out.parent)
        return
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise Lenet5Error(f"cannot write to {out.parent}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise Lenet5Error(f"cannot write to {out.parent}: {existing} is not writable")


def train(cfg: TrainConfig, data: Dataset, log: Callable[[str], None] = print,
          on_epoch: Callable[[dict], None] | None = None, resume: dict | None = None,
          callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train ``cfg.model`` on ``data``; print the metrics lines; save the checkpoint.

    ``on_epoch`` is called with each epoch's log record (``lenet5 bench`` times epochs by it).
    ``resume``: a state from ``resume.load_state``, to carry on after its epoch.
    ``callbacks``: hooks of your own (callbacks.py), run after the hooks that take part in
    training and before those that show and log the run (so a field a hook adds to the
    epoch's record is logged).
    """
    check_config(cfg)
    entry = get_model_entry(cfg.model)
    task = getattr(data, "task", "classify")
    if entry.task != task:
        raise Lenet5Error(f"{cfg.model} is a model for the task {entry.task!r}, {data.name} a "
                          f"dataset for {task!r}")
    if task == "classify":
        check_input(cfg.model, tuple(data.train.images.shape[1:]), data.name)
    seed_everything(cfg.seed)
    ddp = distributed.context(cfg.device)  # several processes under torchrun, else one
    device = ddp.device
    if not ddp.is_main:  # only rank 0 prints, logs and saves
        log = lambda line: None  # noqa: E731
        cfg = dataclasses.replace(cfg, out=None, progress=False, tensorboard=None)
    model_args = {**entry.defaults(), "num_classes": len(data.classes),
                  "in_channels": data.in_channels, **cfg.model_args}
    model = ddp.wrap(accelerate(create_model(cfg.model, **model_args).to(device)))
    net = distributed.unwrap(model)  # the model itself, without a DDP wrapper
    memory_format = input_memory_format(model)
    precision = resolve_precision(cfg.precision, device)
    pre = entry.preprocess
    # a reader (task "read") takes its batches, loss and metrics from its objective (readers.py)
    reader = ReaderTraining(cfg, data, net, pre, device, memory_format, ddp.rank) \
        if task == "read" else None
    if reader is not None:
        loss_fn = report_fn = reader.loss
        train_split, val_split = reader.source, reader.val
        train_size, fmt = reader.epoch_size, reader.format
    else:
        loss_fn, report_fn = build_losses(cfg.loss, **cfg.loss_args)  # report: e.g. no smoothing
        train_split, val_split = split_validation(data.train, cfg.val_split, cfg.seed)
        train_size, fmt = len(train_split), format_metrics
    watch_name, watch_split = ("val", val_split) if val_split is not None else ("test", data.test)
    if reader is not None:
        watch_split = reader.watch(watch_split)
    # The schedule counts steps of cfg.batch_size images: a hook that makes a step take more
    # (BatchRamp) says how many it stands for in loop.units, and the schedule advances by that.
    steps_per_epoch = math.ceil(ddp.shard_size(train_size) / cfg.batch_size)
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), lr=cfg.lr,
                                weight_decay=cfg.weight_decay, momentum=cfg.momentum,
                                **cfg.optimizer_args)
    schedule = build_schedule(cfg.schedule, optimizer, cfg.epochs, steps_per_epoch)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    generators = {"shuffle": shuffle, **(reader.generators if reader is not None else {})}

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if reader is not None:
            return reader.batch(idx)
        # index_select, not [idx]: the same rows, ~10x faster for a batch of uint8 images
        x = to_input(train_split.images.index_select(0, idx), pre, device,
                     memory_format=memory_format)
        return x, train_split.labels.index_select(0, idx).to(device)

    def measure(split: Split) -> Metrics:
        if reader is not None:
            return reader.measure(loop.evaluated, split)
        return ddp.evaluate(loop.evaluated, split, pre, report_fn, cfg.eval_batch_size, device)

    loop = Loop(cfg=cfg, data=data, model=model, net=net, optimizer=optimizer, schedule=schedule,
                loss_fn=loss_fn, preprocess=pre, device=device, train_split=train_split,
                watch_name=watch_name, watch_split=watch_split, batch=batch, measure=measure,
                log=log, is_main=ddp.is_main, evaluated=net, task=task)
    hooks = [*training_callbacks(cfg, net, optimizer, augment_batches=reader is None), *callbacks,
             *reporting_callbacks(cfg), *([EpochFunction(on_epoch)] if on_epoch is not None else [])]
    run_state = RunState(state_path_for(cfg.out) if cfg.out else None, model=net,
                         optimizer=optimizer, schedule=schedule, generators=generators,
                         callbacks=hooks, config=cfg.to_dict(), dataset=data.describe(),
                         epochs=cfg.epochs)
    first = run_state.start(resume, loop.history)
    loop.epoch = first - 1
    for cb in hooks:
        cb.on_train_start(loop)

    for epoch in range(first, cfg.epochs + 1):
        started = time.perf_counter()
        model.train()
        loop.epoch, loop.batch_size = epoch, cfg.batch_size
        loop.perm = ddp.shard(torch.randperm(train_size, generator=shuffle))
        for cb in hooks:
            cb.on_epoch_start(loop)
        seen_loss, seen_correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
        for step in range(loop.steps):
            loop.step = step
            x, y = batch(loop.perm[step * loop.batch_size:(step + 1) * loop.batch_size])
            for cb in hooks:
                x, y = cb.on_batch(loop, x, y)
            with autocast(device, precision):
                out = model(x)
            loss = loss_fn(out.float(), y)
            reported = loss if report_fn is loss_fn else report_fn(out.detach().float(), y)
            seen_loss += reported.detach() * len(y)  # stays on the device: no sync per step
            seen_correct += (out.detach().argmax(1) == y).sum() if reader is None \
                else reader.correct(out.detach(), y)
            seen += len(y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loop.out, loop.loss = out, loss
            for cb in hooks:
                cb.after_step(loop)
            if schedule is not None:
                for _ in range(loop.units):
                    schedule.step()
        train_seconds = time.perf_counter() - started

        if cfg.train_eval:
            train_m = measure(train_split)
        elif reader is not None:
            train_m = reader.train_metrics(float(seen_loss), int(seen_correct), seen)
        else:
            train_m = ddp.reduce(Metrics(loss=float(seen_loss) / max(seen, 1),
                                         correct=int(seen_correct), total=seen))
        watch_m = measure(watch_split)
        log(fmt("train", train_m, epoch))
        log(fmt(watch_name, watch_m, epoch))
        loop.record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                       "batch_size": loop.batch_size, "train_seconds": round(train_seconds, 3),
                       "train": train_m.to_dict(), watch_name: watch_m.to_dict()}
        loop.history.append(loop.record)
        for cb in hooks:
            cb.on_epoch_end(loop)
        run_state.epoch_done(epoch, loop.history)

    result = TrainResult(model=loop.evaluated, history=loop.history)
    result.test = watch_m if watch_split is data.test else measure(data.test)
    if watch_split is not data.test:
        log(fmt("test", result.test))
    if cfg.out is not None:
        ckpt = Checkpoint(
            model_name=cfg.model,
            model_args=model_args,
            preprocess=pre,
            state_dict=result.model.state_dict(),
            metrics={"train": train_m.to_dict(), watch_name: watch_m.to_dict(),
                     "test": result.test.to_dict(), "epochs": cfg.epochs},
            dataset=data.describe(),
            config={**cfg.to_dict(), "world_size": ddp.world_size},
        )
        result.checkpoint = save_checkpoint(cfg.out, ckpt)
        run_state.finished()
    loop.result = result
    for cb in hooks:
        cb.on_train_end(loop)
    ddp.finish()
    return result
