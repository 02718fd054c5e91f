"""The training loop: one readable function.

The dataset lives in memory as one uint8 tensor; each epoch draws a permutation of its
indices, and each batch is gathered, padded and normalized as whole-tensor operations.
No per-sample Python, no DataLoader workers.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from ..checkpoint import Checkpoint, save_checkpoint
from ..data import Dataset, Split, to_input
from ..data.distort import Distortion, distort
from ..errors import Lenet5Error
from ..evaluation import Metrics, format_metrics
from ..fastpath import accelerate, autocast, input_memory_format, resolve_precision
from ..io import ensure_writable_dir
from ..models import check_input, create_model, get_model_entry
from . import distributed
from .config import TrainConfig
from .device import seed_everything
from .losses import build_loss, reported_loss
from .optim import build_optimizer, build_schedule, weight_average
from .resume import RunState, append_record, state_path_for


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


def train(cfg: TrainConfig, data: Dataset, log: Callable[[str], None] = print,
          on_epoch: Callable[[dict], None] | None = None,
          resume: dict | None = None) -> TrainResult:
    """Train ``cfg.model`` on ``data``; print the metrics lines; save the checkpoint.

    ``on_epoch`` is called with each epoch's log record (``lenet5 bench`` times epochs by it).
    ``resume``: a state from ``resume.load_state``, to carry on after its epoch.
    """
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise Lenet5Error("epochs, batch size and learning rate must be positive")
    if cfg.double_batch_from < 0:
        raise Lenet5Error(f"--double-batch-from takes an epoch (0: never), not {cfg.double_batch_from}")
    if not 0 <= float(cfg.distort) <= 1:
        raise Lenet5Error(f"--distort takes the share of images to distort, between 0 and 1, "
                          f"not {cfg.distort}")
    distortion = Distortion(fraction=float(cfg.distort))  # True (older configs): all
    check_input(cfg.model, tuple(data.train.images.shape[1:]), data.name)
    if cfg.out is not None:
        ensure_writable_dir(Path(cfg.out).parent)  # fail now, not after an hour of training
    seed_everything(cfg.seed)
    ddp = distributed.context(cfg.device)  # several processes under torchrun, else one
    device = ddp.device
    if not ddp.is_main:  # only rank 0 prints, logs and saves
        log, cfg = (lambda line: None), dataclasses.replace(cfg, out=None, progress=False)
    entry = get_model_entry(cfg.model)
    model_args = {"num_classes": len(data.classes), "in_channels": data.in_channels,
                  **cfg.model_args}
    model = ddp.wrap(accelerate(create_model(cfg.model, **model_args).to(device)))
    net = distributed.unwrap(model)  # the model itself, without a DDP wrapper
    memory_format = input_memory_format(model)
    precision = resolve_precision(cfg.precision, device)
    pre = entry.preprocess
    loss_fn = build_loss(cfg.loss, **cfg.loss_args)
    report_fn = reported_loss(loss_fn)  # e.g. without label smoothing

    train_split, val_split = split_validation(data.train, cfg.val_split, cfg.seed)
    watch_name, watch_split = ("val", val_split) if val_split is not None else ("test", data.test)
    shard = ddp.shard_size(len(train_split))  # this process's images per epoch
    # The schedule and the weight average count steps of cfg.batch_size images; a step of a
    # doubled batch (--double-batch-from) advances them by two, so the learning rate and the
    # average's horizon follow the same curve per image as without the ramp.
    steps_per_epoch = math.ceil(shard / cfg.batch_size)
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), lr=cfg.lr,
                                weight_decay=cfg.weight_decay, momentum=cfg.momentum,
                                **cfg.optimizer_args)
    schedule = build_schedule(cfg.schedule, optimizer, cfg.epochs, steps_per_epoch)
    average = weight_average(net, cfg.ema)  # None without --ema
    evaluated = net if average is None else average.module  # what is measured and saved
    shuffle = torch.Generator().manual_seed(cfg.seed)
    distortions = torch.Generator().manual_seed(cfg.seed + 2)
    curvature = torch.Generator().manual_seed(cfg.seed + 3)  # SDLM's samples for h

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # index_select, not [idx]: the same rows, ~10x faster for a batch of uint8 images
        x = to_input(train_split.images.index_select(0, idx), pre, device,
                     memory_format=memory_format)
        return x, train_split.labels.index_select(0, idx).to(device)

    def measure(split: Split) -> Metrics:
        return ddp.evaluate(evaluated, split, pre, report_fn, cfg.eval_batch_size, device)

    result = TrainResult(model=evaluated)
    run_state = RunState(state_path_for(cfg.out) if cfg.out else None,
                         model=net, average=average,
                         optimizer=optimizer, schedule=schedule,
                         generators={"shuffle": shuffle, "distort": distortions,
                                     "curvature": curvature},
                         config=cfg.to_dict(), dataset=data.describe(), epochs=cfg.epochs)
    for epoch in range(run_state.start(resume, result.history), cfg.epochs + 1):
        started = time.perf_counter()
        model.train()
        perm = ddp.shard(torch.randperm(len(train_split), generator=shuffle))
        batch_size = cfg.batch_size_at(epoch)
        if hasattr(optimizer, "prepare_epoch"):  # e.g. SDLM: estimate curvature on samples
            optimizer.prepare_epoch(model, loss_fn, lambda n, p=perm: batch(
                p[torch.randperm(len(p), generator=curvature)[:n]]))
        bar = tqdm(range(math.ceil(shard / batch_size)), desc=f"epoch {epoch}/{cfg.epochs}", leave=False,
                   disable=None if cfg.progress is None else not cfg.progress, unit="batch")
        seen_loss, seen_correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
        for step in bar:
            idx = perm[step * batch_size:(step + 1) * batch_size]
            x, y = batch(idx)
            if cfg.distort:
                x = distort(x, distortions, distortion)
            with autocast(device, precision):
                out = model(x)
            loss = loss_fn(out.float(), y)
            reported = loss if report_fn is loss_fn else report_fn(out.detach().float(), y)
            seen_loss += reported.detach() * len(y)  # stays on the device: no sync per step
            seen_correct += (out.detach().argmax(1) == y).sum()
            seen += len(y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # in steps of cfg.batch_size images: 2 for a doubled batch (1 for the epoch's
            # last, when it holds no more than cfg.batch_size)
            counts = (math.ceil(min((step + 1) * batch_size, shard) / cfg.batch_size)
                      - step * batch_size // cfg.batch_size)
            if average is not None:
                average.update_parameters(net, steps=counts)
            if schedule is not None:
                for _ in range(counts):
                    schedule.step()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        train_seconds = time.perf_counter() - started

        if cfg.train_eval:
            train_m = measure(train_split)
        else:
            train_m = ddp.reduce(Metrics(loss=float(seen_loss) / max(seen, 1),
                                         correct=int(seen_correct), total=seen))
        watch_m = measure(watch_split)
        log(format_metrics("train", train_m, epoch))
        log(format_metrics(watch_name, watch_m, epoch))
        record = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "batch_size": batch_size,
                  "train_seconds": round(train_seconds, 3),
                  "train": train_m.to_dict(), watch_name: watch_m.to_dict()}
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if cfg.log_path is not None:
            append_record(cfg.log_path, record)
        run_state.epoch_done(epoch, result.history)

    result.test = measure(data.test) if val_split is not None else watch_m
    if val_split is not None:
        log(format_metrics("test", result.test))
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
    return result
