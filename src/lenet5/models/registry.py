"""The model registry: one decorator registers one model, the CLI never special-cases a name.

    >>> import lenet5
    >>> lenet5.list_models()[:2]
    ['alexnet', 'classic']
    >>> model = lenet5.create_model("modern", num_classes=10)

Each entry carries what is needed to use the model well without the caller knowing its
name: the input size it expects, the preprocessing of 28x28 uint8 images into that input,
and the training recipe (optimizer, learning rate, schedule, epochs, loss) that `lenet5
train` uses when no flag overrides it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import Lenet5Error
from ..registry import Registry


@dataclass(frozen=True)
class Preprocess:
    """How uint8 images (0 = background, 255 = ink) become the model's input tensor.

    ``pad`` pixels of background are added on every side (MNIST's 28x28 -> LeNet's 32x32),
    then ``x = (pixel / 255 - mean) / std``. The paper's scaling (background -0.1, ink
    1.175) is ``mean=0.078431, std=0.784314``; the usual MNIST statistics are the default.
    """

    pad: int = 2
    mean: float = 0.1307
    std: float = 0.3081

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


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
    precision: str = "auto"  # training precision (fastpath.py): auto, fp32 or bf16
    train_eval: bool = False  # the (train set) line from a full pass, not running averages
    ema: float = 0.0  # decay of a moving average of the weights, per step (0: none)
    double_batch_from: int = 0  # from this epoch on, twice batch_size per step (0: never)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    fn: Callable[..., nn.Module]
    description: str
    input_size: tuple[int, int, int]
    preprocess: Preprocess
    recipe: Recipe
    # "classify": one label per image (the digit models); "read": a sequence of labels per
    # image (the string readers of sdnn.py, trained and decoded by lenet5.reading). Commands
    # dispatch on it, as they do on the dataset registry's field of the same name.
    task: str = "classify"


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(
    name: str,
    *,
    input_size: tuple[int, int, int] = (1, 32, 32),
    preprocess: Preprocess | None = None,
    recipe: Recipe | None = None,
    task: str = "classify",
):
    """Decorator: register ``fn(num_classes=..., in_channels=..., **kwargs) -> nn.Module``."""

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        doc = (fn.__doc__ or "").strip().splitlines()
        MODELS.add(name, ModelEntry(
            name=name,
            fn=fn,
            description=doc[0] if doc else "",
            input_size=input_size,
            preprocess=preprocess or Preprocess(),
            recipe=recipe or Recipe(),
            task=task,
        ))
        return fn

    return decorator


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return MODELS.names()


def get_model_entry(name: str) -> ModelEntry:
    return MODELS.get(name)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``num_classes`` and ``in_channels`` are common arguments."""
    entry = get_model_entry(name)
    try:
        return entry.fn(**kwargs)
    except TypeError as e:
        raise Lenet5Error(f"bad arguments for model {name!r}: {e}") from None


def input_size_for(name: str, in_channels: int | None = None) -> tuple[int, int, int]:
    """The (C, H, W) input a model built with ``in_channels`` expects."""
    c, h, w = get_model_entry(name).input_size
    return (in_channels or c, h, w)
