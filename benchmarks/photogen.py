"""MNIST test digits made into phone photos of paper: the generator behind predict's floor.

A photo is rendered in three physical steps, each drawn at random per digit:

- the **sheet** (reflectance): paper colour and grain; ruled lines (with a margin), squared,
  millimetre or no paper; the digit as ink (a translucent dye of some colour, or chalk that
  covers), upscaled from the 28x28 original with bicubic interpolation to the size a
  phone would see, rotated a little, anywhere on the sheet; dust specks;
- the **light**: a multiplicative field over the sheet (linear gradients, vignetting, a
  hard or soft shadow edge, a blob shadow of a hand, a hot spot, a tinted light);
- the **camera**: perspective, lens or motion blur, sensor noise (shot and read),
  and the file (PNG, JPEG at a quality, WebP).

``CONDITIONS`` names the mixes: the tuned ones were used while developing the
preprocessing; the ``held_out`` ones were written at the same time but only run once the
preprocessing was settled, to estimate how it does on photos made in ways it was not
tuned on. Everything is seeded: ``render(digit, condition, rng)`` gives the same photo
for the same generator state.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

WHITE = (1.0, 1.0, 1.0)
PENS = {"black": (0.08, 0.08, 0.10), "blue": (0.10, 0.18, 0.55), "red": (0.75, 0.10, 0.12),
        "green": (0.10, 0.45, 0.20), "pencil": (0.45, 0.45, 0.47)}


@dataclass
class Scene:
    """Everything one photo is made of (sizes in photo pixels, levels 0..1)."""

    sheet: tuple[int, int] = (1200, 900)  # width, height
    digit_side: int = 200  # the 28x28 field's side on the sheet
    at: tuple[float, float] = (0.5, 0.5)  # the field's centre, as a fraction of the free room
    angle: float = 0.0  # degrees, the digit's rotation
    paper: tuple[float, float, float] = WHITE
    grain: float = 0.0  # paper texture amplitude
    lines: str = "none"  # none | ruled | squared | mm
    line_rgb: tuple[float, float, float] = (0.6, 0.75, 0.95)
    line_spacing: float = 1.0  # in units of the digit's field side
    line_width: float = 1.5  # px
    line_angle: float = 0.0  # degrees
    margin: bool = False  # a red margin line on ruled paper
    pen: tuple[float, float, float] = PENS["black"]
    chalk: bool = False  # opaque light ink (on a dark board) instead of a dye
    stroke: int = 0  # px: > 0 thickens (marker), < 0 thins (fine pen)
    specks: int = 0  # dust and dirt on the sheet
    light: float = 1.0  # overall exposure
    gradient: float = 0.0  # dimming from one side to the other, 0..1
    vignette: float = 0.0  # dimming at the corners, 0..1
    shadow: float = 0.0  # dimming in a shadowed half-plane, 0..1
    shadow_soft: float = 0.0  # its edge's width, in units of the digit's field side
    blob: float = 0.0  # a soft blob shadow (a hand, a phone), 0..1
    hotspot: float = 0.0  # a brighter spot (a lamp), added fraction
    tint: tuple[float, float, float] = WHITE
    table: float = 0.0  # fraction of the frame beyond the sheet's edge (a dark table)
    perspective: float = 0.0  # how far the corners move, fraction of the side
    blur: float = 0.0  # gaussian, px
    motion: int = 0  # motion blur length, px
    noise: float = 1.0  # read noise, grey levels (of 255)
    shot: float = 0.0  # shot noise scale: sd = shot * sqrt(level)
    fmt: str = "PNG"
    quality: int = 90
    grey: bool = False  # saved as a grey image
    seed: int = 0  # for the scene's own random details (grain, specks, noise)


def _field(h: int, w: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Smooth random values in -1..1, features about ``scale`` px across."""
    gh, gw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    coarse = Image.fromarray(rng.uniform(-1, 1, (gh, gw)).astype(np.float32))
    return np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)


def _line_family(ys: np.ndarray, xs: np.ndarray, angle: float, spacing: float,
                 width: float, offset: float) -> np.ndarray:
    """Anti-aliased coverage (0..1) of parallel lines ``spacing`` px apart."""
    t = np.deg2rad(angle)
    v = ys * np.cos(t) - xs * np.sin(t) + offset
    d = np.abs((v + spacing / 2) % spacing - spacing / 2)
    return np.clip(width / 2 + 0.5 - d, 0, 1)


