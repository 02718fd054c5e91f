"""The knobs of a training run, in one dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Lenet5Error
from .recipes import recipe_for


@dataclass
class TrainConfig:
    model: str = "classic"
    model_args: dict[str, Any] = field(default_factory=dict)
    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    optimizer_args: dict[str, Any] = field(default_factory=dict)  # e.g. sdlm's mu
    lr: float = 1e-3
    schedule: str = "onecycle"
    weight_decay: float = 0.0
    momentum: float = 0.9
    loss: str = "cross_entropy"
    loss_args: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    val_split: float = 0.0
    distort: float = 0.0  # share of training images randomly distorted (data/distort.py); 0: off
    # Other augmentations by name (training/augment.py), with their options: {"name": {...}}.
    augment: dict[str, dict[str, Any]] = field(default_factory=dict)
    eval_batch_size: int = 512
    # The (train set) line: False, running averages over the epoch's batches (free, as Keras
    # reports them); True, the whole training set evaluated after the epoch (exact, one more pass).
    train_eval: bool = False
    # An exponential moving average of the weights, updated after every step with this
    # decay (0: none). When on, it is what is evaluated each epoch and saved.
    ema: float = 0.0
    # From this epoch on, each step takes twice batch_size images (0: never): a batch-size
    # ramp. The schedule and the weight average go by images seen, so they follow the same
    # curve per epoch (see train.py).
    double_batch_from: int = 0
    precision: str = "auto"  # auto: bf16 autocast for training where the CPU has native bf16
    out: str | None = None  # checkpoint path; None: keep in memory only
    progress: bool | None = None  # None: a bar only on a terminal
    tensorboard: str | None = None  # a directory for TensorBoard's event files; None: none

    @classmethod
    def for_model(cls, model: str, **overrides: Any) -> TrainConfig:
        """The model's recipe, with every override that is not None applied on top."""
        recipe = recipe_for(model).to_dict()
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in recipe.items() if k in known}
        # the recipe's loss/optimizer options belong to the recipe's loss/optimizer: they
        # are dropped when another one is chosen; options given here go on top
        for name in ("loss", "optimizer"):
            if overrides.get(name) not in (None, recipe[name]):
                values[f"{name}_args"] = {}
            values[f"{name}_args"] = {**values.get(f"{name}_args", {}),
                                      **(overrides.pop(f"{name}_args", None) or {})}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(model=model, **values)

    @property
    def log_path(self) -> Path | None:
        """The per-epoch metrics log beside the checkpoint: ``<out stem>.metrics.jsonl``."""
        if self.out is None:
            return None
        out = Path(self.out)
        return out.with_name(out.stem + ".metrics.jsonl")

    def batch_size_at(self, epoch: int) -> int:
        """Images per step in ``epoch`` (1-based)."""
        doubled = 0 < self.double_batch_from <= epoch
        return self.batch_size * (2 if doubled else 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "the config") -> TrainConfig:
        """A config read back from a file (a resume state): unknown keys are dropped, and a
        value of the wrong type is refused with a clear error, before anything is built."""
        if not isinstance(values, dict):
            raise Lenet5Error(f"{source} is not a mapping of settings")
        known = {f.name: f for f in dataclasses.fields(cls)}
        for name, value in values.items():
            if name in known and not _has_type(value, known[name].type):
                raise Lenet5Error(f"{source}: {name} is {value!r}, not a {known[name].type}")
        return cls(**{k: v for k, v in values.items() if k in known})


_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "None": (type(None),)}


def _has_type(value: Any, annotation: str) -> bool:
    """Whether ``value`` fits a field annotated ``annotation`` (``"float"``, ``"str | None"``,
    ``"dict[str, Any]"``); a bool is no int here (``distort: true``, of older configs, is 1.0)."""
    for option in annotation.split(" | "):
        if option.startswith("dict"):
            if isinstance(value, dict):
                return True
        elif isinstance(value, _TYPES[option]) and not (
                isinstance(value, bool) and option == "int"):
            return True
    return False
