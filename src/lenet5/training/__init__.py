"""Training: the config, the loop and its hooks, optimizers, schedules, losses and
augmentations by name."""

from .augment import list_augmentations, register_augmentation
from .callbacks import Callback, Loop
from .config import TrainConfig
from .device import pick_device, seed_everything
from .losses import build_loss, list_losses, register_loss, reported_loss
from .optim import (
    build_optimizer,
    build_schedule,
    list_optimizers,
    list_schedules,
    register_optimizer,
    register_schedule,
)
from .train import TrainResult, train

__all__ = [
    "Callback",
    "Loop",
    "list_augmentations",
    "register_augmentation",
    "TrainConfig",
    "TrainResult",
    "build_loss",
    "reported_loss",
    "build_optimizer",
    "build_schedule",
    "list_losses",
    "list_optimizers",
    "list_schedules",
    "pick_device",
    "register_loss",
    "register_optimizer",
    "register_schedule",
    "seed_everything",
    "train",
]
