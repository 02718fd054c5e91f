import pytest
import torch

import lenet5
from lenet5.errors import Lenet5Error
from lenet5.models import get_model_entry
from lenet5.summary import summarize

LENET_FAMILY = ["classic", "modern", "classic-c5conv", "modern-c5conv", "sigmoid", "keras"]

# SPEC.md: C1 156, C3 2,416, C5 48,120, F6 10,164, output 850.
LENET_LAYER_PARAMS = [156, 2416, 48120, 10164, 850]


def n_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_registry_lists_every_model():
    assert set(LENET_FAMILY + ["alexnet"]) <= set(lenet5.list_models())
    assert lenet5.list_models() == sorted(lenet5.list_models())


@pytest.mark.parametrize("name", LENET_FAMILY)
def test_lenet_family_counts_and_shapes(name):
    model = lenet5.create_model(name)
    assert n_params(model) == 61_706
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert [sum(p.numel() for p in m.parameters()) for m in layers] == LENET_LAYER_PARAMS
    assert model(torch.zeros(3, 1, 32, 32)).shape == (3, 10)


@pytest.mark.parametrize("name", LENET_FAMILY)
def test_num_classes_and_in_channels(name):
    model = lenet5.create_model(name, num_classes=7, in_channels=3)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_classic_summary_matches_spec():
    s = summarize("classic")
    convs_and_pools = [(r.kind, r.output_shape, r.params) for r in s.rows
                       if r.kind in ("Conv2d", "AvgPool2d", "Linear")]
    assert convs_and_pools == [
        ("Conv2d", (6, 28, 28), 156),
        ("AvgPool2d", (6, 14, 14), 0),
        ("Conv2d", (16, 10, 10), 2416),
        ("AvgPool2d", (16, 5, 5), 0),
        ("Linear", (120,), 48120),
        ("Linear", (84,), 10164),
        ("Linear", (10,), 850),
    ]
    assert s.total_params == 61_706
    assert round(s.size_mb, 2) == 0.24
    # MACs per image, a bias counted as one: 156*784 + 2416*100 + 48120 + 10164 + 850
    assert s.total_macs == 122_304 + 241_600 + 48_120 + 10_164 + 850


def test_alexnet_matches_spec():
    s = summarize("alexnet")
    assert s.total_params == 61_100_840
    by_kind = [(r.output_shape, r.params) for r in s.rows if r.kind in ("Conv2d", "Linear")]
    assert by_kind == [
        ((64, 55, 55), 23_296), ((192, 27, 27), 307_392), ((384, 13, 13), 663_936),
        ((256, 13, 13), 884_992), ((256, 13, 13), 590_080),
        ((4096,), 37_752_832), ((4096,), 16_781_312), ((1000,), 4_097_000),
    ]
    pools = [r.output_shape for r in s.rows if "Pool" in r.kind]
    assert pools == [(64, 27, 27), (192, 13, 13), (256, 6, 6), (256, 6, 6)]


def test_alexnet_for_digits_is_a_parameter():
    model = lenet5.create_model("alexnet", num_classes=10, in_channels=1)
    assert model(torch.zeros(1, 1, 224, 224)).shape == (1, 10)
    assert get_model_entry("alexnet").input_size == (3, 224, 224)


def test_keras_has_dropout_and_classic_none():
    keras = lenet5.create_model("keras")
    drops = [m.p for m in keras.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.2, 0.2]
    assert not any(isinstance(m, torch.nn.Dropout) for m in lenet5.create_model("classic").modules())


def test_activations_and_pooling_differ_as_specified():
    kinds = {name: {type(m).__name__ for m in lenet5.create_model(name).modules()}
             for name in LENET_FAMILY}
    assert {"Tanh", "AvgPool2d"} <= kinds["classic"]
    assert {"ReLU", "MaxPool2d"} <= kinds["modern"]
    assert {"Sigmoid", "AvgPool2d"} <= kinds["sigmoid"]
    assert "Tanh" not in kinds["modern"]


def test_unknown_model_lists_known_ones():
    with pytest.raises(Lenet5Error, match="known models: .*classic"):
        lenet5.create_model("lenet6")


def test_bad_model_argument_is_a_clear_error():
    with pytest.raises(Lenet5Error, match="bad arguments for model 'classic'"):
        lenet5.create_model("classic", width=3)
