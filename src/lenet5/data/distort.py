"""Random planar affine distortions of whole training batches (LeCun et al. 1998, V.B).

The paper's second experiment trains on images distorted by random combinations of
horizontal and vertical translation, scaling, squeezing (horizontal compression with
vertical elongation, or the reverse) and horizontal shearing. Here each image of a batch
gets its own random transform, and the batch is resampled in one ``affine_grid`` +
``grid_sample`` call: no per-image Python. As in the paper, where the 540,000 distorted
images were added to the 60,000 originals, a share of each batch (10% by default) is left
as it is.

Works on model input (B, C, H, W) after ``to_input``: pixels the transform brings in from
outside the image repeat the border (``padding_mode="border"``), which is background for
MNIST padded to 32x32, so the background value of any preprocessing is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Distortion:
    """Ranges of the random transform; each parameter is drawn uniformly in +-range."""

    translate: float = 2.0  # pixels, horizontally and vertically, independently
    scale: float = 0.10  # relative change of size, both axes together
    squeeze: float = 0.10  # relative: width * (1 + q), height / (1 + q)
    shear: float = 0.30  # horizontal shear: x' = x + shear * y (y measured from the centre)
    fraction: float = 0.9  # share of the images distorted: the paper's 540,000 of 600,000


def affine_matrices(tx: torch.Tensor, ty: torch.Tensor, scale: torch.Tensor,
                    squeeze: torch.Tensor, shear: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) forward maps in pixel units about the image centre, one per image:

        [x']   [sx  sh*sy] [x]   [tx]        sx = scale * (1 + squeeze)
        [y'] = [0     sy ] [y] + [ty]        sy = scale / (1 + squeeze)

    x to the right, y down; a pixel at (x, y) moves to (x', y')."""
    sx, sy = scale * (1 + squeeze), scale / (1 + squeeze)
    zero = torch.zeros_like(sx)
    return torch.stack([torch.stack([sx, shear * sy, tx], 1),
                        torch.stack([zero, sy, ty], 1)], 1)


def apply_affine(x: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Move every image of ``x`` (B, C, H, W) by its forward map (B, 2, 3), pixel units.

    ``grid_sample`` asks, for each output pixel, where to read in the input: the inverse
    map, converted from pixels about the centre to its [-1, 1] coordinates."""
    b, _, h, w = x.shape
    a, t = forward[:, :, :2], forward[:, :, 2:]
    a_inv = torch.linalg.inv(a)
    t_inv = -a_inv @ t
    # normalized u = 2x/W (align_corners=False): conjugate by diag(W/2, H/2)
    to_px = torch.tensor([w / 2, h / 2], dtype=x.dtype, device=x.device)
    theta = torch.cat([a_inv * to_px[None, None, :] / to_px[None, :, None],
                       t_inv / to_px[None, :, None]], 2)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_affine(batch_size: int, generator: torch.Generator,
                  d: Distortion = Distortion()) -> torch.Tensor:
    """(B, 2, 3) random forward maps with the ranges of ``d``."""
    def u(r: float) -> torch.Tensor:
        return (torch.rand(batch_size, generator=generator) * 2 - 1) * r

    return affine_matrices(u(d.translate), u(d.translate), 1 + u(d.scale), u(d.squeeze),
                           u(d.shear))


def distort(x: torch.Tensor, generator: torch.Generator,
            d: Distortion = Distortion()) -> torch.Tensor:
    """A copy of the batch ``x`` with ``d.fraction`` of its images (drawn at random)
    randomly distorted, the others unchanged; ``generator`` (CPU) makes it repeat."""
    out = apply_affine(x, random_affine(len(x), generator, d).to(x.device, x.dtype))
    if d.fraction >= 1:
        return out
    chosen = torch.rand(len(x), generator=generator) < d.fraction
    return torch.where(chosen.to(x.device).view(-1, *[1] * (x.dim() - 1)), out, x)
