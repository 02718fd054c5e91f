"""Checkpoints: one safetensors file holding the weights and, as JSON metadata, everything
needed to rebuild and use the model (name, arguments, preprocessing, metrics, dataset hash).

Loading never unpickles anything: safetensors stores raw tensors and a string dictionary.
And nothing in a file is trusted before it is checked: :func:`load_checkpoint` checks the
metadata's types and ranges, the model's arguments against its signature, every tensor's
name, shape, type and values against the model built on PyTorch's meta device (which
allocates nothing), and the SHA-256 of the weights recorded when the file was saved. A file
that fails a check is refused with one line saying what is wrong, before anything is built.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save
from torch import nn

from .data import get_dataset_spec
from .errors import Lenet5Error
from .fastpath import to_channels_last
from .io import atomic_write_bytes
from .models import ModelEntry, Preprocess, create_model, get_model_entry

FORMAT = "lenet5-checkpoint"
VERSION = 1
HASH_KEY = "weights_sha256"  # metadata entry: weights_sha256() of the tensors, when saved

# What a checkpoint may ask for. The weights' shapes bound the model's size exactly (they
# are compared on the meta device first); these bounds keep the arguments sensible.
ARG_BOUNDS: dict[str, tuple[float, float]] = {
    "num_classes": (1, 100_000), "in_channels": (1, 64), "dropout": (0.0, 1.0)}
STD_BOUNDS = (1e-4, 1e4)  # x = (pixel / 255 - mean) / std stays a sane float32
MEAN_BOUND = 1e4
SPLIT_METRICS = ("train", "val", "test")  # mappings of numbers (Metrics.to_dict)


@dataclass
class Checkpoint:
    model_name: str
    model_args: dict[str, Any]
    preprocess: Preprocess
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def build_model(self) -> nn.Module:
        """The plain model (its layers in their canonical order, as plots and exports show
        them) with its weights loaded, in eval mode, in the layout training used
        (channels_last): its scores are the accelerated model's, bit for bit, so
        prediction repeats evaluation's numbers. ``lenet5.fastpath.accelerate`` it to
        evaluate faster."""
        model = create_model(self.model_name, **self.model_args)
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise Lenet5Error(
                f"checkpoint weights do not fit model {self.model_name!r}: {first}"
            ) from None
        return to_channels_last(model).eval()

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, in label order: see :meth:`class_names`."""
        return self.class_names()

    def class_names(self, num_classes: int | None = None) -> tuple[str, ...]:
        """The class names, in label order, of the data the model was trained on: those the
        checkpoint recorded, else its dataset's (older checkpoints did not record them),
        else the label numbers. Names are taken only if there are ``num_classes`` of them
        (default: the model's ``num_classes``)."""
        n = num_classes or self.model_args.get("num_classes")
        try:
            known = get_dataset_spec(self.dataset.get("name", "")).classes
        except Lenet5Error:
            known = ()
        for names in (self.dataset.get("classes"), known):
            if isinstance(names, (list, tuple)) and names and (not n or len(names) == n):
                return tuple(str(c) for c in names)
        return tuple(str(i) for i in range(n or 10))

    def metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model_name,
            "model_args": self.model_args,
            "preprocess": self.preprocess.to_dict(),
            "metrics": self.metrics,
            "dataset": self.dataset,
            "config": self.config,
        }


def weights_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict: each tensor's name, type, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        h.update(f"{name}\0{dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` atomically to ``path`` (a ``.safetensors`` file), with the SHA-256 of
    its weights in the metadata."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in ckpt.state_dict.items()}
    meta = {**ckpt.metadata(), HASH_KEY: weights_sha256(tensors)}
    data = safetensors_save(tensors, metadata={"lenet5": json.dumps(meta)})
    return atomic_write_bytes(path, data)


