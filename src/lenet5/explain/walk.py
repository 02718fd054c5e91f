"""The shape arithmetic of every layer, worked out from the model itself.

Tutorials follow a 32x32 image down LeNet-5 by hand: for every convolution and pooling
layer ``out = (in - kernel + 2 * padding) / stride + 1``, the depth becomes the number of
kernels, a flatten multiplies the dimensions out. ``explain`` does it for any model: it
runs one dummy image through the model with forward hooks on its layers (so the walk is
in execution order), fills the formula in with each layer's own attributes and checks
the result against the shape the forward pass really produced.

A layer is a *sliding window* when it has ``kernel_size``, ``stride`` and ``padding``
attributes (duck-typed: ``nn.Conv2d``, the pools and any custom layer that exposes them,
such as the paper's trainable subsampling); ``dilation`` and ``ceil_mode`` are used when
present. Adaptive pools, ``Flatten`` and ``Linear`` get their own wording; any other
layer is described by the shapes the forward pass gave it.

Beyond the tutorials, each layer gets its receptive field on the input, computed with the
usual recurrence per spatial dimension (k the kernel's span ``dilation * (kernel - 1) +
1``, s the stride, p the padding before the first pixel)::

    rf    = rf_in + (k - 1) * jump_in      # input pixels one unit sees, per side
    jump  = jump_in * s                    # input pixels between neighbouring units
    start = start_in - p * jump_in         # where unit 0's field begins (< 0: padding)

A layer after a flatten that mixes every position (a Linear, an RBF) acts as a window as
large as the whole grid; layers that keep the shape (activations, dropout, norms) keep
the field. Parameters, MACs (a layer applied at every position counts its parameters once
per position, as torchinfo does for convolutions; a bias counts as one) and activation
memory (float32 bytes of the layer's output for one image) complete the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import nn

from ..models import create_model, input_size_for
from .notation import Number, as_tuple, dim_names, dims, extent, num, once


@dataclass(frozen=True)
class Step:
    """One layer of the walk (or a reshape done in ``forward`` between layers)."""

    name: str  # e.g. "features.c1"; "(forward)" for a reshape done outside any layer
    kind: str  # e.g. "Conv2d"
    text: str  # the worked arithmetic, e.g. "Conv2d 5x5, ...: (32 - 5 + 2*0) / 1 + 1 = 28 -> ..."
    output_shape: tuple[int, ...]  # without the batch dimension, as the forward pass gave it
    changes_shape: bool
    rf: tuple[Number, ...] | None  # per spatial dimension; None where it cannot be known
    jump: tuple[Number, ...] | None
    start: tuple[Number, ...] | None
    whole_input: bool  # a unit's field covers the whole input
    approximate: bool  # uneven adaptive-pool windows: rf/jump are their largest/mean values
    params: int
    trainable: int
    macs: int
    act_bytes: int  # float32 bytes of the output for one image
    mismatch: bool = False  # the formula disagrees with the forward pass


@dataclass(frozen=True)
class Explanation:
    model_name: str
    input_size: tuple[int, ...]
    steps: list[Step]
    other_params: int  # parameters of the model outside every walked layer

    @property
    def total_params(self) -> int:
        return sum(s.params for s in self.steps) + self.other_params

    @property
    def trainable_params(self) -> int:
        return sum(s.trainable for s in self.steps)

    @property
    def total_macs(self) -> int:
        return sum(s.macs for s in self.steps)

    @property
    def total_act_bytes(self) -> int:
        return sum(s.act_bytes for s in self.steps)

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


def explain(model_name: str, model: nn.Module | None = None, **model_args) -> Explanation:
    """Walk a registered model (built with ``model_args``) on its registry input size."""
    model = model if model is not None else create_model(model_name, **model_args)
    return explain_model(model, input_size_for(model_name, model_args.get("in_channels")),
                         model_name)


def explain_model(model: nn.Module, input_size: tuple[int, ...], name: str = "") -> Explanation:
    """Walk any module on one input of ``input_size`` (without the batch dimension)."""
    units = _units(model)
    calls: list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...]]] = []

    def hook(module, inputs, output, _name=None):
        x = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
        if isinstance(output, torch.Tensor) and x is not None:
            calls.append((_name, module, tuple(x.shape[1:]), tuple(output.shape[1:])))

    handles = [m.register_forward_hook(lambda mod, i, o, n=n: hook(mod, i, o, n))
               for n, m in units]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(1, *input_size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()

    walk = _Walk(tuple(input_size))
    seen: set[int] = set()
    for layer_name, module, in_shape, out_shape in calls:
        walk.reshape_between(in_shape)
        first = id(module) not in seen
        seen.add(id(module))
        walk.layer(layer_name, module, in_shape, out_shape, first)
    if isinstance(out, torch.Tensor):
        walk.reshape_between(tuple(out.shape[1:]))
    counted = {id(p) for _, m in units for p in m.parameters()}
    other = sum(p.numel() for p in model.parameters() if id(p) not in counted)
    return Explanation(name, tuple(input_size), walk.steps, other)


def _units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers to hook: sliding windows and adaptive pools whole, else the leaves."""
    units: list[tuple[str, nn.Module]] = []
    taken: list[str] = []
    for name, m in model.named_modules():
        if any(name.startswith(t + ".") for t in taken):
            continue
        leaf = next(m.children(), None) is None
        if leaf or (name and (_is_window(m) or _is_adaptive(m))):
            units.append((name or type(m).__name__, m))
            taken.append(name)
    return units


