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

``benchmarks/photo_conditions.py`` names the mixes of these drawn per photo. Everything
is seeded: ``photo_file(digit, scene)`` gives the same file for the same scene.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

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
