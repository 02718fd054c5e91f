"""`lenet5 summary --explain`: every number checked against one worked out by hand."""

import pytest
import torch
from torch import nn

import lenet5
from lenet5.explain import explain, explain_model, format_explanation
from lenet5.summary import summarize
from tests.conftest import run_cli


def spatial_steps(e):
    """The layers that change a C x H x W map's shape, in execution order."""
    return [s for s in e.steps if s.changes_shape and len(s.output_shape) == 3]


def test_classic_by_hand():
    e = explain("classic")
    text = {s.name: s.text for s in e.steps}
    assert text["features.c1"] == ("Conv2d 5x5, stride 1, padding 0: (32 - 5 + 2*0) / 1 + 1 = 28"
                                   " -> 6 x 28 x 28 (6 kernels)")
    assert text["features.s2"] == "AvgPool2d 2x2, stride 2: (28 - 2) / 2 + 1 = 14 -> 6 x 14 x 14"
    assert text["features.c3"].endswith("(14 - 5 + 2*0) / 1 + 1 = 10 -> 16 x 10 x 10 (16 kernels)")
    assert text["features.s4"].endswith("(10 - 2) / 2 + 1 = 5 -> 16 x 5 x 5")
    assert text["classifier.flatten"] == "Flatten: 16 x 5 x 5 = 400"
    assert text["classifier.c5"] == "Linear: 400 -> 120"
    assert text["features.act1"] == "Tanh: shape unchanged"
    # receptive field, jump, start: C1 5, S2 6 (5 + 1*1), C3 14 (6 + 4*2), S4 16 (14 + 1*2),
    # C5 32 (16 + 4*4: a Linear on the 5x5 grid is a 5x5 window), which is the whole input
    field = {s.name: (s.rf, s.jump, s.start, s.whole_input) for s in e.steps}
    assert field["features.c1"] == ((5, 5), (1, 1), (0, 0), False)
    assert field["features.s2"] == ((6, 6), (2, 2), (0, 0), False)
    assert field["features.c3"] == ((14, 14), (2, 2), (0, 0), False)
    assert field["features.s4"] == ((16, 16), (4, 4), (0, 0), False)
    assert field["classifier.c5"][0] == (32, 32) and field["classifier.c5"][3]
    assert field["classifier.output"][0] == (32, 32)
    # parameters, MACs (a conv's parameters once per output position), float32 bytes
    c1, c3 = e.step("features.c1"), e.step("features.c3")
    assert (c1.params, c1.macs, c1.act_bytes) == (156, 156 * 28 * 28, 4 * 6 * 28 * 28)
    assert (c3.params, c3.macs, c3.act_bytes) == (2416, 2416 * 10 * 10, 4 * 16 * 10 * 10)
    assert e.step("classifier.c5").macs == 48120
    assert e.total_params == e.trainable_params == 61706
    assert e.total_macs == 122304 + 241600 + 48120 + 10164 + 850
    s = summarize("classic")  # the torchinfo table agrees
    assert (e.total_params, e.total_macs) == (s.total_params, s.total_macs)
    assert not any(x.mismatch for x in e.steps)


def test_c5_as_a_convolution_sees_the_whole_input():
    c5 = explain("classic-c5conv").step("features.c5")
    assert c5.text.endswith("(5 - 5 + 2*0) / 1 + 1 = 1 -> 120 x 1 x 1 (120 kernels)")
    assert (c5.rf, c5.jump, c5.start, c5.whole_input) == ((32, 32), (4, 4), (0, 0), True)


def test_alexnet_by_hand():
    e = explain("alexnet")
    assert e.step("features.0").text == (
        "Conv2d 11x11, stride 4, padding 2: (224 - 11 + 2*2) / 4 + 1 = 55.25, not whole: "
        "floor 55 -> 64 x 55 x 55 (64 kernels)")
    assert e.step("features.2").text == "MaxPool2d 3x3, stride 2: (55 - 3) / 2 + 1 = 27 -> 64 x 27 x 27"
    assert e.step("features.12").text.endswith("(13 - 3) / 2 + 1 = 6 -> 256 x 6 x 6")
    assert e.step("avgpool").text.startswith("AdaptiveAvgPool2d to 6x6: 6 / 6 = 1")
    assert e.step("classifier.0").text == "Flatten: 256 x 6 x 6 = 9,216"
    assert [s.output_shape for s in spatial_steps(e)] == [
        (64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13), (384, 13, 13),
        (256, 13, 13), (256, 6, 6)]  # conv5 (256 -> 256, 13x13) keeps the shape
    # rf_k = rf + (k - 1) * jump; jump *= stride; start -= padding * jump (before the layer)
    convs_and_pools = ["features.0", "features.2", "features.3", "features.5", "features.6",
                       "features.8", "features.10", "features.12", "avgpool"]
    got = [(e.step(n).rf[0], e.step(n).jump[0], e.step(n).start[0]) for n in convs_and_pools]
    assert got == [(11, 4, -2), (19, 8, -2), (51, 8, -18), (67, 16, -18), (99, 16, -34),
                   (131, 16, -50), (163, 16, -66), (195, 32, -66), (195, 32, -66)]
    assert not e.step("features.12").whole_input
    fc6 = e.step("classifier.2")
    assert fc6.rf == (195 + 5 * 32,) * 2 and fc6.whole_input
    assert e.step("features.0").macs == 23296 * 55 * 55
    assert e.total_params == 61_100_840
    assert e.total_macs == summarize("alexnet").total_macs
    assert not any(x.mismatch for x in e.steps)


