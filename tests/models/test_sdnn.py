"""The string readers' models: shapes, parameter counts, the sweep's geometry."""

from __future__ import annotations

import pytest
import torch

from lenet5.models import create_model, get_model_entry, list_models


@pytest.mark.parametrize("name, args", [("lenet5-sdnn", {}), ("lenet5-ctc", {"norm": False})])
def test_registered_as_readers_within_lenet5s_budget(name, args):
    assert name in list_models() and get_model_entry(name).task == "read"
    model = create_model(name, **args)
    layers = [*model.features.named_children(), *model.classifier.named_children()]
    counts = {n: sum(p.numel() for p in m.parameters()) for n, m in layers}
    counts = {n: c for n, c in counts.items() if c}
    assert counts == {"c1": 156, "c3": 1516, "c5": 48120, "f6": 10164, "output": 935}
    assert sum(p.numel() for p in model.parameters()) == 60891 <= 61706


@pytest.mark.parametrize("name, stride", [("lenet5-sdnn", 4), ("lenet5-ctc", 2)])
@pytest.mark.parametrize("width", [32, 33, 47, 100, 131])
def test_one_output_per_stride_pixels(name, stride, width):
    model = create_model(name).eval()
    out = model(torch.zeros(2, 1, 32, width))
    assert out.shape == (2, 11, (width - 32) // stride + 1) == (2, 11, model.frames(width))
    assert model.stride == stride and model.blank == 10


def test_each_sdnn_output_is_lenet5_on_its_window():
    torch.manual_seed(0)
    model = create_model("lenet5-sdnn").eval()
    x = torch.randn(1, 1, 32, 72)
    out = model(x)
    for t in range(out.shape[2]):
        alone = model(x[..., 4 * t:4 * t + 32])
        torch.testing.assert_close(out[..., t:t + 1], alone, rtol=1e-4, atol=1e-5)
    assert model.centre(0) == 16 and model.centre(3) == 28


def test_ctc_outputs_are_the_4_pixel_sweep_twice_interleaved():
    torch.manual_seed(1)
    ctc = create_model("lenet5-ctc", norm=False).eval()
    sdnn = create_model("lenet5-sdnn").eval()
    sdnn.load_state_dict(ctc.state_dict())  # the same layers, the same weights
    x = torch.randn(2, 1, 32, 90)
    fine = ctc(x)
    torch.testing.assert_close(fine[..., 0::2], sdnn(x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fine[..., 1::2], sdnn(x[..., 2:]), rtol=1e-4, atol=1e-5)


def test_ctc_reader_with_batch_norm_stays_within_the_budget():
    model = create_model("lenet5-ctc")
    assert sum(p.numel() for p in model.parameters()) == 60891 + 2 * (6 + 16 + 120 + 84) <= 61706
    assert model(torch.zeros(3, 1, 32, 64)).shape == (3, 11, 17)


def test_reader_ctc_is_the_readers_shape_widened():
    model = create_model("reader-ctc")
    layers = [*model.features.named_children(), *model.classifier.named_children()]
    counts = {n: sum(p.numel() for p in m.parameters()) for n, m in layers}
    counts = {n: c for n, c in counts.items() if c}
    # the reader's layout (models/reader.py): wide C1 and C3, a full C3, no F6, wider still
    # for lines; each C5 map looks at itself at the neighbouring outputs (5 taps, 2 apart)
    assert counts == {"c1": 16 * 26, "bn1": 32, "c3": 16 * 48 * 25 + 48, "bn3": 96,
                      "c5": 48 * 96 * 25 + 96, "bn5": 192, "context": 96 * 5 + 96, "bn7": 192,
                      "output": 96 * 11 + 11}
    assert sum(counts.values()) == 137115
    assert get_model_entry("reader-ctc").task == "read" and model.objective == "ctc"
    assert model.stride == 2 and model(torch.zeros(3, 1, 32, 64)).shape == (3, 11, 17)


def test_the_papers_c3_table_needs_its_maps():
    from lenet5.models.sdnn import StripConfig, StripNet

    with pytest.raises(ValueError, match="6 maps to 16"):
        StripNet(config=StripConfig(c1=12, c3=32))


def test_reader_ctc_outputs_see_16_pixels_more_of_the_line():
    """The context layer widens each output's view from 32 to 48 columns, keeping one
    output per 2 pixels: a change 24 columns from an output's window centre moves it."""
    torch.manual_seed(2)
    model = create_model("reader-ctc").eval()
    x = torch.zeros(1, 1, 32, 120)
    base = model(x)
    t = 20  # window centre: column 2 * 20 + 16 = 56
    for col, moves in ((56 + 23, True), (56 - 24, True), (56 + 25, False), (56 - 26, False)):
        y = x.clone()
        y[..., col] = 3.0
        changed = not torch.allclose(model(y)[..., t], base[..., t])
        assert changed == moves, col
