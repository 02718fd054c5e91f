"""Training on several processes: PyTorch's DistributedDataParallel, started by torchrun.

    torchrun --nproc_per_node=N -m lenet5 train --model modern ...

torchrun starts N copies of the command and tells each its ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; nothing else is needed (no scheduler of our own). ``context()`` reads those,
joins the process group (``nccl`` on CUDA, one GPU per process; ``gloo`` on the CPU) and
returns a ``Context`` the training loop asks everything distributed of:

* ``shard(perm)``: every rank draws the same epoch permutation (same seed) and takes its
  own slice, ``perm[rank::world_size]`` (padded by wrapping around so every rank gets the
  same number of batches). Step ``s`` of all ranks together then covers exactly the images
  step ``s`` of one process with a ``world_size`` times larger batch covers: halve
  ``--batch-size`` on 2 processes and the run is the single-process run, split in two.
* ``wrap(model)``: DDP averages the gradients of all ranks after every backward pass, so
  every rank takes the same step and holds the same weights.
* ``evaluate(...)``: each rank evaluates its slice of the split; the sums of loss, correct
  and total are all-reduced, so every rank gets the metrics of the whole split.
* ``is_main``: only rank 0 prints, writes the metrics log and the checkpoint, which holds
  the unwrapped module's weights (``unwrap``) and so loads in a single process.

In a single process ``context()`` returns a Context of one rank whose methods change nothing.
"""

from __future__ import annotations

import atexit
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data import Split
from ..errors import Lenet5Error
from ..evaluation import Metrics, evaluate
from ..models import Preprocess
from .device import pick_device

TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard_size(self, n: int) -> int:
        """How many of ``n`` training images each rank sees per epoch."""
        return math.ceil(n / self.world_size)

    def shard(self, perm: torch.Tensor) -> torch.Tensor:
        """This rank's slice of an epoch's permutation (the same on every rank)."""
        if not self.distributed:
            return perm
        pad = self.shard_size(len(perm)) * self.world_size - len(perm)
        if pad:
            perm = torch.cat([perm, perm[:pad]])
        return perm[self.rank::self.world_size]

    def wrap(self, model: nn.Module) -> nn.Module:
        if not self.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def evaluate(self, model: nn.Module, split: Split, pre: Preprocess,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 batch_size: int, device: torch.device | str) -> Metrics:
        """Metrics of the whole split, each rank evaluating its own slice of it."""
        model = unwrap(model)
        if not self.distributed:
            return evaluate(model, split, pre, loss_fn, batch_size, device)
        return self.reduce(evaluate(model, split.subset(slice(self.rank, None, self.world_size)),
                                    pre, loss_fn, batch_size, device))

    def reduce(self, m: Metrics) -> Metrics:
        """The metrics of all ranks together, from each rank's metrics of its own slice."""
        if not self.distributed:
            return m
        sums = torch.tensor([m.loss * m.total, m.correct, m.total], dtype=torch.float64,
                            device=self.device)
        dist.all_reduce(sums)
        loss, correct, total = sums.tolist()
        return Metrics(loss=loss / max(total, 1), correct=round(correct), total=round(total))

    def finish(self) -> None:
        """The run is over on every rank: wait for all of them (rank 0 may still be saving),
        then leave the process group if ``context`` joined it, while the interpreter is
        whole. A rank leaving alone at exit can abort the others' gloo threads."""
        if self.distributed:
            dist.barrier()
            _teardown()


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself, out of its DistributedDataParallel wrapper if it has one."""
    return model.module if isinstance(model, DistributedDataParallel) else model


_JOINED = False  # whether context() joined the process group (and so leaves it)


def _teardown() -> None:
    global _JOINED
    if _JOINED and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _JOINED = False


def context(device: str = "auto") -> Context:
    """The distributed context torchrun set up (or a single process when it did not)."""
    global _JOINED
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if dist.is_available() and dist.is_initialized():  # a caller set up the group itself
        world_size = dist.get_world_size()
    if world_size <= 1:
        return Context(rank=0, world_size=1, device=pick_device(device))
    if not dist.is_available():
        raise Lenet5Error("this PyTorch build has no torch.distributed")
    dev = pick_device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise Lenet5Error(f"process {local_rank} has no GPU: {torch.cuda.device_count()} "
                              "visible; start at most that many processes per node")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    elif dev.type == "cpu":
        backend = "gloo"
    else:
        raise Lenet5Error(f"training on several processes needs CUDA or the CPU, not {dev.type}")
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT)
        _JOINED = True
        atexit.register(_teardown)
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size(), device=dev)