def ink_alpha(digit: np.ndarray, s: Scene) -> np.ndarray:
    """The digit's ink coverage at photo scale (digit_side px, rotated)."""
    img = Image.fromarray(digit.astype(np.float32) / 255.0)
    img = img.resize((s.digit_side, s.digit_side), Image.Resampling.BICUBIC)
    if s.angle:
        img = img.rotate(s.angle, Image.Resampling.BICUBIC, expand=True)
    a = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
    if s.stroke:
        # a pen's line has a hard edge: the 0.5 level is its outline, moved out or in
        r = abs(s.stroke)
        grow = ndimage.grey_dilation if s.stroke > 0 else ndimage.grey_erosion
        a = grow(a, footprint=_disk(r))
        a = np.clip((a - 0.5) * 3 + 0.5, 0, 1)
    return a


def _disk(r: int) -> np.ndarray:
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r + r


def sheet(digit: np.ndarray, s: Scene, rng: np.random.Generator) -> np.ndarray:
    """Reflectance (h, w, 3) of the sheet with the digit on it."""
    w, h = s.sheet
    ys, xs = np.ogrid[0:h, 0:w]
    ys, xs = ys.astype(np.float32), xs.astype(np.float32)
    base = 1 + s.grain * _field(h, w, rng, 3.0) if s.grain else np.ones((h, w), np.float32)
    spacing = s.line_spacing * s.digit_side
    cover = None
    if s.lines in ("ruled", "squared", "mm"):
        off = rng.uniform(0, spacing)
        cover = _line_family(ys, xs, s.line_angle, spacing, s.line_width, off)
        if s.lines in ("squared", "mm"):
            np.maximum(cover, _line_family(ys, xs, s.line_angle + 90, spacing, s.line_width,
                                           rng.uniform(0, spacing)), out=cover)
        if s.lines == "mm":  # every fifth line thicker
            for a in (s.line_angle, s.line_angle + 90):
                np.maximum(cover, _line_family(ys, xs, a, 5 * spacing, 2 * s.line_width,
                                               off if a == s.line_angle else 0), out=cover)
    margin = None
    if s.margin:
        margin = np.clip(s.line_width + 0.5 - np.abs(xs - rng.uniform(0.05, 0.2) * w), 0, 1)
    refl = np.empty((h, w, 3), np.float32)
    for c in range(3):
        ch = refl[..., c]
        np.multiply(base, s.paper[c], out=ch)
        if cover is not None:
            ch *= 1 - cover * (1 - s.line_rgb[c])
        if margin is not None:
            ch *= 1 - margin * (1 - (0.9, 0.35, 0.4)[c])
    for _ in range(s.specks):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.5, 2.5)
        y0, y1 = int(max(0, cy - 4)), int(min(h, cy + 5))
        x0, x1 = int(max(0, cx - 4)), int(min(w, cx + 5))
        dd = np.hypot(ys[y0:y1] - cy, xs[:, x0:x1] - cx)
        refl[y0:y1, x0:x1] *= (1 - 0.7 * np.clip(r + 0.5 - dd, 0, 1))[..., None]
    a = ink_alpha(digit, s)
    ah, aw = a.shape
    top = int(round(s.at[1] * (h - ah))) if h > ah else 0
    left = int(round(s.at[0] * (w - aw))) if w > aw else 0
    a = a[:h - top, :w - left]
    region = refl[top:top + a.shape[0], left:left + a.shape[1]]
    ink = np.asarray(s.pen, np.float32)
    if s.chalk:
        region[:] = region * (1 - a[..., None]) + ink * a[..., None]
    else:
        region *= 1 - a[..., None] * (1 - ink)
    if s.table:
        # the sheet ends before the frame does: a dark table beyond one or two edges,
        # never reaching the digit
        room = [top, h - top - a.shape[0], left, w - left - a.shape[1]]  # above, below, left, right
        for side in rng.choice(4, size=int(rng.integers(1, 3)), replace=False):
            k = int(min(s.table * (h if side < 2 else w), room[side] - 4))
            if k <= 0:
                continue
            dark = np.array([0.25, 0.17, 0.1], np.float32) * (1 + 0.2 * rng.standard_normal())
            where = [np.s_[:k], np.s_[h - k:], np.s_[:, :k], np.s_[:, w - k:]][side]
            refl[where] = dark
    return refl


