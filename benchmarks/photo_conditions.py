"""The conditions of the photo benchmark: how each draws the scenes (``photogen.Scene``)
of its photos.

The tuned conditions were used while developing the preprocessing; the ``held_out`` ones
were written at the same time but only run once the preprocessing was settled, to
estimate how it does on photos made in ways it was not tuned on. ``scene(condition,
index, seed)`` is the same for the same arguments, whatever else is drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from benchmarks.photogen import PENS, Scene


def _base(rng: np.random.Generator, long=(640, 2000), digit=(0.08, 0.45), side=None) -> Scene:
    """An evenly lit sheet of white paper, black pen, a modest camera: what others vary.
    The photo's longer side is drawn from ``long`` (log-uniform), the digit's field from
    ``digit`` of the shorter side, or ``side`` px."""
    long_px = int(np.exp(rng.uniform(np.log(long[0]), np.log(long[1]))))
    short_px = int(long_px * rng.uniform(0.6, 1.0))
    w, h = (long_px, short_px) if rng.random() < 0.5 else (short_px, long_px)
    side_px = int(rng.integers(*side)) if side else int(short_px * rng.uniform(*digit))
    fmt = "JPEG" if rng.random() < 0.75 else "PNG"
    return Scene(sheet=(w, h), digit_side=max(28, side_px), at=(rng.random(), rng.random()),
                 angle=float(rng.uniform(-4, 4)), paper=tuple(rng.uniform(0.85, 1.0, 3).clip(
                     max=1.0)) if rng.random() < 0.3 else (0.95,) * 3,
                 grain=float(rng.uniform(0, 0.02)), light=float(rng.uniform(0.8, 1.0)),
                 blur=float(rng.uniform(0, 1.2)), noise=float(rng.uniform(0.5, 3)),
                 fmt=fmt, quality=int(rng.integers(70, 96)), seed=int(rng.integers(2**31)))


def _uneven(s: Scene, rng: np.random.Generator) -> Scene:
    """Some mix of gradient, vignette and a shadow edge, as most phone photos have."""
    kinds = rng.choice(["gradient", "vignette", "shadow"], size=int(rng.integers(1, 4)), replace=False)
    return replace(s, gradient=float(rng.uniform(0.3, 0.7)) if "gradient" in kinds else 0.0,
                   vignette=float(rng.uniform(0.2, 0.6)) if "vignette" in kinds else 0.0,
                   shadow=float(rng.uniform(0.3, 0.6)) if "shadow" in kinds else 0.0,
                   shadow_soft=float(rng.uniform(0, 0.3)))


def _pen(rng, names=("black", "blue", "red")) -> tuple[float, float, float]:
    return PENS[str(rng.choice(names))]


def _ruled(s: Scene, rng) -> Scene:
    return replace(s, lines="ruled", line_spacing=float(rng.uniform(0.75, 1.3)),
                   line_width=float(rng.uniform(1.0, 3.0)), line_angle=float(rng.uniform(-3, 3)),
                   line_rgb=(float(rng.uniform(0.5, 0.8)), float(rng.uniform(0.65, 0.85)),
                             float(rng.uniform(0.85, 1.0))), margin=bool(rng.random() < 0.5))


def _squared(s: Scene, rng) -> Scene:
    grey = float(rng.uniform(0.55, 0.8))
    rgb = (grey, grey, grey) if rng.random() < 0.5 else (grey - 0.1, grey, min(1.0, grey + 0.2))
    return replace(s, lines="squared", line_spacing=float(rng.uniform(0.3, 0.6)),
                   line_width=float(rng.uniform(1.0, 2.5)), line_angle=float(rng.uniform(-3, 3)),
                   line_rgb=rgb)


def _phone(rng) -> Scene:
    s = _uneven(_base(rng), rng)
    paper = str(rng.choice(["plain", "ruled", "squared"]))
    if paper == "ruled":
        s = _ruled(s, rng)
    elif paper == "squared":
        s = _squared(s, rng)
    return replace(s, pen=_pen(rng), noise=float(rng.uniform(1, 8)), quality=int(rng.integers(40, 95)),
                   hotspot=float(rng.uniform(0, 0.3)), angle=float(rng.uniform(-6, 6)))


def _graph_pencil(rng) -> Scene:
    s = _base(rng, side=(150, 400))
    return replace(s, lines="mm", line_spacing=float(rng.uniform(0.06, 0.1)), line_width=1.0,
                   line_rgb=(0.9, 0.75, 0.55) if rng.random() < 0.5 else (0.7, 0.85, 0.7),
                   line_angle=float(rng.uniform(-2, 2)), pen=PENS["pencil"],
                   gradient=float(rng.uniform(0.2, 0.5)), grain=0.04)


@dataclass(frozen=True)
class Condition:
    name: str
    describe: str
    draw: Callable[[np.random.Generator], Scene]
    held_out: bool = False
    tags: tuple[str, ...] = field(default=())


CONDITIONS = [
    Condition("even", "evenly lit white paper, black pen", lambda r: replace(_base(r), angle=0.0)),
    Condition("gradient", "light falling off across the sheet by 30-70%, black or blue pen",
              lambda r: replace(_base(r), gradient=float(r.uniform(0.3, 0.7)),
                                pen=_pen(r, ("black", "blue")))),
    Condition("vignette", "dark corners and a lamp's hot spot",
              lambda r: replace(_base(r), vignette=float(r.uniform(0.3, 0.7)),
                                hotspot=float(r.uniform(0.1, 0.4)))),
    Condition("shadow", "a hard or soft shadow edge, 30-60% darker, often across the digit",
              lambda r: replace(_base(r), shadow=float(r.uniform(0.3, 0.6)),
                                shadow_soft=float(r.choice([0.0, r.uniform(0, 0.4)])))),
    Condition("ruled", "ruled paper (blue lines, some with a red margin), blue or black pen, uneven light",
              lambda r: replace(_ruled(_uneven(_base(r), r), r), pen=_pen(r, ("blue", "black")))),
    Condition("squared", "squared paper, grey or blue grid, uneven light",
              lambda r: replace(_squared(_uneven(_base(r), r), r), pen=_pen(r, ("blue", "black")))),
    Condition("colour-pen", "red, blue or green pen on tinted paper under warm light",
              lambda r: replace(_uneven(_base(r), r), pen=_pen(r, ("red", "blue", "green")),
                                paper=(0.97, 0.94, 0.85), tint=(1.0, 0.93, 0.8))),
    Condition("noise-jpeg", "sensor noise and JPEG at quality 20-60",
              lambda r: replace(_uneven(_base(r), r), noise=float(r.uniform(4, 12)),
                                shot=float(r.uniform(0, 1.0)), fmt="JPEG", quality=int(r.integers(20, 61)))),
    Condition("small", "a small digit (its 28x28 field 36-80 px) on a big sheet, uneven light",
              lambda r: _uneven(_base(r, long=(1200, 2000), side=(36, 80)), r)),
    Condition("phone", "all of the above drawn at random together", _phone),
    # held out: written with the rest, run only once the preprocessing was settled
    Condition("chalkboard", "white chalk on a dark green or black board, uneven light",
              lambda r: replace(_uneven(_base(r), r), chalk=True, pen=(0.85, 0.85, 0.8),
                                paper=(0.12, 0.2, 0.15) if r.random() < 0.5 else (0.1, 0.1, 0.1),
                                grain=0.08), held_out=True),
    Condition("graph-pencil", "pencil on millimetre graph paper", _graph_pencil, held_out=True),
    Condition("sticky-note", "a yellow note in perspective, under a hand's shadow",
              lambda r: replace(_base(r), paper=(1.0, 0.92, 0.45), pen=_pen(r, ("blue", "black")),
                                blob=float(r.uniform(0.3, 0.6)), perspective=float(r.uniform(0.02, 0.08))),
              held_out=True),
    Condition("motion-lowlight", "camera shake, a dim room: motion blur, strong noise, JPEG",
              lambda r: replace(_uneven(_base(r, side=(120, 360)), r), motion=int(r.integers(3, 9)),
                                light=float(r.uniform(0.25, 0.45)), shot=float(r.uniform(0.5, 1.5)),
                                noise=float(r.uniform(3, 8)), fmt="JPEG", quality=int(r.integers(50, 80))),
              held_out=True),
    Condition("marker-finepen", "a thick marker or a fine pen (strokes grown or thinned), grey file",
              lambda r: (lambda s: replace(s, stroke=int(r.choice([-1, 1])) * max(1, s.digit_side // 60),
                                           grey=True))(_uneven(_base(r, side=(150, 400)), r)),
              held_out=True),
    Condition("table-edge", "the sheet's edge and the table in frame, dust specks, WebP",
              lambda r: replace(_uneven(_base(r), r), table=float(r.uniform(0.05, 0.2)),
                                specks=int(r.integers(5, 40)), fmt="WEBP", quality=int(r.integers(50, 90))),
              held_out=True),
]


def get_condition(name: str) -> Condition:
    for c in CONDITIONS:
        if c.name == name:
            return c
    raise KeyError(name)


def scene(condition: Condition, index: int, seed: int = 0) -> Scene:
    """The scene of the ``index``-th photo of a condition: the same for the same
    (condition, index, seed), whatever else is drawn."""
    return condition.draw(np.random.default_rng([seed, sum(map(ord, condition.name)), index]))


def shrink(s: Scene, long: int) -> Scene:
    """The scene with the photo's longer side at most ``long`` px, everything scaled with
    it (the digit's field no smaller than 28 px): a cheaper photo of the same kind."""
    f = min(1.0, long / max(s.sheet))
    if f == 1.0:
        return s
    side = max(28, round(s.digit_side * f))
    w, h = max(side + 2, round(s.sheet[0] * f)), max(side + 2, round(s.sheet[1] * f))
    return replace(s, sheet=(w, h), digit_side=side, line_width=max(1.0, s.line_width * f),
                   stroke=int(round(s.stroke * f)))

