import dataclasses

import pytest
import torch
import torch.nn.functional as F

from lenet5.data import augment as aug
from lenet5.data.augment import Augment, augment, augment_input
from lenet5.data.distort import affine_matrices, apply_affine
from tests.data.test_distort import one_pixel, where

OFF = Augment(rotate=0, scale=0, squeeze=0, shear=0, translate=0, elastic=0, thicker=0, thinner=0)


def bar(size=32, width=2):
    """A vertical bar in the middle of the image, ink 1 on 0."""
    x = torch.zeros(1, 1, size, size)
    x[..., 8:24, size // 2 - width // 2:size // 2 - width // 2 + width] = 1.0
    return x


def test_everything_off_leaves_the_batch_as_it_is():
    x = torch.rand(5, 1, 32, 32)
    assert torch.equal(augment(x, torch.Generator().manual_seed(0), OFF), x)


def test_a_quarter_turn_moves_a_pixel_clockwise_on_screen():
    # pixel centre (x, y) = (c + 0.5 - 16, r + 0.5 - 16) = (5.5, -7.5) (right, above)
    # turned 90 degrees clockwise (y down): (7.5, 5.5) -> row 21, column 23
    out = aug.warp(one_pixel(8, 21), aug.rotation_matrices(torch.tensor([90.0])))
    assert where(out) == (21, 23)
    assert out.max().item() == pytest.approx(1.0, abs=1e-5)


def test_warp_agrees_with_the_paper_distortions_inside_the_image():
    n = 4
    forward = affine_matrices(torch.rand(n) * 4 - 2, torch.rand(n) * 4 - 2, 0.9 + torch.rand(n) * 0.2,
                              torch.rand(n) * 0.2 - 0.1, torch.rand(n) * 0.6 - 0.3)
    x = F.pad(torch.rand(n, 1, 24, 24), (4, 4, 4, 4))  # background at the borders
    # distort.py repeats the border, here it is background: the same where both read inside
    torch.testing.assert_close(aug.warp(x, forward)[..., 6:26, 6:26],
                               apply_affine(x, forward)[..., 6:26, 6:26])


def test_compose_applies_the_inner_map_first():
    shift = affine_matrices(torch.tensor([3.0]), torch.tensor([0.0]), torch.tensor([1.0]),
                            torch.tensor([0.0]), torch.tensor([0.0]))
    turn = aug.rotation_matrices(torch.tensor([90.0]))
    # shift right by 3 then turn: (0.5, 0.5) -> (3.5, 0.5) -> (-0.5, 3.5)
    out = aug.warp(one_pixel(16, 16), aug.compose(turn, shift))
    assert where(out) == (19, 15)


def test_the_smooth_field_is_bicubic_interpolation_of_its_control_points():
    field = aug.smooth_field(3, (32, 28), 5, torch.Generator().manual_seed(4))
    coarse = torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(4))
    expected = F.interpolate(coarse, size=(32, 28), mode="bicubic", align_corners=True)
    torch.testing.assert_close(field, expected)


def test_a_displacement_field_moves_the_reading_position():
    field = torch.zeros(1, 2, 32, 32)
    field[:, 0] = 2.0  # every output pixel reads 2 px to its right: the image moves left
    out = aug.warp(one_pixel(10, 12), aug.rotation_matrices(torch.zeros(1)), field)
    assert where(out) == (10, 10)


def test_thickness_one_step_is_a_3x3_dilation_and_fractions_blend():
    x = torch.rand(3, 1, 32, 32)
    torch.testing.assert_close(aug.thickness(x, torch.ones(3)), F.max_pool2d(x, 3, 1, 1))
    torch.testing.assert_close(aug.thickness(x, -torch.ones(3)), -F.max_pool2d(-x, 3, 1, 1))
    half = aug.thickness(x, torch.full((3,), 0.5))
    torch.testing.assert_close(half, (x + F.max_pool2d(x, 3, 1, 1)) / 2)
    two = aug.thickness(x, torch.full((3,), 2.0))
    torch.testing.assert_close(two, F.max_pool2d(x, 5, 1, 2))


