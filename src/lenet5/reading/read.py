"""From line images to readings: the sweep, the decoder, each digit's probability and place.

A line image here is a uint8 strip, 32 pixels high, ink bright on a dark background, the
digits' ink about 20 pixels high on row 16 (the geometry of ``data/strings.py``; photos
are brought to it by ``normalize_line``). The reader adds ``MARGIN`` background columns
on both sides, so that its windows can centre on the first and the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import to_input
from ..data.strings import INK
from ..models import Preprocess
from . import ctc, transducer
from .paths import Segment
from .verify import digit_reader, second_opinion

_HALF = float(np.log(0.5))
MARGIN = 16  # background columns added on each side: a window can centre on column 0
METHODS = {"sdnn": ("viterbi", "greedy"), "ctc": ("beam", "greedy")}  # the first: default
# The second look (DecodeOptions): a line read with confidence under RECHECK is read again
# shifted a pixel up and a pixel down, and the three output strips' probabilities averaged
# (docs/reading.md: on validation numbers, as much as reading every line three times).
SHIFTS, RECHECK = (-1, 1), 0.9
# The second opinion (verify.py): the digit reader that reads each found digit again, in
# lines with a digit the line reader is TRUST sure of or less (docs/reading.md: on
# validation numbers, composed as the test set's or otherwise, as good as verifying every
# line; one test line in ten is verified).
VERIFIER, TRUST = "reader.mnist", 0.95
# The SDNN character model's penalties, as `benchmarks/strings.py --tune` chose them on
# 1,000 validation numbers of training digits (docs/reading.md): 914 of them read right.
ENTER, SWITCH = 0.5, 3.0


@dataclass(frozen=True)
class DigitReading:
    digit: int
    probability: float  # the best output frame's probability of this digit
    x0: int  # the digit's columns in the line image, x1 exclusive
    x1: int


@dataclass(frozen=True)
class Reading:
    text: str
    confidence: float  # probability of the whole text given the output strip
    digits: tuple[DigitReading, ...] = field(default_factory=tuple)
    # with read_strips(..., keep_outputs=True): each output's class probabilities (T, C)
    # and the line column its window is centred on (T,), what ``output_strip`` gives
    outputs: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class DecodeOptions:
    """How an output strip becomes text: ``method`` one of ``METHODS[objective]`` (None: its
    default); ``beam`` for CTC's beam search; ``enter`` and ``switch`` the SDNN character
    model's penalties (transducer.py); ``shifts`` the rows a line read with confidence
    under ``recheck`` is shifted by for a second look (``()``: one look only);
    ``verifier`` the reader of single digits (shipped weights or a checkpoint) that reads
    again the digits of each line with a digit the line reader is ``trust`` sure of or
    less (verify.py; None: the line reader's word alone; ``trust`` 1: every line)."""

    method: str | None = None
    beam: int = 8
    enter: float = ENTER
    switch: float = SWITCH
    shifts: tuple[int, ...] = SHIFTS
    recheck: float = RECHECK
    verifier: str | None = VERIFIER
    trust: float = TRUST


def strip_input(images: torch.Tensor, pre: Preprocess, margin: int = MARGIN,
                device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 (B, 32, W) -> normalized float (B, 1, 32, W + 2 * margin)."""
    wide = F.pad(images, (margin, margin))
    return to_input(wide, pre, device)


def decode_one(logp: np.ndarray, objective: str, blank: int, options: DecodeOptions
               ) -> list[Segment]:
    """The characters of one output strip (T, C) of log-probabilities, and their frames."""
    method = options.method or METHODS[objective][0]
    if method not in METHODS[objective]:
        raise ValueError(f"{objective} strips decode by {' or '.join(METHODS[objective])}, "
                         f"not {method!r}")
    if method == "viterbi":
        return transducer.viterbi(logp, blank, options.enter, options.switch)
    if method == "beam":
        best = ctc.greedy(logp, blank)  # the most probable path
        if logp.max(1).sum() > _HALF:  # its text holds over half the probability: no other
            return best  # text is as probable, and no other path of it is more probable
        text, _ = ctc.beam_search(logp, blank, options.beam)
        if tuple(s.label for s in best) == tuple(text):  # the text's most probable path too
            return best
        return ctc.align(logp, text, blank)
    return ctc.greedy(logp, blank)


def shift_rows(images: torch.Tensor, dy: int) -> torch.Tensor:
    """uint8 strips (B, 32, W) moved ``dy`` rows down (up if negative), background filling."""
    out = torch.zeros_like(images)
    if dy >= 0:
        out[:, dy:] = images[:, :images.shape[1] - dy]
    else:
        out[:, :dy] = images[:, -dy:]
    return out


def text_probability(logp: torch.Tensor, frames: torch.Tensor, texts: list[list[int]],
                     blank: int) -> torch.Tensor:
    """p(text | strip) for each strip: all the paths that read the text, summed (CTC's
    forward pass; for the SDNN, "none" playing the blank). ``logp`` (B, T, C)."""
    targets = torch.tensor([k for t in texts for k in t], dtype=torch.long)
    lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)
    nll = F.ctc_loss(logp.transpose(0, 1), targets, frames, lengths, blank=blank,
                     reduction="none", zero_infinity=False)
    return torch.exp(-nll)


def _ink_range(columns: np.ndarray, lo: int, hi: int) -> tuple[int, int] | None:
    ink = np.flatnonzero(columns[lo:hi])
    return (lo + int(ink[0]), lo + int(ink[-1]) + 1) if len(ink) else None


def place_digits(segments: list[Segment], digit_probs: list[float], centres: np.ndarray,
                 image: np.ndarray, width: int) -> tuple[DigitReading, ...]:
    """Each character with its probability (``digit_probs``) and its columns: the ink
    between the midpoints to its neighbours' frames (its own frames' span where there is
    no ink)."""
    columns = (image[:, :width] >= INK).any(0)
    mids = [0]
    for a, b in zip(segments, segments[1:]):
        mids.append(int(round((centres[a.last] + centres[b.first]) / 2)))
    mids.append(width)
    out = []
    for k, s in enumerate(segments):
        lo, hi = max(0, min(mids[k], width)), max(0, min(mids[k + 1], width))
        span = _ink_range(columns, lo, hi) or (
            max(0, int(centres[s.first]) - 2), min(width, int(centres[s.last]) + 2))
        out.append(DigitReading(s.label, digit_probs[k], *span))
    return tuple(out)


@torch.inference_mode()
def output_strip(model: nn.Module, pre: Preprocess, strip: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """What the paper's SDNN figures show under a line: for one uint8 strip (32, W), the
    probabilities (T, C) of every class at each output, and the column of the strip each
    output's window is centred on (T,)."""
    model.eval()
    logits = model(strip_input(strip[None], pre))[0].float()
    t = torch.arange(logits.shape[1])
    return torch.softmax(logits, 0).T, model.centre(t) - MARGIN


@torch.inference_mode()
def read_strips(model: nn.Module, pre: Preprocess, images: torch.Tensor,
                widths: torch.Tensor | None = None, options: DecodeOptions | None = None,
                batch_size: int = 256, device: torch.device | str = "cpu",
                keep_outputs: bool = False) -> list[Reading]:
    """Read each uint8 strip of ``images`` (B, 32, W), of which the first ``widths[i]``
    columns are the line (all of them by default); with ``keep_outputs`` each reading
    keeps its output strip (``Reading.outputs``)."""
    if model.training:  # (walking the modules costs as much as a small forward pass)
        model.eval()
    options = options or DecodeOptions()
    n, _, w = images.shape
    widths = torch.full((n,), w, dtype=torch.long) if widths is None else widths.long()
    order = torch.argsort(widths)  # similar widths together: less padding per batch
    readings: list[Reading | None] = [None] * n
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        bw = int(widths[idx].max())
        lines = images[idx, :, :bw]
        logp = _log_probs(model, pre, lines, device)  # (B, T, C)
        frames = model.frames(widths[idx] + 2 * MARGIN)
        batch = _decode_batch(model, logp, frames, lines, widths[idx], options, keep_outputs)
        unsure = [b for b, r in enumerate(batch) if r.confidence < options.recheck]
        if options.shifts and unsure:  # the second look
            u = torch.tensor(unsure)
            moved = torch.cat([shift_rows(lines[u], dy) for dy in options.shifts])
            probs = logp[u].exp() + _log_probs(model, pre, moved, device).exp().reshape(
                len(options.shifts), len(u), *logp.shape[1:]).sum(0)
            again = _decode_batch(model, (probs / (1 + len(options.shifts))).log(), frames[u],
                                  lines[u], widths[idx][u], options, keep_outputs)
            for b, r in zip(unsure, again):
                batch[b] = r
        for j, r in zip(idx.tolist(), batch):
            readings[j] = r
    return readings  # type: ignore[return-value]


def _log_probs(model, pre, lines: torch.Tensor, device) -> torch.Tensor:
    x = strip_input(lines, pre, device=device)
    return F.log_softmax(model(x).float(), 1).transpose(1, 2).cpu()


def _decode_batch(model, logp, frames, images, widths, options, keep_outputs=False
                  ) -> list[Reading]:
    blank = model.blank
    found = [decode_one(logp[b, :int(frames[b])].numpy(), model.objective, blank, options)
             for b in range(len(logp))]
    centres = model.centre(np.arange(logp.shape[1])) - MARGIN
    probs = logp.exp().numpy()
    digit_probs = [[float(probs[b, s.first:s.last + 1, s.label].max()) for s in segs]
                   for b, segs in enumerate(found)]
    doubt = [b for b, p in enumerate(digit_probs) if p and min(p) <= options.trust]
    if options.verifier and doubt:
        again, again_probs = second_opinion([found[b] for b in doubt], probs[doubt],
                                            frames[doubt], centres, images[doubt],
                                            digit_reader(options.verifier))
        for b, segs, p in zip(doubt, again, again_probs):
            found[b], digit_probs[b] = segs, p
    texts = [[s.label for s in segs] for segs in found]
    conf = text_probability(logp, frames, texts, blank)
    out = []
    for b, segs in enumerate(found):
        digits = place_digits(segs, digit_probs[b], centres, images[b].numpy(), int(widths[b]))
        t = int(frames[b])
        outputs = (probs[b, :t], np.asarray(centres[:t], dtype=np.float64)) if keep_outputs else None
        out.append(Reading("".join(str(d.digit) for d in digits), float(conf[b]), digits, outputs))
    return out