@pytest.mark.skipif("lenet5-1998" not in lenet5.list_models(),
                    reason="lenet5-1998 is not registered on this branch")
def test_lenet5_1998_by_hand():
    """SPEC: C1 6x28x28, S2 6x14x14, C3 16x10x10, S4 16x5x5, C5 120x1x1; fields 5 6 14 16 32."""
    e = explain("lenet5-1998")
    steps = spatial_steps(e)
    assert [s.output_shape for s in steps] == [
        (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120, 1, 1)]
    assert [s.rf for s in steps] == [(5, 5), (6, 6), (14, 14), (16, 16), (32, 32)]
    assert [s.jump for s in steps] == [(1, 1), (2, 2), (2, 2), (4, 4), (4, 4)]
    assert steps[-1].whole_input and not steps[-2].whole_input
    assert "(32 - 5 + 2*0) / 1 + 1 = 28 -> 6 x 28 x 28" in steps[0].text
    assert "(28 - 2) / 2 + 1 = 14 -> 6 x 14 x 14" in steps[1].text  # the trainable subsampling
    assert "(14 - 5 + 2*0) / 1 + 1 = 10 -> 16 x 10 x 10" in steps[2].text  # the partial C3
    assert e.trainable_params == 60000
    assert not any(x.mismatch for x in e.steps)


class Subsampling(nn.Module):
    """Duck-typed like the paper's S2: kernel_size/stride/padding, no nn.Conv2d."""

    def __init__(self, channels):
        super().__init__()
        self.kernel_size, self.stride, self.padding = 2, 2, 0
        self.coefficient = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        y = nn.functional.avg_pool2d(x, 2) * 4
        return y * self.coefficient[:, None, None] + self.bias[:, None, None]


class PartialConv(nn.Module):
    """A window layer made of sub-convolutions: walked as one layer, not as its children."""

    def __init__(self):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.out_channels = (5, 5), (1, 1), (0, 0), 4
        self.maps = nn.ModuleList(nn.Conv2d(2, 1, 5) for _ in range(4))

    def forward(self, x):
        return torch.cat([m(x[:, i % 2:i % 2 + 2]) for i, m in enumerate(self.maps)], 1)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, dilation=2, padding="same")
        self.pool = nn.MaxPool2d(2, 2, padding=1, ceil_mode=True)
        self.sub = Subsampling(3)
        self.part = PartialConv()
        self.fc = nn.Linear(4 * 2 * 2, 5)

    def forward(self, x):  # the flatten is a function call here, not a layer
        return self.fc(self.part(self.sub(self.pool(self.conv(x)))).flatten(1))


def test_duck_typed_layers_ceil_mode_dilation_and_a_flatten_in_forward():
    e = explain_model(Toy(), (1, 25, 25), "toy")
    assert [s.name for s in e.steps] == ["conv", "pool", "sub", "part", "(forward)", "fc"]
    text = {s.name: s.text for s in e.steps}
    assert text["conv"] == ("Conv2d 3x3, stride 1, padding 'same', dilation 2 (the kernel spans 5x5):"
                            " (25 - 5 + 2*2) / 1 + 1 = 25 -> 3 x 25 x 25 (3 kernels)")
    # (25 - 2 + 2) / 2 + 1 = 13.5 -> ceil 14; the 14th window would start at 26 >= 25 + 1
    assert text["pool"] == ("MaxPool2d 2x2, stride 2, padding 1, ceil_mode: (25 - 2 + 2*1) / 2 + 1"
                            " = 13.5, not whole: ceil 14, less the last window, which would start"
                            " in the padding: 13 -> 3 x 13 x 13")
    assert text["sub"] == "Subsampling 2x2, stride 2: (13 - 2) / 2 + 1 = 6.5, not whole: floor 6 -> 3 x 6 x 6"
    assert text["part"].endswith("(6 - 5 + 2*0) / 1 + 1 = 2 -> 4 x 2 x 2 (4 kernels)")
    assert text["(forward)"] == "reshaped in forward(), not by a layer: 4 x 2 x 2 = 16"
    # rf: conv 5 (start -2), pool 5 + 1*1 = 6 (start -3), sub 6 + 1*2 = 8, part 8 + 4*4 = 24,
    # fc on the 2x2 grid: 24 + 1*4 = 28 >= 25 from -3: the whole input
    assert [e.step(n).rf[0] for n in ["conv", "pool", "sub", "part", "fc"]] == [5, 6, 8, 24, 28]
    assert [e.step(n).start[0] for n in ["conv", "pool", "sub", "part", "fc"]] == [-2, -3, -3, -3, -3]
    assert e.step("fc").whole_input and not e.step("part").whole_input
    assert e.step("sub").params == 6 and e.step("sub").macs == 6 * 36
    assert e.step("part").params == 4 * 51 and e.total_params == sum(
        p.numel() for p in Toy().parameters())
    assert not any(s.mismatch for s in e.steps)
    out = format_explanation(e)
    assert "28*" in out and "?" not in out


