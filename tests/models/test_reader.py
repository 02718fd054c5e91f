from pathlib import Path

import pytest
import torch

import lenet5
from lenet5.errors import Lenet5Error
from lenet5.training import TrainConfig
from lenet5.training.recipes import recipe_for

LENET5_BUDGET = 61_706


def n_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_reader_fits_lenet5s_parameter_budget():
    model = lenet5.create_model("reader")
    # C1 16x1x5x5 + BN 32, C3 32x16x5x5 + BN 64, C5 56x32x5x5 + BN 112, output 56x10 + 10
    assert n_params(model) == 400 + 32 + 12_800 + 64 + 44_800 + 112 + 570 == 58_778
    assert n_params(model) <= LENET5_BUDGET


def test_reader_has_lenet5s_layout():
    model = lenet5.create_model("reader")
    names = [name for name, _ in model.features.named_children()]
    assert names == ["c1", "bn1", "act1", "s2", "c3", "bn3", "act3", "s4", "c5", "bn5", "act5"]
    x = torch.zeros(3, 1, 32, 32)
    shapes = []
    for layer in model.features:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes[0] == (16, 28, 28) and shapes[3] == (16, 14, 14)
    assert shapes[4] == (32, 10, 10) and shapes[7] == (32, 5, 5) and shapes[-1] == (56, 1, 1)
    assert model(torch.zeros(3, 1, 32, 32)).shape == (3, 10)


def test_reader_options_change_the_network():
    assert n_params(lenet5.create_model("reader", norm=False)) == 58_778 - 208 + 104
    plain = lenet5.create_model("reader", c1=6, c3=16, c5=120, f6=84, norm=False)
    assert n_params(plain) == 156 + 2_416 + 48_120 + 10_164 + 850  # LeNet-5's own shape
    seven = lenet5.create_model("reader", num_classes=7, in_channels=3)
    assert seven(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(Lenet5Error):
        lenet5.create_model("reader", depth=3)


def test_batch_norm_uses_batch_statistics_in_training_only():
    torch.manual_seed(0)
    model = lenet5.create_model("reader")
    x = torch.randn(8, 1, 32, 32)
    model.train()
    a = model(x)
    model.eval()
    b = model(x)
    assert not torch.allclose(a, b)
    assert torch.equal(model(x[:1]), model(x)[:1]) or torch.allclose(model(x[:1]), model(x)[:1], atol=1e-5)


def test_plain_train_takes_the_readers_recipe_with_its_augmentation():
    recipe = recipe_for("reader")
    assert recipe.epochs <= 20 and recipe.ema > 0 and recipe.loss_args.get("label_smoothing", 0) > 0
    cfg = TrainConfig.for_model("reader")
    assert cfg.augment == recipe.augment and "writing" in cfg.augment
    assert TrainConfig.for_model("reader", augment={}).augment == {}  # --augment replaces it
    for other in ("classic", "modern", "lenet5-1998"):  # their recipes name none
        assert TrainConfig.for_model(other).augment == {}


def test_the_model_file_uses_plain_layers():
    source = (Path(lenet5.__file__).parent / "models" / "reader.py").read_text()
    assert "fastpath" not in source
