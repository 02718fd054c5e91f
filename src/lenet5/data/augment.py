"""Random augmentations of whole training batches: the ways people's writing differs from MNIST.

Every augmentation works on a whole batch at once (no per-image Python) in *ink space*: float
images (B, C, H, W) with 0 for the background and 1 for full ink, so that zero padding is
paper. :func:`augment_input` converts a model input (``to_input``'s ``(pixel / 255 - mean) /
std``) to ink space and back around :func:`augment`.

Each augmentation comes twice: a deterministic function taking one strength per image (what
the robustness test sets use, ``lenet5.evaluation.robustness``), and a random draw of those
strengths from a ``torch.Generator`` within the ranges of an :class:`Augment` config:

- **geometry**: rotation, scaling, squeezing, horizontal shear (slant) and translation, as
  in the paper's distortions (LeCun et al. 1998, ``data/distort.py``) with rotation added,
  and an **elastic** distortion, a smooth random displacement field (Simard, Steinkraus &
  Platt, "Best practices for convolutional neural networks applied to visual document
  analysis", ICDAR 2003). Both go into one sampling grid and one ``grid_sample``.
- **stroke thickness**: grey-level dilation (thicker pen) or erosion (thinner pen) by a 3x3
  window, a max pooling, blended with the image for fractions of a pixel.
- **blur**: a blend towards a Gaussian blur (sigma 1 px), one convolution for the batch.
- **low resolution**: the digit resampled through a coarser grid (anti-aliased down,
  bilinear up), as a digit drawn small or scanned coarsely and scaled up.
- **contrast**: the ink made fainter (a pale pen, a faint scan).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .distort import affine_matrices

MNIST_BOX = 20  # MNIST digits fit a 20x20 box: the "resolution" of a digit is its box side


# --- deterministic, one strength per image --------------------------------------------------

def rotation_matrices(degrees: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) forward maps turning each image by ``degrees`` (clockwise on screen: x to
    the right, y down), about the centre."""
    t = torch.deg2rad(degrees)
    c, s, zero = torch.cos(t), torch.sin(t), torch.zeros_like(t)
    return torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1)], 1)


def compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """The forward map ``outer(inner(p))`` of two (B, 2, 3) forward maps."""
    a = outer[:, :, :2] @ inner[:, :, :2]
    t = outer[:, :, :2] @ inner[:, :, 2:] + outer[:, :, 2:]
    return torch.cat([a, t], 2)


def _cubic_weights(points: int, size: int) -> torch.Tensor:
    """(size, points): bicubic interpolation from ``points`` control points spanning the
    image to ``size`` pixels (the weights ``F.interpolate`` would use, as one matrix)."""
    eye = torch.eye(points).view(points, 1, points, 1)
    return F.interpolate(eye, size=(size, 1), mode="bicubic", align_corners=True)[:, 0, :, 0].T


def smooth_field(batch: int, size: tuple[int, int], grid: int, generator: torch.Generator
                 ) -> torch.Tensor:
    """(B, 2, H, W) smooth random displacements with unit standard deviation at the
    ``grid`` x ``grid`` control points, interpolated bicubically between them (two small
    matrix products: several times faster than ``F.interpolate`` on a CPU)."""
    coarse = torch.randn(batch, 2, grid, grid, generator=generator)
    return _cubic_weights(grid, size[0]) @ coarse @ _cubic_weights(grid, size[1]).T


