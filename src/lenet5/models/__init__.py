"""The model family. Importing a family module registers its models."""

from . import alexnet, lenet, lenet1998, reader, sdnn  # noqa: F401  (registration side effects)
from .registry import (
    ModelEntry,
    Preprocess,
    check_input,
    create_model,
    get_model_entry,
    input_size_for,
    list_models,
    register_model,
)

__all__ = [
    "ModelEntry",
    "Preprocess",
    "check_input",
    "create_model",
    "get_model_entry",
    "input_size_for",
    "list_models",
    "register_model",
]
