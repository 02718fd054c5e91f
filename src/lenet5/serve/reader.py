"""The string readers' side of ``lenet5 serve``: an image of a written number in, its reading
and its output strip out.

A :class:`ServedReader` holds a reader's checkpoint (a model whose registry task is
"read": ``lenet5-sdnn``, ``lenet5-ctc``, ``reader-ctc``). Besides the reading (the text, its confidence,
each digit's probability and box in the image's pixels) it answers with the output strip,
as the paper's SDNN figures draw it under the line (LeCun et al. 1998, section VII): for
each position of LeNet-5's window along the line, the class it finds most likely (a digit
or "none") and that class's probability, and where the window is centred, in the image's
columns and in the 32-pixel-high line the model saw.

No web framework here; the app runs :meth:`ServedReader.read_image` on a decode thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..checkpoint import Checkpoint
from ..errors import Lenet5Error
from ..reading.image import ink_of
from ..reading.line import SIDE, LineDigit, LineReading, read_ink_maps

NONE = "none"  # the name of the class after the digits: the SDNN's "none", CTC's blank


@dataclass(frozen=True)
class StripCell:
    """One output of the sweep: its best class (``label``, the blank or "none" last) and
    that class's probability; its window's centre in the image (``x``) and in ``input``."""

    label: int
    probability: float
    x: float
    column: float


@dataclass(frozen=True)
class NumberReading:
    reading: LineReading
    strip: tuple[StripCell, ...]
    input: np.ndarray  # (32, W) uint8: the line as the model saw it, ink 255 on 0


class ServedReader:
    """One reader's checkpoint, ready to read. Thread-safe: one reading at a time."""

    task = "read"

    def __init__(self, model_id: str, path: str | Path, ckpt: Checkpoint):
        self.id, self.path, self.checkpoint = model_id, Path(path), ckpt
        self.name = ckpt.model_name
        self.model = ckpt.build_model()
        self.preprocess = ckpt.preprocess
        self.classes = (*ckpt.class_names(), NONE)  # the digits, then "none" (CTC's blank)
        self.num_classes = len(self.classes)
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.layers: dict = {}  # no feature maps shown for a reader
        self.metrics = ckpt.metrics
        exact = (self.metrics.get("test") or {}).get("exact_match")  # numbers read right
        self.test_accuracy = float(exact) if isinstance(exact, (int, float)) and 0 <= exact <= 1 else None
        self._lock = threading.Lock()
        self._probe()

    def _probe(self) -> None:
        """Read a line now, so that a checkpoint the model cannot use is refused at start-up."""
        line = np.zeros((40, 60), dtype=np.uint8)
        line[10:30, 10:14] = line[10:30, 40:44] = 255  # "11"
        try:
            answer = self.read_ink(line)
        except Exception as e:  # whatever the checkpoint's numbers make the model do
            first = (str(e).strip().splitlines() or [""])[0]
            raise Lenet5Error(f"{self.path}: the model cannot read a line "
                              f"({type(e).__name__}: {first})") from None
        if not all(np.isfinite([c.probability for c in answer.strip])) or \
                not np.isfinite(answer.reading.confidence):
            raise Lenet5Error(f"{self.path}: the model gives non-finite probabilities")

    def read_image(self, img: Image.Image, factor: float = 1.0, name: str = "image") -> NumberReading:
        """Any image of one written number; boxes and ``x`` scaled by ``factor``: the
        original's pixels per ``img`` pixel, where the upload was reduced to be read."""
        ink, scale = ink_of(img, name)  # as `lenet5 read` sees a picture
        return self.read_ink(ink, factor / scale)

    def read_ink(self, ink: np.ndarray, factor: float = 1.0) -> NumberReading:
        """An ink map (uint8, bright ink on a dark background, any size)."""
        with self._lock:
            [reading] = read_ink_maps(self.model, self.preprocess, [ink])
        probs, centres = reading.outputs  # the reading's own strip: the height that won
        where = reading.placement
        label, best = probs.argmax(1), probs.max(1)
        xs = (where.x0 + (centres - SIDE) / where.scale) * factor
        strip = tuple(StripCell(int(k), float(p), round(float(x), 1), float(c))
                      for k, p, x, c in zip(label, best, xs, centres))
        line = reading.strip.numpy()
        if factor != 1:
            digits = tuple(LineDigit(d.digit, d.probability, _scaled(d.box, factor))
                           for d in reading.digits)
            reading = LineReading(reading.text, reading.confidence, digits)
        return NumberReading(reading, strip, line)


def _scaled(box: tuple[int, int, int, int], factor: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (int(np.floor(x0 * factor)), int(np.floor(y0 * factor)),
            int(np.ceil(x1 * factor)), int(np.ceil(y1 * factor)))