def _is_window(m: nn.Module) -> bool:
    return all(hasattr(m, a) for a in ("kernel_size", "stride", "padding")) \
        and not getattr(m, "transposed", False)


def _is_adaptive(m: nn.Module) -> bool:
    return type(m).__name__.startswith("Adaptive") and hasattr(m, "output_size")


class _Walk:
    """The state carried from layer to layer: the current shape and receptive field."""

    def __init__(self, input_size: tuple[int, ...]):
        self.input_size = input_size
        self.spatial_in = input_size[1:]
        self.shape = input_size
        nd = len(self.spatial_in)
        self.rf: list[Number] | None = [1] * nd
        self.jump: list[Number] | None = [1] * nd
        self.start: list[Number] | None = [0] * nd
        self.grid: tuple[int, ...] = tuple(self.spatial_in)  # positions the units sit on
        self.flat = False  # a flatten has happened: the shape no longer shows the grid
        self.approximate = False
        self.steps: list[Step] = []

    # -- the layers ---------------------------------------------------------------------
    def layer(self, name, m, in_shape, out_shape, first):
        kind = type(m).__name__
        params = sum(p.numel() for p in m.parameters()) if first else 0
        trainable = sum(p.numel() for p in m.parameters() if p.requires_grad) if first else 0
        positions = math.prod(out_shape[1:]) if len(out_shape) > 1 else 1
        mismatch = False
        if _is_window(m) and len(in_shape) >= 2 and not self.flat:
            text, predicted, k, s, p = self._window(m, kind, in_shape, out_shape)
            mismatch = predicted != out_shape
            self._grow(k, s, p, out_shape[1:])
            macs = params * positions
        elif _is_adaptive(m) and len(in_shape) >= 2 and not self.flat:
            text, predicted, k, s = self._adaptive(m, kind, in_shape)
            mismatch = predicted != out_shape
            self._grow(k, s, [0] * len(k), out_shape[1:])
            macs = params * positions
        elif isinstance(m, nn.Flatten):
            text = f"{kind}: {dims(in_shape)} = {math.prod(in_shape):,}" \
                if len(out_shape) == 1 else f"{kind}: {dims(in_shape)} -> {dims(out_shape)}"
            self.flat = True
            macs = params
        else:
            if isinstance(m, nn.Linear):
                text = f"{kind}: {m.in_features:,} -> {m.out_features:,}"
            elif in_shape != out_shape:
                text = f"{kind}: {dims(in_shape)} -> {dims(out_shape)}"
            else:
                text = f"{kind}: shape unchanged"
            if in_shape != out_shape:
                self._mix(out_shape)
            macs = params * (positions if len(out_shape) > 1 and not self.flat else 1)
        if mismatch:
            text += f" [the forward pass gives {dims(out_shape)}: the layer does not follow" \
                    " the formula]"
        self._record(name, kind, text, out_shape, in_shape != out_shape, params, trainable,
                     macs, mismatch)

    def _window(self, m, kind, in_shape, out_shape):
        nd = len(in_shape) - 1
        k = as_tuple(m.kernel_size, nd)
        s = as_tuple(m.stride if m.stride is not None else m.kernel_size, nd)
        d = as_tuple(getattr(m, "dilation", 1), nd)
        ceil = bool(getattr(m, "ceil_mode", False))
        span = [di * (ki - 1) + 1 for ki, di in zip(k, d)]
        if isinstance(m.padding, str):  # Conv2d(padding="same" | "valid")
            total = [0 if m.padding == "valid" else sp - 1 for sp in span]
            left = [t // 2 for t in total]
        else:
            left = list(as_tuple(m.padding, nd))
            total = [2 * p for p in left]
        has_kernels = hasattr(m, "out_channels")
        show_pad = has_kernels or any(total)
        head = f"{kind} {extent(k)}, stride {once(s)}"
        if isinstance(m.padding, str):
            head += f", padding '{m.padding}'"
        elif show_pad:
            head += f", padding {once(left)}"
        if any(di != 1 for di in d):
            head += f", dilation {once(d)} (the kernel spans {extent(span)})"
        if ceil:
            head += ", ceil_mode"
        sizes, parts = [], []
        for n, sp, si, t, pl in zip(in_shape[1:], span, s, total, left):
            pad = "" if not show_pad else f" + 2*{pl}" if t == 2 * pl else f" + {t}"
            exact = Fraction(n - sp + t, si) + 1
            out = math.ceil(exact) if ceil else math.floor(exact)
            part = f"({n} - {sp}{pad}) / {si} + 1 = "
            if exact.denominator == 1:
                part += f"{out}"
            else:
                part += f"{num(exact)}, not whole: {'ceil' if ceil else 'floor'} {out}"
            if ceil and (out - 1) * si >= n + pl:  # PyTorch drops a window that starts in the padding
                out -= 1
                part += f", less the last window, which would start in the padding: {out}"
            sizes.append(out)
            parts.append(part)
        channels = getattr(m, "out_channels", in_shape[0])
        predicted = (channels, *sizes)
        body = parts[0] if len(set(parts)) == 1 else \
            "; ".join(f"{dim} {p}" for dim, p in zip(dim_names(nd), parts))
        tail = f" ({channels} kernels)" if has_kernels else ""
        return f"{head}: {body} -> {dims(predicted)}{tail}", predicted, span, s, left

    def _adaptive(self, m, kind, in_shape):
        nd = len(in_shape) - 1
        target = [n if o is None else o
                  for n, o in zip(in_shape[1:], as_tuple(m.output_size, nd))]
        ks, ss, parts = [], [], []
        for n, o in zip(in_shape[1:], target):
            # PyTorch's window i covers [floor(i * n / o), ceil((i + 1) * n / o))
            widths = {math.ceil((i + 1) * n / o) - (i * n) // o for i in range(o)}
            if n % o == 0:
                ks.append(n // o)
                ss.append(n // o)
                parts.append(f"{n} / {o} = {n // o}: windows {n // o}, stride {n // o}")
            else:
                ks.append(max(widths))
                ss.append(Fraction(n, o))
                self.approximate = True
                sizes = "/".join(map(str, sorted(widths)))
                parts.append(f"{n} / {o} = {num(Fraction(n, o))}, not whole: windows of "
                             f"{sizes}, the i-th from floor(i*{n}/{o}) to ceil((i+1)*{n}/{o})")
        body = parts[0] if len(set(parts)) == 1 else \
            "; ".join(f"{dim} {p}" for dim, p in zip(dim_names(nd), parts))
        predicted = (in_shape[0], *target)
        note = " (nothing to pool: the map passes through)" if all(k == 1 for k in ks) else ""
        return f"{kind} to {extent(target)}: {body} -> {dims(predicted)}{note}", predicted, ks, ss

    # -- the receptive field ------------------------------------------------------------
    def _grow(self, k, s, left, grid):
        if self.rf is not None:
            self.rf = [r + (ki - 1) * j for r, ki, j in zip(self.rf, k, self.jump)]
            self.start = [st - pl * j for st, pl, j in zip(self.start, left, self.jump)]
            self.jump = [j * si for j, si in zip(self.jump, s)]
        self.grid = tuple(grid)

    def _mix(self, out_shape):
        """A shape change we have no formula for: a full mix after a flatten, else unknown."""
        if self.flat:  # a Linear on a flattened grid is a window as large as the grid
            self._grow(self.grid, [1] * len(self.grid), [0] * len(self.grid),
                       [1] * len(self.grid))
        else:
            self.rf = self.jump = self.start = None

    def reshape_between(self, in_shape):
        """A layer received another shape than the last one gave: ``forward`` reshaped it."""
        if in_shape == self.shape:
            return
        if math.prod(in_shape) == math.prod(self.shape):
            self.flat = self.flat or len(in_shape) < len(self.shape)
            text = f"reshaped in forward(), not by a layer: {dims(self.shape)} = " \
                   f"{dims(in_shape)}"
        else:
            self.rf = self.jump = self.start = None
            text = f"changed in forward(), not by a layer: {dims(self.shape)} -> " \
                   f"{dims(in_shape)}"
        self._record("(forward)", "", text, in_shape, True, 0, 0, 0, False)

    def _record(self, name, kind, text, out_shape, changes, params, trainable, macs, mismatch):
        whole = self.rf is not None and all(
            st <= 0 and st + r >= n for st, r, n in zip(self.start, self.rf, self.spatial_in))
        def freeze(v):
            return None if v is None else tuple(v)

        self.steps.append(Step(
            name=name, kind=kind, text=text, output_shape=tuple(out_shape),
            changes_shape=changes, rf=freeze(self.rf), jump=freeze(self.jump),
            start=freeze(self.start), whole_input=whole, approximate=self.approximate,
            params=params, trainable=trainable, macs=macs,
            act_bytes=4 * math.prod(out_shape), mismatch=mismatch))
        self.shape = tuple(out_shape)
