"""Loss functions by name, so a model's recipe can name its own (``cross_entropy``, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import Lenet5Error
from ..registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: Registry[Callable[..., LossFn]] = Registry("loss", "losses")
register_loss = LOSSES.register


def list_losses() -> list[str]:
    return LOSSES.names()


# Options that shape only training: the loss the metrics lines and checkpoints report is
# the same loss without them (with label smoothing, the reported loss stays the plain NLL).
TRAINING_ONLY: dict[str, tuple[str, ...]] = {"cross_entropy": ("label_smoothing",)}


def build_loss(name: str, **kwargs: Any) -> LossFn:
    """The loss ``name`` as ``fn(outputs, targets) -> mean loss``."""
    factory = LOSSES.get(name)
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as e:
        raise Lenet5Error(f"loss {name!r}: {e}") from None


def build_losses(name: str, **kwargs: Any) -> tuple[LossFn, LossFn]:
    """(the loss to train with, the loss to report): the same function when no option
    shapes only training."""
    loss = build_loss(name, **kwargs)
    reported = {k: v for k, v in kwargs.items() if k not in TRAINING_ONLY.get(name, ())}
    return loss, (loss if reported == kwargs else build_loss(name, **reported))


def reported_loss(name: str, **kwargs: Any) -> LossFn:
    """The loss the metrics report for a model trained with ``build_loss(name, **kwargs)``."""
    return build_losses(name, **kwargs)[1]


@register_loss("cross_entropy")
def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label smoothing must be in [0, 1), not {label_smoothing}")

    def fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    return fn


@register_loss("map")
def map_loss(j: float = 0.1) -> LossFn:
    """The paper's MAP criterion (LeCun et al. 1998, eq. 9) on scores ``s_i = -y_i``:

        E = mean over samples of  -s_correct + log(exp(-j) + sum_i exp(s_i))

    The first term pulls the correct class's RBF distance down; the second pushes the
    others up, with ``exp(-j)`` a "rubbish class" that keeps it from acting once the
    distances are already large. ``j`` > 0 is a constant.
    """
    if not j > 0:
        raise ValueError(f"the MAP constant j must be positive, not {j}")
    def fn(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        rubbish = torch.full_like(scores[:, :1], -j)
        competition = torch.logsumexp(torch.cat([rubbish, scores], 1), 1)
        return (competition - scores.gather(1, target[:, None]).squeeze(1)).mean()
    return fn
