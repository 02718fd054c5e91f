"""``--ema``: an exponential moving average of the weights, as a hook of the loop.

After each step every averaged weight moves a fraction ``1 - decay`` of the way to the
model's: PyTorch's ``AveragedModel`` with its EMA rule (``get_ema_multi_avg_fn``), the first
update copying the weights. Evaluated instead of the raw weights it smooths out the last
steps' noise: with a high learning rate that is worth a good part of what decaying the rate
would give, without waiting for the decay.

The average is one ``foreach_lerp_`` (fastpath.compat) over lists of tensors gathered once (the model's
tensors are the same objects for the whole run), not ``AveragedModel.update_parameters``,
which gathers and groups them anew on every call. A step that stands for ``n`` steps (a
doubled batch, ``--double-batch-from``) applies the decay ``n`` times in one lerp, with the
weight ``1 - decay ** n``, always the same way, so a resumed run repeats the uninterrupted
one bit for bit.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..errors import Lenet5Error
from ..fastpath.compat import foreach_lerp_
from .callbacks import Callback, Loop


class WeightAverage(Callback):
    """The moving average of ``model``'s weights and buffers with ``decay`` per step.

    ``module`` is the averaged copy of the model: the loop evaluates and saves it instead
    of the model. Non-float buffers (index tables) are copied, not averaged.
    """

    name = "ema"

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise Lenet5Error(f"--ema must be in [0, 1), not {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model)
        self.updates = 0  # steps averaged so far (AveragedModel's n_averaged)
        # the model's tensors are the same objects for the whole run: gathered once
        self._all = mine, theirs = _tensors(self.module), _tensors(model)
        floats = [t.is_floating_point() for t in mine]
        self._float = [t for t, f in zip(mine, floats) if f], [t for t, f in zip(theirs, floats) if f]
        self._other = ([t for t, f in zip(mine, floats) if not f],
                       [t for t, f in zip(theirs, floats) if not f])

    def update(self, steps: int = 1) -> None:
        """Move the average towards the model by ``steps`` steps."""
        if self.updates == 0:  # the first update copies the weights
            _copy(*self._all)
            self.updates, steps = 1, steps - 1
        if steps:
            foreach_lerp_(*self._float, 1 - self.decay ** steps)
            _copy(*self._other)
            self.updates += steps

    def on_train_start(self, loop: Loop) -> None:
        loop.evaluated = self.module

    def after_step(self, loop: Loop) -> None:
        self.update(loop.units)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach() for t in (*model.parameters(), *model.buffers())]


def _copy(targets: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    for t, s in zip(targets, sources):
        t.copy_(s)
