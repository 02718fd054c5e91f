"""Shipped weights: models trained by the project's own commands, ready to read digits
with no training, in the spirit of torchvision's Weights API.

    >>> import lenet5
    >>> lenet5.list_weights()                              # doctest: +SKIP
    ['classic.mnist', 'lenet5-1998.mnist', 'modern.mnist', ...]
    >>> model = lenet5.create_model("modern", weights="mnist")   # doctest: +SKIP
    >>> lenet5.get_weights("modern.mnist").accuracy        # doctest: +SKIP

Each entry names one safetensors file in this package (an ordinary lenet5 checkpoint,
under 600 KB) with what a user needs to trust it: the model and dataset, the test accuracy
measured on the dataset's test set, the exact command that trained it, and the SHA-256 of
the dataset's content and of the file. A file whose hash does not match is refused before
anything in it is read. ``benchmarks/train_weights.py`` retrains every file from scratch
with its recorded command and checks that it lands within 0.1 points of the recorded
accuracy; the tests re-evaluate every file against its recorded accuracy and hash. The
entries live in ``catalog.json`` beside the files, which that script writes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import models
from ..checkpoint import Checkpoint, load_checkpoint
from ..errors import Lenet5Error
from ..registry import Registry

FILE_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class Weights:
    """One shipped file and its card."""

    model: str  # registered model name
    dataset: str  # registered dataset name
    sha256: str  # of the file
    accuracy: float  # on the dataset's test set, as `lenet5 eval` prints it
    command: str  # the exact command that trained it (plus --data-dir and --out)
    dataset_sha256: str  # content hash of the data it was trained on (Dataset.content_hash)
    task: str = "classify"  # the model's task (models/registry.py): "classify" or "read"
    description: str = ""

    @property
    def name(self) -> str:
        """``<model>.<dataset>``, e.g. ``modern.mnist``."""
        return f"{self.model}.{self.dataset}"

    @property
    def file(self) -> str:
        return self.name + FILE_SUFFIX

    @property
    def path(self) -> Path:
        return Path(str(resources.files(__name__).joinpath(self.file)))

    def verify(self) -> Path:
        """The file's path once its SHA-256 matches the recorded one; else one clear line."""
        path = self.path
        try:
            data = path.read_bytes()
        except OSError as e:
            raise Lenet5Error(f"shipped weights {self.name}: cannot read {self.file} "
                              f"({e.strerror or e}); reinstall lenet5") from None
        got = hashlib.sha256(data).hexdigest()
        if got != self.sha256:
            raise Lenet5Error(f"shipped weights {self.name}: {self.file} does not match its "
                              f"recorded SHA-256 (got {got[:16]}..., expected "
                              f"{self.sha256[:16]}...); reinstall lenet5")
        return path

    def load(self) -> Checkpoint:
        """The verified file as a :class:`~lenet5.checkpoint.Checkpoint`."""
        return load_checkpoint(self.verify(), expect_model=self.model)


WEIGHTS: Registry[Weights] = Registry("shipped weights", "shipped weights")


def register_weights(weights: Weights) -> Weights:
    return WEIGHTS.add(weights.name, weights)


def list_weights(task: str | None = None) -> list[str]:
    """Names of the shipped weights (of one ``task``, if given), sorted."""
    return [n for n in WEIGHTS.names() if task is None or WEIGHTS.get(n).task == task]


def get_weights(name: str) -> Weights:
    return WEIGHTS.get(name)


def is_weights_name(name: str) -> bool:
    return name in WEIGHTS


TASK_NAMES = {"classify": "reader of single digits", "read": "reader of whole numbers"}
# What commands use when no checkpoint is named: the best shipped reader of each task.
DEFAULTS: dict[str, str] = {}
CATALOG = "catalog.json"  # beside the files: what benchmarks/train_weights.py --write writes


def default_weights(task: str = "classify") -> Weights:
    name = DEFAULTS.get(task)
    if name is None:
        raise Lenet5Error(f"no shipped {TASK_NAMES.get(task, task)}; pass a checkpoint "
                          "(train one with `lenet5 train`)")
    return get_weights(name)


def create_model(name: str, weights: str | None = None, **kwargs):
    """``lenet5.create_model``: a registered model, with shipped weights if asked.

    ``weights``: the dataset of the shipped weights to load (``"mnist"`` for
    ``modern.mnist``, see ``lenet5 weights``); the model comes back with them, in eval
    mode, built with the arguments it was trained with. Without it, a freshly initialized
    model (:func:`lenet5.models.create_model`).
    """
    if weights is None:
        return models.create_model(name, **kwargs)
    models.get_model_entry(name)  # an unknown model: the error lists the known ones
    ckpt = get_weights(f"{name}.{weights}").load()
    clash = {k: v for k, v in kwargs.items() if ckpt.model_args.get(k) != v}
    if clash:
        raise Lenet5Error(f"{name}.{weights} was trained with "
                          f"{', '.join(f'{k}={ckpt.model_args.get(k)!r}' for k in clash)}")
    return ckpt.build_model()


def resolve_checkpoint(source: str, expect_model: str | None = None):
    """A checkpoint from what a user typed: a ``.safetensors`` path, or the name of shipped
    weights (``modern.mnist``; see ``lenet5 weights``)."""
    if source in WEIGHTS and not Path(source).exists():
        ckpt = get_weights(source).load()
        if expect_model is not None and ckpt.model_name != expect_model:
            raise Lenet5Error(f"{source} holds model {ckpt.model_name!r}, not {expect_model!r}")
        return ckpt
    if not Path(source).exists() and not source.endswith(FILE_SUFFIX):
        shipped = ", ".join(WEIGHTS.names()) or "none"
        raise Lenet5Error(f"{source} does not exist: neither a checkpoint file nor shipped "
                          f"weights (shipped: {shipped})")
    return load_checkpoint(source, expect_model=expect_model)


def _load_catalog() -> None:
    """Register the entries of ``catalog.json`` (written by benchmarks/train_weights.py)."""
    text = resources.files(__name__).joinpath(CATALOG).read_text()
    catalog = json.loads(text)
    for entry in catalog["weights"]:
        register_weights(Weights(**entry))
    DEFAULTS.update(catalog.get("defaults", {}))


_load_catalog()