def load_checkpoint(path: str | Path, expect_model: str | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; refuse anything else clearly,
    and anything wrong in one (see the module's docstring) before a model is built."""
    path = Path(path)
    if not path.is_file():
        raise Lenet5Error(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw_meta = (f.metadata() or {}).get("lenet5")
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise Lenet5Error(f"{path} is not a lenet5 checkpoint (not a safetensors file: {e})") from None
    try:
        meta = json.loads(raw_meta) if raw_meta else None
    except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise Lenet5Error(f"{path} is a safetensors file but not a lenet5 checkpoint")
    check = _Checker(path)
    version = meta.get("version", 0)
    check(_integer(version), f"version must be an integer, not {_show(version)}")
    if version > VERSION:
        raise Lenet5Error(f"{path} was written by a newer lenet5 (format {version})")
    name = meta.get("model")
    try:
        entry = get_model_entry(name)
    except Lenet5Error as e:  # an unknown model: the error lists the known ones
        raise Lenet5Error(f"{path}: {e}") from None
    if expect_model is not None and name != expect_model:
        raise Lenet5Error(f"{path} is a checkpoint of model {name!r}, not {expect_model!r}")
    model_args = check.model_args(entry, meta.get("model_args", {}))
    preprocess = check.preprocess(entry, meta.get("preprocess"))
    check.weights(state, meta.get(HASH_KEY), entry, model_args)
    ckpt = Checkpoint(
        model_name=name,
        model_args=model_args,
        preprocess=preprocess,
        state_dict=state,
        metrics=check.metrics(meta.get("metrics")),
        dataset=check.dataset(meta.get("dataset"), _num_classes(entry, model_args)),
        config=check.config(meta.get("config")),
    )
    if meta.get(HASH_KEY) is None:  # said only of a file that passes every check
        print(f"lenet5: warning: {path} records no hash of its weights (saved by an older "
              "lenet5): a corruption of them cannot be detected", file=sys.stderr)
    return ckpt


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    """A number a float holds, finite (JSON's integers may have any number of digits)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) or "a scalar"


def _finite(t: torch.Tensor) -> bool:
    """Whether every value is finite: its min and max are (they propagate NaN; 30 times
    faster than ``isfinite(t).all()`` on a CPU)."""
    if not t.numel():
        return True
    lo, hi = torch.aminmax(t)
    return bool(torch.isfinite(lo) and torch.isfinite(hi))


def _num_classes(entry: ModelEntry, model_args: dict[str, Any]) -> int | None:
    default = inspect.signature(entry.fn).parameters.get("num_classes")
    return model_args.get("num_classes", None if default is None else default.default)


class _Checker:
    """The checks of one file's contents; each failure is one line naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, ok: bool, what: str) -> None:
        if not ok:
            raise Lenet5Error(f"{self.path}: bad checkpoint metadata: {what}")

    def mapping(self, value: Any, what: str, holds: str) -> dict[str, Any]:
        """``value`` as a dict (null or absent: empty)."""
        if value is None:
            return {}
        self(isinstance(value, dict), f"{what} must be a mapping of {holds}, not {_show(value)}")
        return value

    def model_args(self, entry: ModelEntry, args: Any) -> dict[str, Any]:
        """The arguments, each one the model's function takes, of its default's type, within
        ``ARG_BOUNDS``."""
        args = self.mapping(args, "model_args", "argument names to values")
        params = inspect.signature(entry.fn).parameters
        for key, value in args.items():
            self(key in params, f"model {entry.name!r} takes no argument {key!r} "
                                f"(it takes {', '.join(params)})")
            default = params[key].default
            for kind, test, name in ((bool, lambda v: isinstance(v, bool), "true or false"),
                                     (int, _integer, "an integer"), (float, _number, "a number"),
                                     (str, lambda v: isinstance(v, str), "a string")):
                if isinstance(default, kind):
                    self(test(value), f"model_args.{key} must be {name}, not {_show(value)}")
                    break
            if key in ARG_BOUNDS:
                lo, hi = ARG_BOUNDS[key]
                self(_number(value) and lo <= value <= hi,
                     f"model_args.{key} must be from {lo:,} to {hi:,}, not {_show(value)}")
        return args

    def preprocess(self, entry: ModelEntry, d: Any) -> Preprocess:
        """Finite numbers, std positive, and the padding that gives the model its input size
        (every model here is trained with the pad of its registry entry)."""
        d = self.mapping(d, "preprocess", "pad, mean and std")
        base = entry.preprocess
        pad, mean, std = d.get("pad", base.pad), d.get("mean", base.mean), d.get("std", base.std)
        self(_integer(pad) and pad >= 0,
             f"preprocess.pad must be a whole number of pixels, 0 or more, not {_show(pad)}")
        self(_number(mean) and abs(mean) <= MEAN_BOUND,
             f"preprocess.mean must be a finite number up to {MEAN_BOUND:,g} in size, not {_show(mean)}")
        lo, hi = STD_BOUNDS
        self(_number(std) and lo <= std <= hi,
             f"preprocess.std must be a number from {lo:g} to {hi:,g}, not {_show(std)}")
        _, height, width = entry.input_size
        self(pad == base.pad, f"preprocess.pad is {pad}, but model {entry.name!r} takes "
                              f"{height}x{width} input and needs pad {base.pad}")
        return Preprocess(pad=pad, mean=float(mean), std=float(std))

    def metrics(self, d: Any) -> dict[str, Any]:
        """Numbers (or null), and mappings of numbers for the splits."""
        d = self.mapping(d, "metrics", "names to numbers")
        for key, value in d.items():
            if key in SPLIT_METRICS or isinstance(value, dict):
                value = self.mapping(value, f"metrics.{key}", "names to numbers")
                for k, v in value.items():
                    self(v is None or _number(v),
                         f"metrics.{key}.{k} must be a finite number, not {_show(v)}")
            else:
                self(value is None or _number(value),
                     f"metrics.{key} must be a finite number, not {_show(value)}")
        return d

    def dataset(self, d: Any, num_classes: int | None) -> dict[str, Any]:
        d = self.mapping(d, "dataset", "name, hashes and classes")
        for key in ("name", "sha256"):
            self(key not in d or isinstance(d[key], str),
                 f"dataset.{key} must be a string, not {_show(d.get(key))}")
        files = self.mapping(d.get("files"), "dataset.files", "file names to hashes")
        self(all(isinstance(v, str) for v in files.values()),
             "dataset.files must map file names to SHA-256 strings")
        if (classes := d.get("classes")) is not None:
            self(isinstance(classes, list) and all(isinstance(c, str) for c in classes),
                 f"dataset.classes must be a list of names, not {_show(classes)}")
            self(num_classes is None or len(classes) == num_classes,
                 f"dataset.classes has {len(classes)} class names for {num_classes} classes")
        limit = d.get("limit")
        self(limit is None or (_integer(limit) and limit >= 1),
             f"dataset.limit must be a positive integer, not {_show(limit)}")
        return d

    def config(self, d: Any) -> dict[str, Any]:
        """What eval reads back: the loss, its arguments, the evaluation batch size."""
        d = self.mapping(d, "config", "training settings")
        self(isinstance(d.get("loss", ""), str), f"config.loss must be a name, not {_show(d.get('loss'))}")
        self.mapping(d.get("loss_args"), "config.loss_args", "argument names to values")
        size = d.get("eval_batch_size", 1)
        self(_integer(size) and 1 <= size <= 1_000_000,
             f"config.eval_batch_size must be an integer from 1 to 1,000,000, not {_show(size)}")
        return d

    def weights(self, state: dict[str, torch.Tensor], recorded: Any, entry: ModelEntry,
                model_args: dict[str, Any]) -> None:
        """The recorded hash, then each tensor against the model built on the meta device."""
        path = self.path
        if recorded is not None:
            self(isinstance(recorded, str) and re.fullmatch("[0-9a-f]{64}", recorded) is not None,
                 f"{HASH_KEY} must be 64 hexadecimal digits, not {_show(recorded)}")
            if weights_sha256(state) != recorded:
                raise Lenet5Error(f"{path}: its weights do not match the SHA-256 recorded when it "
                                  "was saved: the file is corrupt")
        try:
            with torch.device("meta"):  # shapes and types only: nothing is allocated
                expected = entry.fn(**model_args).state_dict()
        except (TypeError, ValueError, RuntimeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise Lenet5Error(f"{path}: bad checkpoint metadata: model {entry.name!r} cannot be "
                              f"built with {model_args}: {first}") from None
        args = ", ".join(f"{k}={v}" for k, v in model_args.items())
        unfit = f"{path}: the weights do not fit model {entry.name!r}" + (f" ({args})" if args else "")
        if missing := [k for k in expected if k not in state]:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise Lenet5Error(f"{unfit}: the file lacks tensor {missing[0]}{more}")
        if extra := [k for k in state if k not in expected]:
            raise Lenet5Error(f"{unfit}: the file holds tensor {extra[0]}, which the model "
                              "does not have")
        for key, want in expected.items():
            got = state[key]
            if got.shape != want.shape:
                raise Lenet5Error(f"{unfit}: tensor {key} is {_shape(got)} in the file, the model "
                                  f"needs {_shape(want)}")
            if want.is_floating_point() and not got.is_floating_point() or (
                    not want.is_floating_point() and got.dtype != want.dtype):
                kind = "floating point" if want.is_floating_point() else str(want.dtype)
                raise Lenet5Error(f"{path}: tensor {key} is "
                                  f"{str(got.dtype).removeprefix('torch.')}, not {kind}")
            if got.is_floating_point() and not _finite(got):
                raise Lenet5Error(f"{path}: tensor {key} holds NaN or infinite values")
