"""Reading digits people give it: a checkpoint loaded once, images in, answers out.

    >>> from lenet5.predict import Predictor
    >>> p = Predictor.from_checkpoint("runs/classic.safetensors")
    >>> best = p.predict_files(["three.jpg"], top=3)[0]
    >>> best.label, best.class_name, best.digit
    (3, '3', 3)

Files go through :func:`lenet5.data.images.load_digit` (MNIST's own preprocessing: grey,
invert light paper, crop to the ink, 20 px box, centre of mass in 28x28), then through the
checkpoint's :class:`~lenet5.data.Preprocess` exactly as in training and evaluation. The
probability of a class is the softmax of the model's scores: for every model in the
registry a larger score means more likely.

A :class:`Prediction` is the one answer type of ``lenet5 predict`` and ``lenet5 serve``;
as JSON it names the class three ways, the same in both: ``label`` (int, the class's index,
into ``probabilities``), ``class`` (str, its name: "3", or "Ankle boot" for Fashion-MNIST)
and ``digit`` (int, the digit that name is, or null when the classes are not digits).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoint import Checkpoint
from .data import to_input
from .data.folder import IMAGE_SUFFIXES, image_files
from .data.images import load_digit
from .data.registry import DIGITS
from .errors import Lenet5Error
from .weights import resolve_checkpoint

BATCH_SIZE = 256


@dataclass(frozen=True)
class ClassProbability:
    """One class and how likely it is: its index (``label``), its name, its probability."""

    label: int
    class_name: str
    probability: float

    @property
    def digit(self) -> int | None:
        """The digit the class is (its name is "0".."9"), else None."""
        return int(self.class_name) if self.class_name in DIGITS else None

    def to_dict(self) -> dict:
        return {"label": self.label, "class": self.class_name, "digit": self.digit,
                "probability": self.probability}


@dataclass
class Prediction:
    """The answer for one image: the K most likely classes, best first, and every class's
    probability; ``label``, ``class_name``, ``digit`` and ``probability`` are the best's."""

    top: list[ClassProbability]  # at least one
    probabilities: list[float]  # softmax of the scores, in label order
    file: str | None = None  # the image it answers for, when read from a file
    preprocessed: str | None = None  # where the 28x28 input was saved, if asked
    activations: dict[str, np.ndarray] = field(default_factory=dict)  # "C1" -> (maps, H, W)

    @property
    def label(self) -> int:
        return self.top[0].label

    @property
    def class_name(self) -> str:
        return self.top[0].class_name

    @property
    def digit(self) -> int | None:
        return self.top[0].digit

    @property
    def probability(self) -> float:
        return self.top[0].probability

    def to_dict(self) -> dict:
        """``lenet5 predict --json``'s object: file, label, class, digit, probability, top."""
        d = {"file": self.file, **self.top[0].to_dict(),
             "top": [c.to_dict() for c in self.top]}
        if self.preprocessed is not None:
            d["preprocessed"] = self.preprocessed
        return d


@dataclass
class Failure:
    """A file that could not be read as a digit, with the one-line reason."""

    file: str
    error: str

    def to_dict(self) -> dict:
        return {"file": self.file, "error": self.error}


