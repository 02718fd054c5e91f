"""Plain models and ``accelerate``: the canonical layer order everywhere, the same weights,
state-dict keys and function after the swap, checkpoints loading either way."""

from pathlib import Path

import pytest
import torch
from torch import nn

import lenet5.models
from lenet5.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lenet5.data import to_input
from lenet5.fastpath import (
    FAST_TWINS,
    Sequential,
    accelerate,
    execution_order,
    input_memory_format,
    is_accelerated,
    to_channels_last,
)
from lenet5.models import create_model, get_model_entry, list_models
from lenet5.models.features import feature_layers

LENETS = [m for m in list_models() if m != "alexnet"]
CANONICAL = ["c1", "act1", "s2", "c3", "act3", "s4"]


def _images(n=8, seed=0, side=28) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, side, side), dtype=torch.uint8, generator=g)


def test_no_model_file_imports_the_fast_path():
    folder = Path(lenet5.models.__file__).parent
    for source in folder.glob("*.py"):
        assert "fastpath" not in source.read_text(), source.name


@pytest.mark.parametrize("name", LENETS)
def test_every_lenet_lists_c1_its_activation_then_s2(name):
    model = create_model(name)
    features = [n for n, _ in model.features.named_children()]
    assert [n for n in features if not n.startswith("bn")][:3] == ["c1", "act1", "s2"]
    assert not is_accelerated(model)
    accelerate(model)  # the listed order stays; only the order they run in may change
    assert [n for n, _ in model.features.named_children()] == features
    # C1 is shown after its activation in every model, plain or accelerated
    for m in (create_model(name), model):
        layers = {f.label: f for f in feature_layers(m)}
        assert layers["C1"].output is m.features.act1, name
        assert layers["C3"].output is m.features.act3, name


def test_modern_runs_its_pooling_before_its_relu_once_accelerated():
    model = accelerate(create_model("modern"))
    assert type(model.features) is Sequential
    names = [n for n, _ in model.features.named_children()]
    assert names == CANONICAL
    assert [names[i] for i in model.features.execution_order] == ["c1", "s2", "act1", "c3", "s4", "act3"]
    assert "runs c1, s2, act1" in repr(model)
    classic = accelerate(create_model("classic"))  # tanh and average pooling: nothing to reorder
    assert type(classic.features) is nn.Sequential and type(classic.classifier) is nn.Sequential


@pytest.mark.parametrize("act,reordered", [(nn.ReLU(), True), (nn.ReLU6(), True), (nn.Hardtanh(), True),
                                           (nn.LeakyReLU(0.1), True), (nn.LeakyReLU(-0.5), False),
                                           (nn.Tanh(), False), (nn.Sigmoid(), False), (nn.GELU(), False)])
def test_only_exact_non_decreasing_activations_swap_with_max_pooling(act, reordered):
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), act, nn.MaxPool2d(2))
    assert execution_order(seq) == ((0, 2, 1) if reordered else (0, 1, 2))
    assert execution_order(nn.Sequential(nn.Conv2d(1, 2, 3), act, nn.AvgPool2d(2))) == (0, 1, 2)


@pytest.mark.parametrize("name", list_models())
def test_accelerate_keeps_the_weights_and_state_dict_keys(name):
    model = create_model(name, num_classes=10, in_channels=1)
    params = dict(model.named_parameters())
    keys = list(model.state_dict())
    assert accelerate(model) is model  # in place
    assert list(model.state_dict()) == keys
    assert all(p is params[n] for n, p in model.named_parameters())
    assert is_accelerated(model)
    kinds = {type(m) for m in model.modules()}
    assert not kinds & set(FAST_TWINS)  # every plain layer with a twin was swapped
    assert accelerate(model) is model and list(model.state_dict()) == keys  # idempotent


@pytest.mark.parametrize("name", LENETS)
def test_evaluation_scores_are_the_plain_models_bit_for_bit(name):
    """What predict, serve and plot use (the plain model, channels_last) gives exactly what
    eval and training's evaluation (the accelerated model) give."""
    torch.manual_seed(0)
    plain = to_channels_last(create_model(name)).eval()
    fast = accelerate(create_model(name)).eval()
    fast.load_state_dict(plain.state_dict())
    entry = get_model_entry(name)
    side = entry.input_size[1] - 2 * entry.preprocess.pad  # 28 for digits, 32 for strips
    x = to_input(_images(64, side=side), entry.preprocess, memory_format=input_memory_format(fast))
    with torch.inference_mode():
        assert torch.equal(plain(x), fast(x))
    with torch.no_grad():
        assert torch.equal(plain(x), fast(x))


@pytest.mark.parametrize("name", ["modern", "modern-c5conv", "classic", "lenet5-1998"])
def test_a_training_step_gives_the_plain_models_output_and_gradients(name, torch_api):
    """Train mode, channels_last: the fused C1 + S2, the few-channel C3, the pooling and the
    flatten take their own routes; every gradient is the plain model's to rounding."""
    torch.manual_seed(0)
    plain = to_channels_last(create_model(name)).train()
    fast = accelerate(create_model(name)).train()
    fast.load_state_dict(plain.state_dict())
    x = to_input(_images(32), get_model_entry(name).preprocess, memory_format=torch.channels_last)
    labels = torch.arange(32) % 10
    outs = []
    for model in (plain, fast):
        out = model(x)
        torch.nn.functional.cross_entropy(out, labels).backward()
        outs.append(out.detach())
    assert torch.allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for (n, a), b in zip(plain.named_parameters(), fast.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6), n


def test_checkpoints_load_either_way(tmp_path):
    torch.manual_seed(0)
    fast = accelerate(create_model("modern"))
    path = save_checkpoint(tmp_path / "fast.safetensors", Checkpoint(
        "modern", {"num_classes": 10, "in_channels": 1}, get_model_entry("modern").preprocess,
        fast.state_dict()))
    plain = load_checkpoint(path).build_model()  # the plain model, as predict and serve use it
    assert not is_accelerated(plain)
    for k, v in fast.state_dict().items():
        assert torch.equal(plain.state_dict()[k], v)
    again = accelerate(create_model("modern"))  # and a plain model's weights into a fast one
    again.load_state_dict(plain.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), plain.parameters()))
    assert input_memory_format(again) == torch.channels_last


def test_alexnet_accelerated_gives_the_same_scores():
    torch.manual_seed(0)
    plain = to_channels_last(create_model("alexnet", num_classes=10, in_channels=1)).eval()
    fast = accelerate(create_model("alexnet", num_classes=10, in_channels=1)).eval()
    fast.load_state_dict(plain.state_dict())
    order = fast.features.execution_order  # each max pooling before the ReLU in front of it
    assert [type(list(fast.features)[i]).__name__ for i in order[:3]] == ["Conv2d", "MaxPool2d", "ReLU"]
    x = torch.randn(2, 1, 96, 96).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.equal(plain(x), fast(x))
