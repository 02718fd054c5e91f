import torch

from lenet5.data.distort import Distortion, affine_matrices, apply_affine, distort


def one_pixel(r, c, size=32):
    x = torch.zeros(1, 1, size, size)
    x[0, 0, r, c] = 1.0
    return x


def where(x):
    return divmod(int(x.flatten().argmax()), x.shape[-1])


def params(**kw):
    base = dict(tx=0.0, ty=0.0, scale=1.0, squeeze=0.0, shear=0.0)
    base.update(kw)
    return affine_matrices(*(torch.tensor([v]) for v in base.values()))


def test_identity_keeps_the_image():
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(apply_affine(x, params().expand(2, 2, 3)), x)


def test_translation_moves_a_pixel():
    out = apply_affine(one_pixel(10, 12), params(tx=3.0, ty=-2.0))
    assert where(out) == (8, 15)
    assert out.max().item() == 1.0  # whole-pixel shift: exact


def test_scaling_moves_a_pixel_away_from_the_centre():
    # pixel centre (x, y) = (c + 0.5 - 16, r + 0.5 - 16); scale 2 doubles it
    out = apply_affine(one_pixel(19, 19), params(scale=2.0))  # (3.5, 3.5) -> (7, 7)
    r, c = where(out)
    assert (r, c) in {(22, 22), (22, 23), (23, 22), (23, 23)}


def test_horizontal_shear_moves_rows_sideways():
    # x' = x + 0.5 y: a pixel 8 rows below the centre moves 4 to the right
    out = apply_affine(one_pixel(23, 10), params(shear=0.5))  # y = 7.5, x = -5.5 -> -1.75
    r, c = where(out)
    assert r == 23 and c in (13, 14)


def test_random_distortion_is_seeded_and_per_image():
    x = torch.rand(4, 1, 32, 32)
    a = distort(x, torch.Generator().manual_seed(1))
    b = distort(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.allclose(a[0] - x[0], a[1] - x[1])


def test_a_share_of_the_batch_is_left_undistorted():
    x = torch.rand(400, 1, 32, 32)
    out = distort(x, torch.Generator().manual_seed(0), Distortion(fraction=0.75))
    unchanged = (out == x).flatten(1).all(1)
    assert 60 <= int(unchanged.sum()) <= 140  # about a quarter, drawn per image
    assert not (out[~unchanged] - x[~unchanged]).flatten(1).abs().sum(1).eq(0).any()
    assert torch.equal(distort(x, torch.Generator().manual_seed(0), Distortion(fraction=0.0)), x)