def test_a_layer_that_breaks_the_formula_is_flagged():
    class Liar(nn.Module):  # claims a 3x3 window but keeps the size
        kernel_size, stride, padding = 3, 1, 0

        def forward(self, x):
            return x

    e = explain_model(nn.Sequential(Liar(), nn.Flatten()), (2, 8, 8))
    assert e.steps[0].mismatch
    assert "[the forward pass gives 2 x 8 x 8: the layer does not follow the formula]" in e.steps[0].text
    assert e.steps[1].text == "Flatten: 2 x 8 x 8 = 128"  # the walk goes on with the real shape


def test_uneven_adaptive_pool_and_an_unknown_shape_change():
    class Crop(nn.Module):
        def forward(self, x):
            return x[..., 1:, 1:]

    e = explain_model(nn.Sequential(nn.AdaptiveAvgPool2d(3), Crop()), (1, 7, 7))
    assert e.steps[0].text.startswith("AdaptiveAvgPool2d to 3x3: 7 / 3 = 2.33, not whole: windows of 3")
    assert e.steps[0].approximate and e.steps[0].rf == (3, 3)
    assert e.steps[1].text == "Crop: 1 x 3 x 3 -> 1 x 2 x 2" and e.steps[1].rf is None
    assert "~3" in format_explanation(e)


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_window_formula_matches_pytorch(ceil_mode):
    """Every small pooling and convolution configuration: the formula gives PyTorch's size."""
    checked = 0
    for n in range(4, 10):
        for k in (1, 2, 3):
            for s in (1, 2, 3):
                for p in range(k // 2 + 1):
                    for d in (1, 2):
                        layers = [nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil_mode)]
                        if not ceil_mode:
                            layers.append(nn.Conv2d(1, 1, k, s, p, dilation=d))
                        for layer in layers:
                            try:
                                e = explain_model(layer, (1, n, n))
                            except RuntimeError:  # output too small: PyTorch refuses too
                                continue
                            assert not e.steps[0].mismatch, (layer, n, e.steps[0].text)
                            checked += 1
    assert checked > 150


def test_every_registered_model_walks_cleanly():
    for name in lenet5.list_models():
        if name == "alexnet":  # walked in test_alexnet_by_hand
            continue
        e = explain(name)
        s = summarize(name)
        assert e.total_params == s.total_params, name
        assert not any(x.mismatch or x.rf is None for x in e.steps), name
        assert e.steps[-1].whole_input, name


def test_cli_explain():
    r = run_cli("summary", "classic", "--explain")
    assert r.returncode == 0, r.stderr
    assert ("Conv2d 5x5, stride 1, padding 0: (32 - 5 + 2*0) / 1 + 1 = 28 -> 6 x 28 x 28"
            in r.stdout)
    assert "Flatten: 16 x 5 x 5 = 400" in r.stdout
    assert "Total params:        61,706  (61,706 trainable)" in r.stdout
    assert "MACs per image:      423,038" in r.stdout
    row = [line.split() for line in r.stdout.splitlines() if line.startswith("classifier.c5")][-1]
    assert row[:5] == ["classifier.c5", "120", "32*", "4", "0"]
    r = run_cli("summary", "--all", "--explain")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("): the shape of every layer") == len(lenet5.list_models())
    assert "55.25, not whole: floor 55 -> 64 x 55 x 55" in r.stdout


@pytest.mark.parametrize("name", ["classic", "modern", "modern-c5conv", "lenet5-1998"])
def test_every_lenet_is_walked_and_summarized_in_the_canonical_order(name):
    """C1, its activation, then S2: the same order in summary --explain and summary as in
    plot and serve, whatever the pooling (the fast path's reordering is not shown)."""
    first = ["features.c1", "features.act1", "features.s2"]
    assert [s.name for s in explain(name).steps][:3] == first
    assert [r.name for r in summarize(name).rows][:3] == first
