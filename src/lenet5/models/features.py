"""Finding the feature-map layers of any model: C1, S2, C3 and S4, as LeCun's 1993 demo
showed them. Used by ``lenet5 plot`` and ``lenet5 serve``; never keyed on a model's name.

A layer is found by its submodule name (``features.c1`` ...). A layer directly followed
in its ``nn.Sequential`` by an activation function (one of ``torch.nn``'s, or a module
marked ``elementwise = True`` such as lenet5-1998's squash) is caught after the
activation, as the paper shows C1 and C3: squashed. The models list their layers in that
canonical order (C1, its activation, S2, ...), so C1 means the same in every model. A
model without such names shows its first four convolution and pooling layers instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

FEATURE_LAYERS = ("c1", "s2", "c3", "s4")  # the input side first
_ACTIVATIONS_MODULE = nn.Tanh.__module__  # torch.nn.modules.activation
_WINDOWS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__ == _ACTIVATIONS_MODULE or getattr(module, "elementwise", False)


@dataclass(frozen=True)
class FeatureLayer:
    name: str  # qualified name of the layer, e.g. features.c1
    label: str  # e.g. C1
    module: nn.Module  # the layer itself
    output: nn.Module  # the module whose output is shown (the layer, or its activation)


def feature_layers(model: nn.Module, fallback: bool = True) -> list[FeatureLayer]:
    """C1, S2, C3, S4 by their submodule names; else (with ``fallback``) the first four
    convolution and pooling layers."""
    found: dict[str, FeatureLayer] = {}
    for parent_name, parent in model.named_modules():
        children = list(parent.named_children())
        for i, (name, child) in enumerate(children):
            if name not in FEATURE_LAYERS or name in found:
                continue
            output = child
            if isinstance(parent, nn.Sequential):
                after = [m for _, m in children[i + 1:]]
                while after and isinstance(after[0], _NORMS):  # c1, bn1, act1: after act1
                    after.pop(0)
                if after and _is_activation(after[0]):
                    output = after[0]
            qual = f"{parent_name}.{name}" if parent_name else name
            found[name] = FeatureLayer(qual, name.upper(), child, output)
    if found or not fallback:
        return [found[n] for n in FEATURE_LAYERS if n in found]
    windows = [(q, m) for q, m in model.named_modules() if isinstance(m, _WINDOWS)]
    return [FeatureLayer(q, q, m, m) for q, m in windows[:4]]
