"""Checkpoints: one safetensors file holding the weights and, as JSON metadata, everything
needed to rebuild and use the model (name, arguments, preprocessing, metrics, dataset hash).

Loading never unpickles anything: safetensors stores raw tensors and a string dictionary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save
from torch import nn

from .errors import Lenet5Error
from .fastpath import to_channels_last
from .io import atomic_write_bytes
from .models import Preprocess, create_model, get_model_entry

FORMAT = "lenet5-checkpoint"
VERSION = 1


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
        """The class names, in label order, of the data the model was trained on (older
        checkpoints, which did not record them: the label numbers)."""
        names = self.dataset.get("classes")
        if names:
            return tuple(names)
        return tuple(str(i) for i in range(self.model_args.get("num_classes", 10)))

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


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` atomically to ``path`` (a ``.safetensors`` file)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in ckpt.state_dict.items()}
    data = safetensors_save(tensors, metadata={"lenet5": json.dumps(ckpt.metadata())})
    return atomic_write_bytes(path, data)


def load_checkpoint(path: str | Path, expect_model: str | None = None) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; refuse anything else clearly."""
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
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise Lenet5Error(f"{path} is a safetensors file but not a lenet5 checkpoint")
    if meta.get("version", 0) > VERSION:
        raise Lenet5Error(f"{path} was written by a newer lenet5 (format {meta['version']})")
    name = meta.get("model")
    get_model_entry(name)  # unknown model -> clear error listing the known ones
    if expect_model is not None and name != expect_model:
        raise Lenet5Error(f"{path} is a checkpoint of model {name!r}, not {expect_model!r}")
    return Checkpoint(
        model_name=name,
        model_args=meta.get("model_args", {}),
        preprocess=Preprocess.from_dict(meta.get("preprocess", {})),
        state_dict=state,
        metrics=meta.get("metrics", {}),
        dataset=meta.get("dataset", {}),
        config=meta.get("config", {}),
    )
