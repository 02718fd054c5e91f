"""The model side of ``lenet5 serve``: checkpoints loaded once, one prediction per call.

No web framework here. A :class:`ServedModel` holds the :class:`~lenet5.predict.Predictor`
that ``lenet5 predict`` uses, so a 28x28 uint8 digit (ink 255 on 0, as MNIST) becomes the
same class probabilities either way; it adds, when asked, the feature maps of C1, S2, C3
and S4, caught with forward hooks on the submodules of those names (``features.c1`` ...),
whatever the model: a model without them just has no maps to show.

Requests are batched: a :class:`Batcher` per model runs one forward pass for all the
digits asked for during one turn of the event loop. Idle, a request goes straight
through (no waiting window); under load, 20 digits cost little more than one.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import Checkpoint
from ..errors import Lenet5Error
from ..models import get_model_entry
from ..models.features import feature_layers
from ..predict import Prediction, Predictor
from ..weights import resolve_checkpoint
from .reader import ServedReader


def feature_outputs(model: nn.Module) -> dict[str, nn.Module]:
    """``{"C1": module, ...}``: the modules whose outputs the page shows (named layers only)."""
    return {f.label: f.output for f in feature_layers(model, fallback=False)}


def recorded_accuracy(metrics) -> float | None:
    """The test accuracy a checkpoint records, if it records a usable one."""
    test = metrics.get("test") if isinstance(metrics, dict) else None
    acc = test.get("acc") if isinstance(test, dict) else None
    if isinstance(acc, (int, float)) and not isinstance(acc, bool) and 0 <= acc <= 1:
        return float(acc)
    return None


class ServedModel:
    """One classifier's checkpoint, ready to answer. Thread-safe: one forward pass at a time."""

    task = "classify"

    def __init__(self, model_id: str, path: str | Path, ckpt: Checkpoint | None = None):
        path = Path(path)
        self.predictor = Predictor(ckpt) if ckpt is not None else Predictor.from_checkpoint(path)
        self.id = model_id
        self.path = path
        self.name = self.predictor.checkpoint.model_name
        self.metrics = self.predictor.checkpoint.metrics
        self.model = self.predictor.model
        self.classes = self.predictor.classes
        self.num_classes = len(self.classes)
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.layers = feature_outputs(self.model)
        self.test_accuracy = recorded_accuracy(self.metrics)
        self._lock = threading.Lock()
        self._caught: dict[str, list[torch.Tensor]] | None = None  # per label, per chunk
        for label, module in self.layers.items():
            module.register_forward_hook(self._catcher(label))
        self._probe()

    def _probe(self) -> None:
        """Answer two digits now, so that a checkpoint the model cannot use is refused at
        start-up in one line, not with a 500 for every request."""
        probe = np.zeros((2, 28, 28), dtype=np.uint8)
        probe[1, 6:22, 12:16] = 255  # a "1"
        try:
            answers = self.predict_batch(probe, activations=True)
        except Exception as e:  # whatever the checkpoint's numbers make the model do
            first = (str(e).strip().splitlines() or [""])[0]
            raise Lenet5Error(f"{self.path}: the model cannot read a digit "
                              f"({type(e).__name__}: {first})") from None
        if not all(np.isfinite(a.probabilities).all() for a in answers):
            raise Lenet5Error(f"{self.path}: the model gives non-finite probabilities")

    def _catcher(self, label: str):
        def hook(module, inputs, output):
            if self._caught is not None:
                self._caught.setdefault(label, []).append(output.detach())
        return hook

    def predict(self, digit: np.ndarray, activations: bool = False) -> Prediction:
        """Probabilities (softmax of the scores) for one 28x28 uint8 digit."""
        return self.predict_batch(digit[None], activations)[0]

    def predict_batch(self, digits: np.ndarray, activations: bool = False) -> list[Prediction]:
        """One forward pass for a (B, 28, 28) uint8 batch."""
        if digits.ndim != 3 or digits.shape[1:] != (28, 28) or digits.dtype != np.uint8:
            raise Lenet5Error(f"expected 28x28 uint8 digits, got {digits.dtype} {digits.shape}")
        with self._lock:
            self._caught = {} if activations else None
            try:
                probs = self.predictor.probabilities(digits)
            finally:
                caught, self._caught = self._caught or {}, None
        maps = {k: torch.cat(v).float().numpy() for k, v in caught.items()}
        preds = self.predictor.predictions(probs, top=1)
        for i, pred in enumerate(preds):
            pred.activations = {k: v[i] for k, v in maps.items()}
        return preds


class Batcher:
    """Batches the predictions asked for during one turn of an asyncio event loop.

    ``predict`` returns an asyncio future; the first request of a turn schedules one
    forward pass, run on the loop itself right after the turn, for every digit asked for
    in it. While that pass runs, the next requests queue up, so batches grow with the load.
    The feature maps are computed for a batch when any of its requests asks for them.

    On the loop rather than on a worker thread: with a thread every batch waited for the
    GIL hand-off from the loop, which cost ~15% more CPU per request and a higher p99
    (benchmarks/load_serve.py, the two versions run back to back).
    """

    def __init__(self, model: ServedModel):
        self.model = model
        self._jobs: list[tuple[np.ndarray, bool, asyncio.Future]] = []

    def predict(self, digit: np.ndarray, activations: bool = False) -> asyncio.Future:
        if digit.shape != (28, 28) or digit.dtype != np.uint8:
            raise Lenet5Error(f"expected a 28x28 uint8 digit, got {digit.dtype} {digit.shape}")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._jobs:
            loop.call_soon(self._flush)
        self._jobs.append((digit, activations, future))
        return future

    def _flush(self) -> None:
        jobs, self._jobs = [j for j in self._jobs if not j[2].done()], []  # skip the cancelled
        if not jobs:
            return
        try:
            digits = np.stack([digit for digit, _, _ in jobs])
            results = self.model.predict_batch(digits, any(want for _, want, _ in jobs))
        except Exception as e:  # a bug: every waiting request hears of it
            for _, _, future in jobs:
                future.set_exception(e)
            return
        for (_, want, future), result in zip(jobs, results):
            if not want:
                result.activations = {}
            future.set_result(result)


def load_models(paths: list[str | Path]) -> dict[str, ServedModel | ServedReader]:
    """``{id: model}`` in the order given; the id is the file's stem (or the shipped
    weights' name), made unique. Each checkpoint is served by what its model's registry task asks for: a
    :class:`ServedModel` classifies digits, a :class:`~.reader.ServedReader` reads numbers."""
    served = {"classify": ServedModel, "read": ServedReader}
    if not paths:
        raise Lenet5Error("give at least one checkpoint to serve")
    models: dict[str, ServedModel | ServedReader] = {}
    for path in paths:
        stem = Path(path).name.removesuffix(".safetensors")
        model_id, n = stem, 1
        while model_id in models:
            n += 1
            model_id = f"{stem}-{n}"
        ckpt = resolve_checkpoint(os.fspath(path))  # a file, or the name of shipped weights
        try:
            models[model_id] = served[get_model_entry(ckpt.model_name).task](model_id, path, ckpt)
        except Lenet5Error:
            raise
        except Exception as e:  # a checkpoint whose numbers break the model: one line
            first = (str(e).strip().splitlines() or [""])[0]
            raise Lenet5Error(f"{path}: cannot serve this checkpoint ({type(e).__name__}: {first})"
                              ) from None
    return models