def lighting(s: Scene, rng: np.random.Generator) -> np.ndarray:
    """The light falling on each pixel (h, w), multiplicative. The smooth parts are drawn
    at a quarter of the resolution and enlarged; a shadow's edge at full resolution."""
    w, h = s.sheet
    q = 4
    ys, xs = np.ogrid[0:h:q, 0:w:q]
    ys, xs = ys.astype(np.float32), xs.astype(np.float32)
    light = np.full((ys.shape[0], xs.shape[1]), s.light, np.float32)
    if s.gradient:
        t = rng.uniform(0, 2 * np.pi)
        ramp = xs * np.cos(t) + ys * np.sin(t)
        ramp = (ramp - ramp.min()) / max(1e-6, float(ramp.max() - ramp.min()))
        light *= 1 - s.gradient * ramp
    if s.vignette:
        cy, cx = h * rng.uniform(0.3, 0.7), w * rng.uniform(0.3, 0.7)
        r2 = ((ys - cy) / h) ** 2 + ((xs - cx) / w) ** 2
        light *= 1 - s.vignette * np.clip(r2 / r2.max(), 0, 1)
    if s.blob:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        rad = rng.uniform(0.3, 0.8) * max(h, w)
        light *= 1 - s.blob * np.exp(-(((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * (rad / 2) ** 2)))
    if s.hotspot:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        rad = rng.uniform(0.2, 0.5) * max(h, w)
        light *= 1 + s.hotspot * np.exp(-(((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * rad ** 2)))
    light = np.asarray(Image.fromarray(light).resize((w, h), Image.Resampling.BILINEAR))
    if s.shadow:
        ys, xs = np.ogrid[0:h, 0:w]
        t = rng.uniform(0, 2 * np.pi)
        # the edge passes near the digit's place half the time, anywhere otherwise
        py, px = (s.at[1] * h, s.at[0] * w) if rng.random() < 0.5 else (rng.uniform(0, h),
                                                                            rng.uniform(0, w))
        dist = ((xs - px) * np.cos(t)).astype(np.float32) + ((ys - py) * np.sin(t)).astype(np.float32)
        soft = max(0.5, s.shadow_soft * s.digit_side)
        light = light * (1 - s.shadow / (1 + np.exp(-np.clip(dist / soft, -30, 30))))
    return light


def camera(img: np.ndarray, s: Scene, rng: np.random.Generator) -> Image.Image:
    """Linear RGB 0..1 (h, w, 3) through lens and sensor: the picture before it is saved."""
    photo = Image.fromarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if s.blur:
        photo = photo.filter(ImageFilter.GaussianBlur(s.blur))
    if s.motion:
        t = rng.uniform(0, np.pi)
        k = np.zeros((s.motion | 1, s.motion | 1), np.float32)
        c = k.shape[0] // 2
        for i in np.linspace(-c, c, 4 * c + 1):
            k[int(round(c + i * np.sin(t))), int(round(c + i * np.cos(t)))] = 1
        v = np.asarray(photo, np.float32)
        photo = Image.fromarray(np.clip(np.stack([ndimage.convolve(v[..., i], k / k.sum())
                                                  for i in range(3)], -1) + 0.5, 0, 255).astype(np.uint8))
    if s.shot or s.noise:
        v = np.asarray(photo, np.float32)
        sd = s.noise + (s.shot * np.sqrt(v) if s.shot else 0)
        v = v + rng.standard_normal(v.shape, np.float32) * sd
        photo = Image.fromarray(np.clip(v + 0.5, 0, 255).astype(np.uint8))
    if s.perspective:
        w, h = photo.size
        d = s.perspective
        quad = [(rng.uniform(0, d) * w, rng.uniform(0, d) * h),
                (rng.uniform(0, d) * w, h - rng.uniform(0, d) * h),
                (w - rng.uniform(0, d) * w, h - rng.uniform(0, d) * h),
                (w - rng.uniform(0, d) * w, rng.uniform(0, d) * h)]
        photo = photo.transform((w, h), Image.Transform.QUAD, [c for p in quad for c in p],
                                Image.Resampling.BILINEAR, fillcolor=(20, 20, 20))
    return photo.convert("L") if s.grey else photo


def encode(img: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt in ("JPEG", "WEBP"):
        img.save(buf, format=fmt, quality=quality)
    else:
        img.save(buf, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
    return buf.getvalue()


def photo_file(digit: np.ndarray, scene: Scene) -> bytes:
    """The photo of a 28x28 uint8 MNIST digit (ink 255 on 0) in this scene, as the file
    a phone would send (``scene.fmt``)."""
    rng = np.random.default_rng(scene.seed)
    img = sheet(digit, scene, rng)
    light = lighting(scene, rng)
    for c in range(3):
        img[..., c] *= light * scene.tint[c]
    return encode(camera(img, scene, rng), scene.fmt, scene.quality)


def render(digit: np.ndarray, scene: Scene) -> Image.Image:
    """``photo_file`` decoded."""
    img = Image.open(io.BytesIO(photo_file(digit, scene)))
    img.load()
    return img


# ---- the conditions: how each draws its scenes ----------------------------------------


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

