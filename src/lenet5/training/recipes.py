"""Training recipes: what ``lenet5 train --model NAME`` does when no flag overrides it.

A recipe is registered under its model's name; a model without one trains with the
defaults of :class:`Recipe`. How each was chosen, with the runs behind it: docs/recipes.md.

    >>> from lenet5.training.recipes import recipe_for
    >>> recipe_for("modern").lr
    0.01
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..models import get_model_entry
from ..registry import Registry


@dataclass(frozen=True)
class Recipe:
    """The training defaults of a model: what `lenet5 train --model NAME` does with no flags."""

    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "onecycle"
    epochs: int = 10
    batch_size: int = 128
    weight_decay: float = 0.0
    momentum: float = 0.9
    loss: str = "cross_entropy"
    loss_args: dict[str, Any] = field(default_factory=dict)
    optimizer_args: dict[str, Any] = field(default_factory=dict)
    precision: str = "auto"  # training precision (lenet5.fastpath): auto, fp32 or bf16
    train_eval: bool = False  # the (train set) line from a full pass, not running averages
    ema: float = 0.0  # decay of a moving average of the weights, per step (0: none)
    double_batch_from: int = 0  # from this epoch on, twice batch_size per step (0: never)
    # augmentations of the training batches by name (training/augment.py), with options
    augment: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RECIPES: Registry[Recipe] = Registry("recipe")


def register_recipe(model: str, recipe: Recipe) -> Recipe:
    """Make ``recipe`` the training defaults of the model registered as ``model``."""
    return RECIPES.add(model, recipe)


def recipe_for(model: str) -> Recipe:
    """The recipe of a registered model (the :class:`Recipe` defaults where it has none)."""
    get_model_entry(model)  # an unknown model: the error lists the known ones
    return RECIPES.get(model) if model in RECIPES else Recipe()


# The LeNet-5 family: batch 256 halves the steps of batch 128, Adam at 3e-3 makes up for
# them, and cosine annealing from the start reaches 99% in fewer epochs than one-cycle.
FAST = Recipe(optimizer="adam", lr=3e-3, schedule="cosine", batch_size=256)
# tanh and average pooling overfit with Adam: AdamW's decoupled weight decay.
CLASSIC = dataclasses.replace(FAST, optimizer="adamw", weight_decay=0.05)
# ReLU and max pooling take a higher rate with label smoothing and a moving average of the
# weights (evaluated and saved), and twice the batch from epoch 3 (the schedule and the
# average go by images, so the rate per image follows the same curve).
MODERN = dataclasses.replace(FAST, lr=1e-2, loss_args={"label_smoothing": 0.1}, ema=0.98,
                             double_batch_from=3)
# The paper's SDLM and schedule over 20 passes, with mini-batches of 16: the rate per step
# stays about the paper's per-image one, and re-estimating the curvature every 250 steps
# keeps the first pass stable. float32, as the reproduction was measured; the (train set)
# line is the whole training set after each pass, as the paper's training error.
LENET5_1998 = Recipe(optimizer="sdlm", lr=0.001, schedule="lecun1998",
                     optimizer_args={"refresh_every": 250}, epochs=20, batch_size=16,
                     momentum=0.0, loss="map", loss_args={"j": 0.1}, precision="fp32",
                     train_eval=True)
# SGD with the AlexNet paper's rate and weight decay, a cosine over 10 epochs.
ALEXNET = Recipe(optimizer="sgd", lr=0.01, schedule="cosine", epochs=10, batch_size=64,
                 weight_decay=5e-4)
# The string readers (lenet5.reading): Adam with a one-cycle rate (5% warm-up) and an
# average of the weights (decay 0.998 per step, a horizon of about one epoch); see
# docs/reading.md.
SDNN = Recipe(optimizer="adam", lr=3e-3, schedule="onecycle-short", epochs=12, batch_size=256,
              ema=0.998)
CTC = Recipe(optimizer="adam", lr=6e-3, schedule="onecycle-short", epochs=50, batch_size=64,
             loss="ctc", ema=0.998)
# The reader's trunk on numbers: CTC's recipe, each digit varied as the reader's are.
READER_CTC = dataclasses.replace(CTC, epochs=30, augment={"writing": {}})

# The reader (models/reader.py): modern's rate, smoothing and weight average over 20 epochs,
# on batches varied the ways people's writing differs from MNIST (docs/reader.md).
READER = dataclasses.replace(FAST, lr=1e-2, epochs=20, loss_args={"label_smoothing": 0.1},
                             ema=0.98, augment={"writing": {}})

for _name, _recipe in {"classic": CLASSIC, "modern": MODERN, "classic-c5conv": FAST,
                       "modern-c5conv": MODERN, "sigmoid": FAST, "keras": FAST,
                       "lenet5-1998": LENET5_1998, "alexnet": ALEXNET,
                       "lenet5-sdnn": SDNN, "lenet5-ctc": CTC, "reader-ctc": READER_CTC,
                       "reader": READER}.items():
    register_recipe(_name, _recipe)