def find_images(paths: Iterable[str | os.PathLike]) -> Iterator[tuple[str, Path | None, str | None]]:
    """Expand files and directories into ``(name, path, error)`` in order.

    A file named on the command line is always tried (a wrong one gets a clear error
    later); a directory is walked, sorted, for files with an image suffix
    (``IMAGE_SUFFIXES``, as ``imagefolder`` does). A missing path, or a directory without
    images, yields an error instead of a path.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = image_files(path)
            if not found:
                yield str(raw), None, f"{raw}: no image files ({', '.join(IMAGE_SUFFIXES)}) in directory"
            for p in found:
                yield str(p), p, None
        elif path.exists():
            yield str(raw), path, None
        else:
            yield str(raw), None, f"{raw}: no such file or directory"


class Predictor:
    """A model from a checkpoint, ready to read 28x28 uint8 digits (ink 255 on 0)."""

    def __init__(self, ckpt: Checkpoint, device: torch.device | str = "cpu",
                 batch_size: int = BATCH_SIZE):
        self.checkpoint = ckpt
        self.device = torch.device(device)
        self.model = ckpt.build_model().to(self.device)
        self.preprocess = ckpt.preprocess
        self.in_channels = int(ckpt.model_args.get("in_channels", 1))
        self.batch_size = batch_size
        num_classes = int(ckpt.model_args.get("num_classes", 0)) or self._probe_num_classes()
        self.classes = ckpt.class_names(num_classes)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: torch.device | str = "cpu",
                        **kwargs) -> Predictor:
        """From a checkpoint file or the name of shipped weights (``modern.mnist``)."""
        return cls(resolve_checkpoint(os.fspath(path)), device, **kwargs)

    def _probe_num_classes(self) -> int:
        return int(self.probabilities(np.zeros((1, 28, 28), np.uint8)).shape[1])

    @torch.inference_mode()
    def probabilities(self, digits: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Softmax of the model's scores, (N, num_classes), for uint8 digits (N, 28, 28)."""
        images = torch.tensor(np.asarray(digits, dtype=np.uint8))
        if images.dim() == 2:
            images = images.unsqueeze(0)
        if images.dim() != 3:
            raise Lenet5Error(f"digits must be (N, H, W) uint8, not shape {tuple(images.shape)}")
        images = images.unsqueeze(1).expand(-1, self.in_channels, -1, -1)
        out = []
        for i in range(0, len(images), self.batch_size):
            x = to_input(images[i:i + self.batch_size], self.preprocess, self.device)
            out.append(torch.softmax(self.model(x).float(), dim=1).cpu())
        return torch.cat(out) if out else torch.empty(0, len(getattr(self, "classes", ())))

    def predict(self, digits: np.ndarray | torch.Tensor, top: int = 3,
                names: list[str] | None = None) -> list[Prediction]:
        """One :class:`Prediction` per digit; ``names`` are the files they came from."""
        return self.predictions(self.probabilities(digits), top, names)

    def predictions(self, probs: torch.Tensor, top: int = 3,
                    names: list[str] | None = None) -> list[Prediction]:
        """:class:`Prediction` objects for rows of :meth:`probabilities`, with the ``top``
        most likely classes each (at least one, at most all)."""
        k = max(1, min(top, probs.shape[1]))
        values, indices = probs.topk(k, dim=1)
        names = names or [None] * len(probs)
        return [
            Prediction(top=[ClassProbability(int(j), self.classes[int(j)], float(v))
                            for v, j in zip(val.tolist(), idx.tolist())],
                       probabilities=row.tolist(), file=name)
            for name, row, val, idx in zip(names, probs, values, indices)
        ]

    def predict_files(self, paths: Iterable[str | os.PathLike], top: int = 3,
                      save_dir: str | os.PathLike | None = None
                      ) -> list[Prediction | Failure]:
        """Predict every image file under ``paths`` (files or directories); see :meth:`iter_files`."""
        return list(self.iter_files(paths, top, save_dir))

    def iter_files(self, paths: Iterable[str | os.PathLike], top: int = 3,
                   save_dir: str | os.PathLike | None = None
                   ) -> Iterator[Prediction | Failure]:
        """Yield, in input order, a Prediction per readable image and a Failure per bad one.

        Images are preprocessed and predicted in batches of ``batch_size``; with
        ``save_dir`` the 28x28 image fed to the model is written there as ``<stem>.png``.
        """
        saver = _PreprocessedWriter(save_dir) if save_dir is not None else None
        pending: list[tuple[str, np.ndarray | None, str | None]] = []

        def flush() -> Iterator[Prediction | Failure]:
            good = [(name, digit) for name, digit, _ in pending if digit is not None]
            preds = iter(self.predict(np.stack([d for _, d in good]), top, [n for n, _ in good])
                         if good else [])
            for name, digit, error in pending:
                if error is not None:
                    yield Failure(name, error)
                    continue
                pred = next(preds)
                if saver is not None:
                    pred.preprocessed = str(saver.write(name, digit))
                yield pred
            pending.clear()

        for name, path, error in find_images(paths):
            digit = None
            if error is None:
                try:
                    digit = load_digit(path, name)
                except Lenet5Error as e:
                    error = str(e)
            pending.append((name, digit, error))
            if len(pending) >= self.batch_size:
                yield from flush()
        yield from flush()


@dataclass
class _PreprocessedWriter:
    """Writes 28x28 digits as PNGs named after their source, never two with one name."""

    directory: str | os.PathLike
    used: set[str] = field(default_factory=set)

    def write(self, source: str, digit: np.ndarray) -> Path:
        import io

        from PIL import Image

        from .io import atomic_write_bytes

        stem = Path(source).stem or "image"
        name, n = f"{stem}.png", 1
        while name in self.used:
            n += 1
            name = f"{stem}-{n}.png"
        self.used.add(name)
        buf = io.BytesIO()
        Image.fromarray(digit).save(buf, format="PNG")
        return atomic_write_bytes(Path(self.directory) / name, buf.getvalue())
