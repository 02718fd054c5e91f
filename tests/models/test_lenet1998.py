import pytest
import torch

import lenet5
from lenet5.models.lenet1998 import C3_TABLE, PAPER_PREPROCESS, PartialConv2d, digit_prototypes
from lenet5.summary import summarize


def model():
    torch.manual_seed(0)
    return lenet5.create_model("lenet5-1998")


def test_table_one():
    assert C3_TABLE[0] == (0, 1, 2) and C3_TABLE[5] == (5, 0, 1)
    assert C3_TABLE[6] == (0, 1, 2, 3) and C3_TABLE[11] == (5, 0, 1, 2)
    assert C3_TABLE[12:] == ((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5), (0, 1, 2, 3, 4, 5))
    assert sum(len(t) for t in C3_TABLE) == 60


def test_c3_output_maps_depend_only_on_their_table_inputs():
    c3 = model().features.c3
    x = torch.randn(1, 6, 14, 14)
    jac = torch.autograd.functional.jacobian(lambda t: c3(t).sum((0, 2, 3)), x)  # (16, 1, 6, ...)
    seen = jac.abs().sum((1, 3, 4)) > 0  # (16 maps, 6 inputs)
    for m, inputs in enumerate(C3_TABLE):
        assert seen[m].nonzero().flatten().tolist() == sorted(inputs)


def test_c3_gradients_reach_only_real_connections():
    c3 = PartialConv2d(C3_TABLE)
    torch.nn.init.normal_(c3.weight), torch.nn.init.zeros_(c3.bias)
    assert c3.weight.numel() + c3.bias.numel() == 1516
    dense = c3.dense_weight()
    for m in range(16):
        for c in range(6):
            assert bool(dense[m, c].abs().sum() > 0) == (c in C3_TABLE[m])
    out = c3(torch.randn(2, 6, 14, 14))
    out[:, 15].sum().backward()  # map 15 sees all six inputs: its 6 kernels get gradients
    nonzero = c3.weight.grad.abs().sum((1, 2)) > 0
    assert nonzero.nonzero().flatten().tolist() == list(range(54, 60))


def test_counts_as_in_the_paper():
    s = summarize("lenet5-1998")
    assert s.trainable_params == 60_000 and s.total_params == 60_000
    per_layer = {r.name.split(".")[-1]: (r.trainable, r.connections) for r in s.rows}
    assert per_layer["c1"] == (156, 122_304)
    assert per_layer["s2"] == (12, 5_880)
    assert per_layer["c3"] == (1_516, 151_600)
    assert per_layer["s4"] == (32, 2_000)
    assert per_layer["c5"] == (48_120, 48_120)
    assert per_layer["f6"] == (10_164, 10_164)
    assert per_layer["output"] == (0, 840)
    assert s.total_connections == 340_908
    macs = {r.name.split(".")[-1]: r.macs for r in s.rows}
    assert (macs["s2"], macs["s4"], macs["output"]) == (5_880, 2_000, 840)  # not the 12, 32, 0 of torchinfo


def test_summary_has_connections_for_every_model():
    s = summarize("classic")
    assert {r.name: r.connections for r in s.rows}["features.s2"] == 6 * 14 * 14 * 5
    assert s.total_connections > s.total_params
    modern = {r.name: r.connections for r in summarize("modern").rows}
    assert modern["features.s2"] == 6 * 14 * 14 * 4  # max pooling: the window, no bias
    assert modern["features.act1"] == 0


def test_prototypes_are_fixed_plus_minus_one_bitmaps():
    p = digit_prototypes()
    assert p.shape == (10, 84) and set(p.unique().tolist()) == {-1.0, 1.0}
    assert len({tuple(r.tolist()) for r in p}) == 10  # ten different digits
    m = model()
    assert "classifier.output.prototypes" in m.state_dict()
    assert all("prototypes" not in n for n, _ in m.named_parameters())


def test_scores_are_negated_distances():
    m = model().eval()
    x = torch.randn(3, 1, 32, 32)
    f6 = m.classifier.act6(m.classifier.f6(m.classifier.flatten(m.features(x))))
    y = ((f6[:, None, :] - digit_prototypes()[None]) ** 2).sum(-1)
    torch.testing.assert_close(m(x), -y, rtol=1e-5, atol=1e-4)


def test_paper_input_scaling():
    from lenet5.data import to_input

    x = to_input(torch.tensor([[[0, 255]]], dtype=torch.uint8), PAPER_PREPROCESS)
    assert x[0, 0, 0, 0].item() == pytest.approx(-0.1)  # padding: background
    assert x[0, 0, 2, 3].item() == pytest.approx(1.175)


def test_initialization_is_uniform_over_fan_in():
    m = model()
    assert m.features.c1.weight.abs().max() <= 2.4 / 25
    assert m.classifier.f6.weight.abs().max() <= 2.4 / 120
    w = m.features.c3.weight
    assert w[:18].abs().max() <= 2.4 / 75 and w[54:].abs().max() <= 2.4 / 150
    assert w[:18].abs().max() > 2.4 / 100  # maps 0-5 have fan-in 75, not more