def warp(u: torch.Tensor, forward: torch.Tensor, displacement: torch.Tensor | None = None
         ) -> torch.Tensor:
    """Move every image of ``u`` by its forward map (B, 2, 3) in pixel units about the centre,
    then by ``displacement`` (B, 2, H, W): where each output pixel reads, in input pixels
    (x, y). Bilinear; what comes from outside the image is background (0)."""
    b, _, h, w = u.shape
    dtype, device = u.dtype, u.device
    a_inv = torch.linalg.inv(forward[:, :, :2].to(torch.float32))
    t_inv = -a_inv @ forward[:, :, 2:].to(torch.float32)
    # where each output pixel centre reads, in grid_sample's [-1, 1] (align_corners=False),
    # as (B, 2, H, W) planes: elementwise products, several times faster than affine_grid's
    # batched matrix product with an inner size of 3
    half = torch.tensor([w / 2, h / 2]).view(1, 2, 1, 1)
    xs = (torch.arange(w, dtype=torch.float32) + 0.5 - w / 2).view(1, 1, 1, w)
    ys = (torch.arange(h, dtype=torch.float32) + 0.5 - h / 2).view(1, 1, h, 1)
    source = a_inv[:, :, 0, None, None] * xs + a_inv[:, :, 1, None, None] * ys
    source = source + t_inv[:, :, :, None]
    if displacement is not None:
        source = source + displacement.to(torch.float32)
    grid = (source / half).permute(0, 2, 3, 1)
    return F.grid_sample(u, grid.to(device, dtype), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def _per_image(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return v.to(u.device, u.dtype).view(-1, *[1] * (u.dim() - 1))


def _max3x3(u: torch.Tensor) -> torch.Tensor:
    """Maximum over each pixel's 3x3 window (outside the image: -inf), as the maximum of
    shifted views, rows then columns: ~20x faster than ``F.max_pool2d(u, 3, 1, 1)``,
    whose CPU kernel is slow for stride 1."""
    p = F.pad(u, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(p[..., :-2, :], p[..., 1:-1, :]), p[..., 2:, :])
    return torch.maximum(torch.maximum(rows[..., :-2], rows[..., 1:-1]), rows[..., 2:])


def _dilate(u: torch.Tensor) -> torch.Tensor:
    return _max3x3(u)


def _erode(u: torch.Tensor) -> torch.Tensor:
    return -_max3x3(-u)


def _steps(u: torch.Tensor, amount: torch.Tensor, op, most: float) -> torch.Tensor:
    """``amount`` (B,) >= 0 applications of ``op``, fractions blended linearly."""
    out, current = u, u
    for k in range(math.ceil(most)):
        step = op(current)
        frac = _per_image((amount - k).clamp(0, 1), u)
        out = out + frac * (step - current)
        current = step
    return out


def thickness(u: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Strokes thicker (``amount`` > 0: that many 3x3 grey-level dilations, about one pixel
    added on each side per step) or thinner (< 0: erosions), per image; fractions blend."""
    amount = amount.to(torch.float32)
    out = u
    if (amount > 0).any():
        out = _steps(out, amount.clamp(min=0), _dilate, float(amount.max()))
    if (amount < 0).any():
        out = _steps(out, (-amount).clamp(min=0), _erode, float(-amount.min()))
    return out


def _gaussian_taps(sigma: float) -> list[float]:
    r = math.ceil(2 * sigma)
    g = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
    return [v / sum(g) for v in g]


def _filter_1d(u: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """``u`` filtered along ``dim`` (-1 or -2) by ``taps``, zero outside the image, as a sum
    of shifted views (a 1-channel convolution costs ~10x more in oneDNN on a CPU)."""
    r = len(taps) // 2
    p = F.pad(u, (r, r, 0, 0) if dim == -1 else (0, 0, r, r))
    n = u.shape[dim]
    out = p.narrow(dim, 0, n) * taps[0]
    for i, t in enumerate(taps[1:], 1):
        out = out.add_(p.narrow(dim, i, n), alpha=t)
    return out


def blur(u: torch.Tensor, amount: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """A blend towards a Gaussian blur of ``sigma`` px: ``amount`` (B,) 0 (sharp) to 1."""
    taps = _gaussian_taps(sigma)
    blurred = _filter_1d(_filter_1d(u, taps, -1), taps, -2)
    return u + _per_image(amount, u) * (blurred - u)


def low_resolution(u: torch.Tensor, digit_size: torch.Tensor) -> torch.Tensor:
    """Each image resampled through a grid on which its digit (``MNIST_BOX`` px here) is
    ``digit_size`` px: down with an anti-aliased (triangle) filter, as image libraries
    shrink images, then bilinear up. Sizes of ``MNIST_BOX`` or more leave
    the image as it is."""
    h, w = u.shape[-2:]
    out = u.clone()
    digit_size = digit_size.round().long()
    for size in digit_size.unique().tolist():
        if size >= MNIST_BOX:
            continue
        idx = (digit_size == size).nonzero().flatten().to(u.device)
        small = (max(1, round(h * size / MNIST_BOX)), max(1, round(w * size / MNIST_BOX)))
        coarse = F.interpolate(u.index_select(0, idx), size=small, mode="bilinear",
                               antialias=True, align_corners=False)
        out[idx] = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return out


def contrast(u: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Ink times ``factor`` (B,): 1 keeps the image, 0.3 is a faint pen."""
    return u * _per_image(factor, u)


# --- random draws within ranges ---------------------------------------------------------------

@dataclass(frozen=True)
class Augment:
    """Ranges of the random augmentations; every strength is drawn per image, uniformly.

    A range of 0 switches that augmentation off. Defaults: the settings shipped with the
    ``reader`` model, chosen on a validation split (docs/reader.md).
    """

    rotate: float = 10.0  # degrees, +-
    scale: float = 0.10  # relative size change, +-
    squeeze: float = 0.10  # width * (1 + q), height / (1 + q), q in +-
    shear: float = 0.20  # slant: x' = x + shear * y, +-
    translate: float = 1.5  # pixels, +-, each axis
    elastic: float = 0.7  # pixels: standard deviation of the smooth displacement ...
    elastic_grid: int = 5  # ... given on this many control points per side
    thicker: float = 1.0  # up to this many 3x3 dilations ...
    thinner: float = 0.5  # ... or erosions (each image one or the other)
    blur: float = 0.0  # blend towards a 1-px Gaussian blur, up to this much
    low_res: float = 0.0  # share of images resampled through a coarser grid ...
    low_res_min: int = 8  # ... on which the digit is this many pixels (up to 19)
    contrast: float = 0.0  # ink times 1 - U(0, contrast)
    clean: float = 0.25  # share of images left as they are


def _uniform(n: int, generator: torch.Generator, low: float, high: float) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (high - low) + low


def random_geometry(u: torch.Tensor, generator: torch.Generator, cfg: Augment) -> torch.Tensor:
    """Random rotation, scale, squeeze, shear, translation and elastic displacement: one
    ``grid_sample``."""
    n = len(u)

    def pm(r: float) -> torch.Tensor:
        return _uniform(n, generator, -r, r)

    forward = compose(rotation_matrices(pm(cfg.rotate)),
                      affine_matrices(pm(cfg.translate), pm(cfg.translate), 1 + pm(cfg.scale),
                                      pm(cfg.squeeze), pm(cfg.shear)))
    field = None
    if cfg.elastic > 0:
        field = smooth_field(n, u.shape[-2:], cfg.elastic_grid, generator) * cfg.elastic
    return warp(u, forward, field)


def augment(u: torch.Tensor, generator: torch.Generator, cfg: Augment = Augment()) -> torch.Tensor:
    """A randomly augmented copy of the ink-space batch ``u`` (B, C, H, W); the CPU
    ``generator`` makes it repeat."""
    n = len(u)
    out = u
    if cfg.rotate or cfg.scale or cfg.squeeze or cfg.shear or cfg.translate or cfg.elastic:
        out = random_geometry(out, generator, cfg)
    if cfg.thicker or cfg.thinner:
        out = thickness(out, _uniform(n, generator, -cfg.thinner, cfg.thicker))
    if cfg.low_res > 0:
        size = torch.randint(cfg.low_res_min, MNIST_BOX, (n,), generator=generator)
        chosen = torch.rand(n, generator=generator) < cfg.low_res
        out = low_resolution(out, torch.where(chosen, size, MNIST_BOX))
    if cfg.blur > 0:
        out = blur(out, _uniform(n, generator, 0.0, cfg.blur))
    if cfg.contrast > 0:
        out = contrast(out, 1 - _uniform(n, generator, 0.0, cfg.contrast))
    if cfg.clean > 0:
        keep = torch.rand(n, generator=generator) < cfg.clean
        out = torch.where(_per_image(keep, u).bool(), u, out)
    return out


def augment_input(x: torch.Tensor, generator: torch.Generator, cfg: Augment = Augment(),
                  mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """``augment`` for a model input ``x = (pixel / 255 - mean) / std`` (``to_input``
    with a model's ``Preprocess``): to ink space, augmented, back."""
    u = x * std + mean
    return (augment(u, generator, cfg) - mean) / std
