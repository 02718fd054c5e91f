"""What a decoder returns: the characters of the best path and the frames each one spans."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """One character of a decoded path: its class and the output frames first..last
    (inclusive) the path spends on it."""

    label: int
    first: int
    last: int


def runs(path: list[int] | tuple[int, ...], blank: int) -> list[Segment]:
    """Collapse a frame-by-frame path: a run of one class is one character, blanks
    separate characters and emit nothing (CTC's and the SDNN's rule alike)."""
    out: list[Segment] = []
    prev = blank
    for t, s in enumerate(path):
        if s != blank:
            if s == prev:
                out[-1] = Segment(s, out[-1].first, t)
            else:
                out.append(Segment(s, t, t))
        prev = s
    return out
