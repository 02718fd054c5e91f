"""Handwritten numbers composed from digit images: the data of the string readers.

A string is a line of digits cut from a digit dataset (MNIST by default): each digit is
taken by its own ink box (not its 28x28 frame), resized and slanted a little as writing
varies, set on a common centre line with some vertical jitter, and placed after the one
before it with a gap between their ink boxes (negative: overlapping or touching). Training
strings use only training digits and test strings only test digits, so no writer is
shared. Everything is drawn from a ``torch.Generator``: the same seed gives the same
strings; the test set is fixed by its seed.

Geometry: 32 pixels high, the height of LeNet-5's input, with the digits' ink (about 20
pixels high, MNIST's normalization) centred on row 16: an MNIST digit padded by 2 as the
digit models see it, extended sideways. No further padding is needed (``STRIP_PREPROCESS``
pads nothing); the readers add background on the left and right themselves.

The paper's SDNN is trained on windows rather than strings (LeCun et al. 1998, VII.A):
``sdnn_windows`` cuts 32x32 images centred on a digit with random neighbours, or on no
digit ("none"), with 10% salt-and-pepper noise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import Lenet5Error
from .augment import Augment, augment
from .dataset import Dataset, Split

HEIGHT = 32  # rows of a string image (LeNet-5's input height)
INK = 16  # a pixel at least this bright counts for a digit's ink box (drops resampling haze)
NONE = 10  # the SDNN's "no digit here" class, after the ten digits
# A window is a digit's when centred within 2 pixels of the digit's centre (every digit is
# that close to one output of a 4-pixel sweep), "none" when NONE_DISTANCE or more from
# every centre; between, it is not trained (either answer reads the same text).
NONE_DISTANCE = 4
_CANVAS = 44  # square each digit is transformed in (room for 1.3x a 28x28 digit, slanted)


@dataclass(frozen=True)
class StringOptions:
    """How strings are composed; each range is drawn uniformly, inclusive for integers.

    The defaults are the test set's: lengths 1-8 and the paper's SDNN gaps of -1 to 4
    pixels between ink boxes, each digit at 90-110% of its own size, 1 pixel of vertical
    jitter, upright.
    """

    length: tuple[int, int] = (1, 8)  # digits per string
    gap: tuple[int, int] = (-1, 4)  # pixels between neighbouring ink boxes
    scale: tuple[float, float] = (0.9, 1.1)  # each digit's size, relative to its own
    string_scale: tuple[float, float] = (1.0, 1.0)  # the whole number's size
    vertical_jitter: float = 1.0  # pixels each digit's centre moves up or down, at most
    slant: tuple[float, float] = (0.0, 0.0)  # horizontal shear of the whole number
    margin: tuple[int, int] = (4, 4)  # background pixels left and right of the ink

    def check(self) -> StringOptions:
        for name in ("length", "gap", "scale", "string_scale", "slant", "margin"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise Lenet5Error(f"string {name} range {lo}..{hi} is empty")
        if self.length[0] < 1:
            raise Lenet5Error(f"strings need at least one digit, not {self.length[0]}")
        if min(self.scale[0], self.string_scale[0]) <= 0 or self.margin[0] < 0:
            raise Lenet5Error("string scales must be positive and margins not negative")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> StringOptions:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# What the readers are trained on: the test options' spread and more (wider gaps, sizes,
# slants and jitter), so that numbers written otherwise than the test set are read too.
TRAIN_OPTIONS = StringOptions(gap=(-2, 6), scale=(0.85, 1.15), string_scale=(0.9, 1.1),
                              vertical_jitter=2.0, slant=(-0.15, 0.15), margin=(2, 10))
TEST_SEED = 1998
TEST_SIZE = 10_000


@dataclass
class Strings:
    """Composed strings, right-padded with background to the widest.

    ``images`` uint8 (N, 32, W); ``widths`` (N,); ``digits`` (N, L) the labels, -1 past each
    string's ``lengths``; ``boxes`` (N, L, 4) each digit's ink box x0, y0, x1, y1 (ends
    exclusive), -1 past the length; ``sources`` (N, L) each digit's index in the split it
    was cut from, -1 past the length.
    """

    images: torch.Tensor
    widths: torch.Tensor
    digits: torch.Tensor
    lengths: torch.Tensor
    boxes: torch.Tensor
    sources: torch.Tensor

    def __len__(self) -> int:
        return len(self.lengths)

    def text(self, i: int) -> str:
        return "".join(str(int(d)) for d in self.digits[i, : int(self.lengths[i])])

    def texts(self) -> list[str]:
        return [self.text(i) for i in range(len(self))]

    def subset(self, index: torch.Tensor | slice) -> Strings:
        """The chosen strings, trimmed to the widest and longest of them."""
        widths, lengths = self.widths[index], self.lengths[index]
        w = int(widths.max()) if len(widths) else 0
        n = int(lengths.max()) if len(lengths) else 0
        return Strings(self.images[index][:, :, :w], widths, self.digits[index][:, :n], lengths,
                       self.boxes[index][:, :n], self.sources[index][:, :n])


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def _integers(n: int, lo: int, hi: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(lo, hi + 1, (n,), generator=g)


def draw_indices(pool: int, n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` indices into a pool, from successive random permutations of it: every digit is
    used once before any is used twice."""
    rounds = -(-n // pool)
    return torch.cat([torch.randperm(pool, generator=g) for _ in range(rounds)])[:n]


def transform_digits(images: torch.Tensor, scale: torch.Tensor, slant: torch.Tensor
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Resize and slant each digit about its centre; return the uint8 crops' canvas
    (D, 44, 44) and each one's ink box (D, 4) as y0, y1, x0, x1 (ends exclusive)."""
    d, h, w = images.shape
    top, left = (_CANVAS - h) // 2, (_CANVAS - w) // 2
    canvas = torch.zeros(d, 1, _CANVAS, _CANVAS)
    canvas[:, 0, top:top + h, left:left + w] = images.float()
    if d and not (bool((scale == 1).all()) and bool((slant == 0).all())):
        # where each output pixel reads in the input, in grid_sample's [-1, 1] coordinates
        # about the centre: the inverse of x' = s (x + slant y), y' = s y
        u = (torch.arange(_CANVAS) + 0.5) * (2 / _CANVAS) - 1
        y, x = u.view(1, -1, 1), u.view(1, 1, -1)
        s, k = scale.float().view(-1, 1, 1), slant.float().view(-1, 1, 1)
        grid = torch.stack([(x - k * y) / s, (y / s).expand(d, -1, _CANVAS)], 3)
        canvas = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
    out = canvas[:, 0].round_().clamp_(0, 255).to(torch.uint8).numpy()
    ink = out >= INK
    rows, cols = ink.any(2), ink.any(1)
    empty = ~rows.any(1)  # no ink at all: a 1-pixel box at the centre
    rows[empty, _CANVAS // 2] = cols[empty, _CANVAS // 2] = True
    first = lambda m: m.argmax(1)  # noqa: E731
    last = lambda m: m.shape[1] - m[:, ::-1].argmax(1)  # noqa: E731
    return out, np.stack([first(rows), last(rows), first(cols), last(cols)], 1)


def compose(split: Split, n: int, options: StringOptions, generator: torch.Generator,
            lengths: torch.Tensor | None = None, writing: Augment | None = None) -> Strings:
    """``n`` strings of digits cut from ``split`` (images (N, 28, 28) uint8, labels (N,)).

    ``lengths`` (n,) fixes each string's length instead of drawing it from the options;
    ``writing`` varies each digit as people's writing varies (``data/augment.py``) before
    it is placed.
    """
    o = options.check()
    if split.images.dim() != 3:
        raise Lenet5Error("strings are composed of one-channel digit images (N, H, W)")
    if not len(split):
        raise Lenet5Error("no digits to compose strings of")
    g = generator
    if lengths is None:
        lengths = _integers(n, *o.length, g)
    total = int(lengths.sum())
    index = draw_indices(len(split), total, g)
    string_of = torch.repeat_interleave(torch.arange(n), lengths)
    scale = _uniform(total, *o.scale, g) * _uniform(n, *o.string_scale, g)[string_of]
    slant = _uniform(n, *o.slant, g)[string_of]
    gaps = _integers(total, *o.gap, g).numpy()
    dy = _uniform(total, -o.vertical_jitter, o.vertical_jitter, g).numpy()
    margins = torch.stack([_integers(n, *o.margin, g), _integers(n, *o.margin, g)], 1).numpy()
    digit_images = split.images.index_select(0, index)
    if writing is not None and total:
        u = augment(digit_images[:, None].float() / 255, g, writing)
        digit_images = (u[:, 0] * 255).round_().clamp_(0, 255).to(torch.uint8)
    crops, box = transform_digits(digit_images, scale, slant)

    starts = np.concatenate([[0], np.cumsum(lengths.numpy())])
    x0 = np.empty(total, dtype=np.int64)
    widths = np.empty(n, dtype=np.int64)
    ink_w = box[:, 3] - box[:, 2]
    for i in range(n):
        a, b = starts[i], starts[i + 1]
        x = margins[i, 0]
        for j in range(a, b):
            if j > a:
                x = max(x + gaps[j], x0[j - 1] + 1)  # never left of the digit before
            x0[j] = x
            x += ink_w[j]
        widths[i] = max(x0[a:b] + ink_w[a:b]) + margins[i, 1]
    images = np.zeros((n, HEIGHT, int(widths.max())), dtype=np.uint8)
    boxes = np.full((n, int(lengths.max()), 4), -1, dtype=np.int64)
    for j in range(total):
        i, k = int(string_of[j]), j - starts[string_of[j]]
        y0, y1, cx0, cx1 = box[j]
        crop = crops[j, y0:y1, cx0:cx1]
        if len(crop) > HEIGHT:  # taller than the line: keep its middle rows
            cut = (len(crop) - HEIGHT) // 2
            crop = crop[cut:cut + HEIGHT]
        h = len(crop)
        top = min(max(round(HEIGHT / 2 + dy[j] - h / 2), 0), HEIGHT - h)
        region = images[i, top:top + h, x0[j]:x0[j] + crop.shape[1]]
        np.maximum(region, crop, out=region)  # overlapping digits: the darker ink wins
        boxes[i, k] = (x0[j], top, x0[j] + crop.shape[1], top + h)
    digits = torch.full((n, boxes.shape[1]), -1, dtype=torch.long)
    sources = digits.clone()
    mask = torch.arange(boxes.shape[1])[None, :] < lengths[:, None]
    digits[mask] = split.labels.index_select(0, index)
    sources[mask] = index
    return Strings(torch.from_numpy(images), torch.from_numpy(widths), digits,
                   lengths.clone(), torch.from_numpy(boxes), sources)


def salt_and_pepper(images: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """A copy of uint8 ``images`` with ``rate`` of the pixels set to ink or background at
    random (the paper's SDNN training noise: 10%)."""
    hit = torch.rand(images.shape, generator=generator) < rate
    ink = torch.rand(images.shape, generator=generator) < 0.5
    return torch.where(hit, (ink * 255).to(torch.uint8), images)


def _enough_lengths(n_digits: int, options: StringOptions, g: torch.Generator) -> torch.Tensor:
    """String lengths drawn from ``options`` until they hold at least ``n_digits`` digits."""
    lo, hi = options.length
    lengths = _integers(max(1, 2 * n_digits // (lo + hi) + 2), lo, hi, g)
    while int(lengths.sum()) < n_digits:
        lengths = torch.cat([lengths, _integers(len(lengths) // 2 + 1, lo, hi, g)])
    keep = int((lengths.cumsum(0) < n_digits).sum()) + 1
    return lengths[:keep]


def sdnn_windows(split: Split, n: int, options: StringOptions, generator: torch.Generator,
                 noise: float = 0.1, none_share: float = 0.5,
                 writing: Augment | None = None) -> Split:
    """The SDNN's training images (LeCun et al. 1998, VII.A): (n, 32, 32) uint8 windows
    and labels (n,). Strings are composed with ``options``; a window centred on a digit
    (within 2 pixels) is labelled with it, its neighbours in the string on either side;
    ``none_share`` of the windows are centred on no digit (``NONE``, ``NONE_DISTANCE`` or
    more from every centre): in a gap, on a digit's edge or side, or beside the number.
    ``noise`` of the pixels are salt and pepper."""
    g = generator
    n_none = int(round(n * none_share))
    n_digit = n - n_none
    lengths = _enough_lengths(max(n_digit, 1), options, g)
    strings = compose(split, len(lengths), dataclasses.replace(options, margin=(30, 30)), g,
                      lengths, writing)
    half = HEIGHT // 2
    valid = strings.digits >= 0  # (S, L)
    b = strings.boxes.double()
    centres = torch.where(valid, (b[..., 0] + b[..., 2]) / 2, torch.inf)
    # digit windows: every digit's centre, moved by up to 2 pixels, in random order
    pick = torch.randperm(int(valid.sum()), generator=g)[:n_digit]
    s_digit = valid.nonzero()[:, 0][pick]
    x_digit = centres[valid][pick].round().long() + _integers(len(pick), -2, 2, g)
    y_digit = strings.digits[valid][pick]
    # none windows: centred NONE_DISTANCE pixels or more from every digit's centre (on
    # the edge or the body of a digit, in a gap, beside the number), from 12 pixels
    # before the first digit to 12 after the last
    xs = torch.arange(strings.images.shape[2], dtype=torch.float64)
    nearest = (xs[None, :, None] - centres[:, None, :]).abs().min(2).values  # (S, W)
    first = b[:, 0, 0]
    last = b.gather(1, (strings.lengths - 1).view(-1, 1, 1).expand(-1, 1, 4))[:, 0, 2]
    inside = (xs[None] >= first[:, None] - 12) & (xs[None] <= last[:, None] + 12)
    none_ok = inside & (nearest >= NONE_DISTANCE)
    flat = none_ok.flatten().nonzero()[:, 0]
    flat = flat[torch.randint(len(flat), (n_none,), generator=g)]
    s_all = torch.cat([s_digit, flat // none_ok.shape[1]])
    x_all = torch.cat([x_digit, flat % none_ok.shape[1]])
    labels = torch.cat([y_digit, torch.full((n_none,), NONE)])
    cols = x_all[:, None] - half + torch.arange(2 * half)[None]  # (n, 32)
    windows = strings.images[s_all[:, None, None], torch.arange(HEIGHT)[None, :, None],
                             cols[:, None, :]]
    order = torch.randperm(n, generator=g)
    windows, labels = windows[order], labels[order]
    if noise > 0:
        windows = salt_and_pepper(windows, noise, g)
    return Split(windows, labels)


@dataclass
class StringSource:
    """The training side of a string dataset: strings composed afresh on demand from the
    training digits (an endless supply; an "epoch" is ``epoch_size`` strings, about one
    use of each digit)."""

    digits: Split
    options: StringOptions = TRAIN_OPTIONS
    writing: Augment | None = None  # each digit varied as people write (None: as it is)

    @property
    def epoch_size(self) -> int:
        return max(1, round(len(self.digits) * 2 / sum(self.options.length)))

    def __len__(self) -> int:
        return self.epoch_size

    def strings(self, n: int, generator: torch.Generator,
                lengths: torch.Tensor | None = None) -> Strings:
        return compose(self.digits, n, self.options, generator, lengths, self.writing)

    def windows(self, n: int, generator: torch.Generator, noise: float = 0.1,
                none_share: float = 0.5) -> Split:
        return sdnn_windows(self.digits, n, self.options, generator, noise, none_share,
                            self.writing)


@dataclass
class StringDataset:
    """A registered string dataset in memory: the ``Dataset`` interface for readers.

    ``train`` composes strings on demand (``StringSource``); ``test`` is the fixed test set,
    ``test_size`` strings of ``test_options`` drawn with ``test_seed`` from the test digits.
    """

    name: str
    digits: Dataset
    train_options: StringOptions = TRAIN_OPTIONS
    test_options: StringOptions = StringOptions()
    test_size: int = TEST_SIZE
    test_seed: int = TEST_SEED
    limit: int | None = None
    task = "read"

    @property
    def classes(self) -> tuple[str, ...]:
        return self.digits.classes

    @property
    def in_channels(self) -> int:
        return 1

    @property
    def train(self) -> StringSource:
        return StringSource(self.digits.train, self.train_options)

    @cached_property
    def test(self) -> Strings:
        full = compose(self.digits.test, self.test_size, self.test_options,
                       torch.Generator().manual_seed(self.test_seed))
        return full if self.limit is None else full.subset(slice(0, self.limit))

    def describe(self) -> dict:
        d = {"name": self.name, "sha256": self.content_hash, "classes": list(self.classes),
             "digits": self.digits.describe(), "train_options": self.train_options.to_dict(),
             "test_options": self.test_options.to_dict(), "test_size": self.test_size,
             "test_seed": self.test_seed}
        if self.limit is not None:
            d["limit"] = self.limit
        return d

    @property
    def content_hash(self) -> str:
        """The digits' hash and everything that decides the strings."""
        recipe = json.dumps([self.digits.content_hash, self.train_options.to_dict(),
                             self.test_options.to_dict(), self.test_size, self.test_seed],
                            sort_keys=True)
        return hashlib.sha256(recipe.encode()).hexdigest()

    def head(self, n: int | None) -> StringDataset:
        """Training digits limited to the first ``n``, test set to its first ``n`` strings."""
        if n is None:
            return self
        if n < 1:
            raise Lenet5Error(f"--limit must be positive, not {n}")
        digits = dataclasses.replace(self.digits, train=self.digits.train.subset(slice(0, n)))
        return dataclasses.replace(self, digits=digits, limit=n)