def test_thicker_and_thinner_strokes_per_image():
    x = bar(width=4).expand(3, 1, 32, 32)
    out = aug.thickness(x, torch.tensor([1.0, 0.0, -1.0]))
    widths = (out[:, 0, 16] > 0.5).sum(1).tolist()
    assert widths == [6, 4, 2]


def test_blur_keeps_the_ink_and_spreads_it():
    x = bar()
    out = aug.blur(x, torch.ones(1))
    assert out.sum().item() == pytest.approx(x.sum().item(), rel=1e-5)
    assert out.max() < 1.0 and (out > 0).sum() > (x > 0).sum()
    assert torch.equal(aug.blur(x, torch.zeros(1)), x)


def test_low_resolution_loses_detail_but_keeps_the_ink():
    x = torch.zeros(2, 1, 32, 32)
    x[..., 8:24, 8:24:2] = 1.0  # stripes one pixel wide
    out = aug.low_resolution(x, torch.tensor([8, 20]))
    assert torch.equal(out[1], x[1])  # the digit's own resolution: unchanged
    assert out[0].sum().item() == pytest.approx(x[0].sum().item(), rel=0.1)
    assert (out[0, 0, 16, 9:23].max() - out[0, 0, 16, 9:23].min()) < 0.3  # stripes gone


def test_contrast_scales_the_ink():
    x = torch.rand(2, 1, 8, 8)
    factor = torch.tensor([1.0, 0.3])
    torch.testing.assert_close(aug.contrast(x, factor), x * factor.view(2, 1, 1, 1))


def test_random_augmentation_is_seeded_and_differs_per_image():
    x = bar().expand(6, 1, 32, 32).clone()
    cfg = Augment(blur=0.5, low_res=0.5, contrast=0.5)
    a = augment(x, torch.Generator().manual_seed(1), cfg)
    b = augment(x, torch.Generator().manual_seed(1), cfg)
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.allclose(a[0], a[1])
    assert a.min() >= 0 and a.max() <= 1 + 1e-5


def test_the_clean_share_is_left_untouched():
    x = torch.rand(400, 1, 32, 32)
    out = augment(x, torch.Generator().manual_seed(0), dataclasses.replace(Augment(), clean=0.25))
    unchanged = (out == x).flatten(1).all(1)
    assert 60 <= int(unchanged.sum()) <= 140


def test_augment_input_keeps_the_background_of_normalized_input():
    mean, std = 0.1307, 0.3081
    x = (F.pad(bar(28), (2, 2, 2, 2)) - mean) / std
    out = augment_input(x.expand(8, 1, 32, 32), torch.Generator().manual_seed(0), Augment(),
                        mean, std)
    background = -mean / std
    assert out[:, :, 0, :].sub(background).abs().max() < 1e-5  # borders stay paper
    assert out.min() >= background - 1e-5
    torch.testing.assert_close(augment_input(x, torch.Generator(), OFF, mean, std), x)


def test_channels_last_batches_work():
    x = torch.rand(4, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    out = augment(x, torch.Generator().manual_seed(0), Augment(blur=1, low_res=1, contrast=0.5))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_the_writing_hook_is_the_readers_augmentation_by_name(mnist):
    from lenet5.errors import Lenet5Error
    from lenet5.training import TrainConfig, train
    from lenet5.training.augment import build_augmentations, parse_augment

    assert parse_augment("writing:rotate=15,clean=0") == ("writing", {"rotate": 15, "clean": 0})
    with pytest.raises(Lenet5Error, match="writing"):
        build_augmentations({"writing": {"spin": 3}}, 0)
    with pytest.raises(Lenet5Error, match="clean"):
        build_augmentations({"writing": {"clean": 2}}, 0)
    losses = {}
    for name, options in {"plain": {}, "writing": {"writing": {"clean": 0}}}.items():
        cfg = TrainConfig.for_model("reader", epochs=1, batch_size=50, augment=options,
                                    progress=False)
        losses[name] = train(cfg, mnist.head(100), log=lambda s: None).history[0]["train"]["loss"]
    assert losses["plain"] != losses["writing"]
