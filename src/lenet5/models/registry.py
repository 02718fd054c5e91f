"""The model registry: one decorator registers one model, the CLI never special-cases a name.

    >>> import lenet5
    >>> lenet5.list_models()[:2]
    ['alexnet', 'classic']
    >>> model = lenet5.create_model("modern", num_classes=10)

Each entry carries what is needed to use the model without the caller knowing its name:
the input size it expects and the preprocessing of uint8 images into that input. The
training recipe of each model (what `lenet5 train` does with no flags) lives beside the
training code, in ``lenet5.training.recipes``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..data.transforms import Preprocess  # lives with the data it describes; re-exported here
from ..errors import Lenet5Error
from ..registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    name: str
    fn: Callable[..., nn.Module]
    description: str
    input_size: tuple[int, int, int]
    preprocess: Preprocess
    # "classify": one label per image (the digit models); "read": a sequence of labels per
    # image (the string readers of sdnn.py, trained and decoded by lenet5.reading). Commands
    # dispatch on it, as they do on the dataset registry's field of the same name.
    task: str = "classify"

    def defaults(self) -> dict[str, Any]:
        """The model function's arguments and their defaults: what a checkpoint records, so
        that a later change of a default cannot change the model it rebuilds."""
        return {k: p.default for k, p in inspect.signature(self.fn).parameters.items()
                if p.default is not inspect.Parameter.empty}


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(
    name: str,
    *,
    input_size: tuple[int, int, int] = (1, 32, 32),
    preprocess: Preprocess | None = None,
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
    """Build a registered model; ``num_classes`` and ``in_channels`` are common arguments.
    (``lenet5.create_model`` also takes ``weights=``, to load shipped weights.)"""
    entry = get_model_entry(name)
    try:
        return entry.fn(**kwargs)
    except TypeError as e:
        raise Lenet5Error(f"bad arguments for model {name!r}: {e}") from None


def input_size_for(name: str, in_channels: int | None = None) -> tuple[int, int, int]:
    """The (C, H, W) input a model built with ``in_channels`` expects."""
    c, h, w = get_model_entry(name).input_size
    return (in_channels or c, h, w)


def check_input(name: str, image_shape: tuple[int, ...], dataset: str) -> None:
    """Refuse, before any work, images that ``name``'s input cannot take: ``image_shape``
    is one image's (H, W) or (C, H, W), which the model's preprocessing pads on every side
    to its registered input size. The channels need not match (a model is built with the
    data's), the side must."""
    entry = get_model_entry(name)
    channels, height, width = entry.input_size
    pad = entry.preprocess.pad
    h, w = image_shape[-2:]
    if (h + 2 * pad, w + 2 * pad) == (height, width):
        return
    side = f"{height - 2 * pad}x{width - 2 * pad}"
    padded = f", padded by {pad}" if pad else ""
    raise Lenet5Error(
        f"model {name!r} needs {channels}x{height}x{width} input ({side} images{padded}); "
        f"{dataset} has {h}x{w} images. Train it on your own images, which "
        f"`--dataset imagefolder --data-dir ROOT` (ROOT/<class>/<image>) resizes to {side}")
