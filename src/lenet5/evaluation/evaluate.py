"""Running a model over a split: metrics, predictions, in inference mode."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..data import Split, to_input
from ..fastpath import input_memory_format
from ..models import Preprocess
from .metrics import Metrics

EVAL_BATCH_SIZE = 512  # measured fastest with channels_last (see benchmarks/README.md)


@torch.inference_mode()
def predict_logits(model: nn.Module, split: Split, pre: Preprocess,
                   batch_size: int = EVAL_BATCH_SIZE, device: torch.device | str = "cpu"
                   ) -> torch.Tensor:
    """Logits (N, num_classes) for every image of ``split``, on the CPU."""
    model.eval()
    fmt = input_memory_format(model)
    outs = [model(to_input(split.images[i:i + batch_size], pre, device, memory_format=fmt)).float().cpu()
            for i in range(0, len(split), batch_size)]
    return torch.cat(outs)


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, pre: Preprocess,
             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             batch_size: int = EVAL_BATCH_SIZE, device: torch.device | str = "cpu") -> Metrics:
    """Mean loss and accuracy of ``model`` on ``split`` (``loss_fn`` returns a batch mean)."""
    model.eval()
    fmt = input_memory_format(model)
    total_loss, correct = 0.0, 0
    for i in range(0, len(split), batch_size):
        x = to_input(split.images[i:i + batch_size], pre, device, memory_format=fmt)
        y = split.labels[i:i + batch_size].to(device)
        out = model(x)
        total_loss += float(loss_fn(out, y)) * len(y)
        correct += int((out.argmax(1) == y).sum())
    return Metrics(loss=total_loss / max(len(split), 1), correct=correct, total=len(split))
