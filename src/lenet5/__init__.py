"""lenet5: LeNet-5 and its family, from the 1998 paper to AlexNet, as one tool."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import Lenet5Error

if TYPE_CHECKING:
    from .models import list_models, register_model
    from .weights import create_model, get_weights, list_weights

__version__ = "0.1.0"
__all__ = ["Lenet5Error", "create_model", "get_weights", "list_models", "list_weights",
           "register_model", "__version__"]

# The functions above live with PyTorch, imported on first use (PEP 562), so that
# `import lenet5.cli` is light and the command line imports only what its command needs.
_LAZY = {"create_model": "weights", "get_weights": "weights", "list_weights": "weights",
         "list_models": "models", "register_model": "models"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):  # a subpackage: lenet5.models, lenet5.data, ...
        try:
                return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
