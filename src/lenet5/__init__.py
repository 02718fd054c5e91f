"""lenet5: LeNet-5 and its family, from the 1998 paper to AlexNet, as one tool."""

from .errors import Lenet5Error
from .models import list_models, register_model
from .weights import create_model, get_weights, list_weights

__version__ = "0.1.0"
__all__ = ["Lenet5Error", "create_model", "get_weights", "list_models", "list_weights",
           "register_model", "__version__"]
