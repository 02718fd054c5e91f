"""The fast layers against the stock ones: the same values and gradients, with the private
PyTorch APIs and with their public fallbacks (``torch_api``)."""

import pytest
import torch

from lenet5.data import to_input
from lenet5.errors import Lenet5Error
from lenet5.fastpath import (
    Conv2d,
    Flatten,
    MaxPool2d,
    Sequential,
    accelerate,
    autocast,
    conv2d,
    input_memory_format,
    resolve_precision,
)
from lenet5.models import Preprocess, create_model, list_models
from lenet5.training import build_optimizer

CPU = torch.device("cpu")


def _batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
    return images, torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("name", [m for m in list_models() if m != "alexnet"])
def test_the_accelerated_model_gives_the_plain_models_gradients(name, torch_api):
    images, labels = _batch()
    torch.manual_seed(0)
    plain = create_model(name).eval()  # eval: no dropout draws to compare
    fast = accelerate(create_model(name)).eval()
    fast.load_state_dict(plain.state_dict())
    assert input_memory_format(fast) == torch.channels_last
    assert input_memory_format(plain) == torch.contiguous_format
    pre = Preprocess()
    grads = []
    for model, fmt in ((plain, torch.contiguous_format), (fast, input_memory_format(fast))):
        out = model(to_input(images, pre, memory_format=fmt)).flatten(1)  # readers: (B, C, 1)
        torch.nn.functional.cross_entropy(out, labels).backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_to_input_memory_format_keeps_values():
    images, _ = _batch(4)
    a = to_input(images, Preprocess())
    b = to_input(images, Preprocess(), memory_format=torch.channels_last)
    assert b.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b)


def test_bf16_autocast_stays_close_to_fp32():
    images, _ = _batch(64)
    torch.manual_seed(0)
    model = create_model("classic").eval()
    x = to_input(images, Preprocess())
    with torch.no_grad():
        ref = model(x)
        with autocast(CPU, "bf16"):
            low = model(x)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.05


def test_precision_resolution():
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    assert resolve_precision("auto", CPU) in ("fp32", "bf16")
    with pytest.raises(Lenet5Error):
        resolve_precision("fp8", CPU)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_optimizer_matches_the_per_parameter_loop(name, torch_api):
    images, labels = _batch(32)
    models = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = create_model("modern")
        opt = build_optimizer(name, model.parameters(), lr=1e-3, weight_decay=1e-4, fused=fused,
                              foreach=None if fused else False)
        assert opt.defaults["fused"] is fused
        for _ in range(3):
            loss = torch.nn.functional.cross_entropy(model(to_input(images, Preprocess())), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", [(3, 6, 28, 28), (2, 16, 10, 10), (2, 4, 7, 9)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_inference_max_pooling_gives_the_native_maxima(shape, layout):
    x = torch.randn(shape).to(memory_format=layout)
    x[0, 0, :2, :2] = float("nan")  # NaN propagates as in the native kernel
    pool = MaxPool2d(kernel_size=2, stride=2)
    with torch.inference_mode():
        ours, native = pool(x), torch.nn.functional.max_pool2d(x, 2)
    assert ours.shape == native.shape
    assert torch.equal(ours.nan_to_num(7.0), native.nan_to_num(7.0))


@pytest.mark.parametrize("channels", [6, 16])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_training_max_pooling_matches_the_native_op(channels, layout):
    x = torch.randn(3, channels, 8, 12).to(memory_format=layout).requires_grad_()
    g = torch.randn(3, channels, 4, 6)
    ours = MaxPool2d(2, 2)(x)
    native = torch.nn.functional.max_pool2d(x, 2)
    assert torch.equal(ours, native)
    grad_ours, = torch.autograd.grad(ours, x, g)
    grad_native, = torch.autograd.grad(native, x, g)
    assert torch.equal(grad_ours, grad_native)  # no ties in random data: the same argmax
    assert grad_ours.is_contiguous(memory_format=layout)


def test_training_max_pooling_gives_a_tie_to_the_top_left():
    x = torch.zeros(1, 6, 4, 4, requires_grad=True)  # every window a four-way tie
    grad, = torch.autograd.grad(MaxPool2d(2, 2)(x).sum(), x)
    native, = torch.autograd.grad(torch.nn.functional.max_pool2d(x, 2).sum(), x)
    assert torch.equal(grad, native)
    assert grad[0, 0].tolist() == [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_other_windows_are_the_native_op():
    x = torch.randn(2, 6, 9, 9)
    assert torch.equal(torch.nn.functional.max_pool2d(x, 3, 2), MaxPool2d(3, 2)(x))


@pytest.mark.parametrize("bf16", [False, True])
def test_few_channel_convolution_matches_the_native_op(bf16, torch_api):
    cl = torch.channels_last
    x = torch.randn(8, 6, 14, 14).contiguous(memory_format=cl).requires_grad_()
    w = torch.randn(16, 6, 5, 5).contiguous(memory_format=cl).requires_grad_()
    b = torch.randn(16, requires_grad=True)
    g = torch.randn(8, 16, 10, 10).contiguous(memory_format=cl)
    results = []
    for conv in (torch.nn.functional.conv2d, conv2d):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = conv(x, w, b)
        results.append((y, *torch.autograd.grad(y, (x, w, b), g)))
    assert type(results[1][0].grad_fn).__name__ == "_ConvFewInputChannelsBackward"
    assert results[1][0].dtype == (torch.bfloat16 if bf16 else torch.float32)
    assert results[1][1].is_contiguous(memory_format=cl)  # the input gradient stays NHWC
    tol = 0.02 if bf16 else 1e-5  # bf16: another summation order, relative to the scale
    for ref, ours in zip(*results):
        assert ours.dtype == ref.dtype
        assert (ours.float() - ref.float()).abs().max() <= tol * ref.float().abs().max()


@pytest.mark.parametrize("channels,layout,grad", [(1, "nhwc", True), (16, "nhwc", True),
                                                  (6, "nchw", True), (6, "nhwc", False)])
def test_other_convolutions_are_the_native_op(channels, layout, grad):
    x = torch.randn(2, channels, 12, 12)
    if layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(grad)
    y = conv2d(x, torch.randn(4, channels, 5, 5, requires_grad=True))
    assert "FewInputChannels" not in type(y.grad_fn).__name__


def test_flatten_hands_back_an_nhwc_gradient():
    cl = torch.channels_last
    x = torch.randn(4, 16, 5, 5).contiguous(memory_format=cl).requires_grad_()
    g = torch.randn(4, 400)
    ours, stock = Flatten()(x), torch.nn.Flatten()(x)
    assert torch.equal(ours, stock)  # the same values, in NCHW order
    grad_ours, = torch.autograd.grad(ours, x, g)
    grad_stock, = torch.autograd.grad(stock, x, g)
    assert torch.equal(grad_ours, grad_stock)
    assert grad_ours.is_contiguous(memory_format=cl) and not grad_stock.is_contiguous(memory_format=cl)


@pytest.mark.parametrize("layout,grad", [("nchw", True), ("nhwc", False)])
def test_other_flattens_are_the_native_op(layout, grad):
    x = torch.randn(2, 16, 5, 5)
    if layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    y = Flatten()(x.requires_grad_(grad))
    assert torch.equal(y, x.flatten(1))
    assert "FlattenNHWC" not in type(y.grad_fn).__name__


def _conv_pool(in_channels=1, out_channels=6, k=5, bias=True, seed=0):
    """A fastpath.Sequential(conv, pool) and the same layers in an nn.Sequential, NHWC, with
    integer weights: every sum is exact, so both routes give bit-identical maps (and ties)."""
    torch.manual_seed(seed)
    conv = Conv2d(in_channels, out_channels, k, bias=bias)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-2, 3, conv.weight.shape))
        if bias:
            conv.bias.copy_(torch.randint(-2, 3, conv.bias.shape))
    fused = Sequential(conv, MaxPool2d(2, 2)).to(memory_format=torch.channels_last)
    return fused, torch.nn.Sequential(*fused)


def _grads(model, x, g):
    model.zero_grad()
    y = model(x)
    y.backward(g)
    return y, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("in_channels,out_channels,k,bias,size",
                         [(1, 6, 5, True, 32), (2, 4, 3, False, 10), (3, 5, 3, True, 8)])
def test_first_convolution_and_pooling_train_as_one_step(in_channels, out_channels, k, bias, size,
                                                          torch_api):
    fused, plain = _conv_pool(in_channels, out_channels, k, bias)
    x = torch.randint(0, 3, (4, in_channels, size, size)).float()  # many ties, exact sums
    x = x.contiguous(memory_format=torch.channels_last)
    out = (size - k + 1) // 2
    g = torch.randint(-3, 4, (4, out_channels, out, out)).float()  # exact gradient sums too
    y_fused, grads_fused = _grads(fused, x, g)
    assert type(y_fused.grad_fn).__name__ == "_ConvMaxPool2x2Backward"
    y_plain, grads_plain = _grads(plain, x, g)
    assert torch.equal(y_fused, y_plain)
    assert y_fused.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(grads_fused, grads_plain):  # the same winner in every tie
        assert torch.equal(a, b)


def test_one_step_conv_pool_under_bf16_autocast_matches_the_layers(torch_api):
    """Random weights and inputs, bf16 as in training: the sums may round apart in a rare
    output (oneDNN adds them in its own order), so: nearly all outputs bit-identical, the
    gradients equal to bf16 precision."""
    fused, plain = _conv_pool()
    torch.nn.init.normal_(fused[0].weight)
    x = torch.randn(8, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    g = torch.randn(8, 6, 14, 14)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_fused, grads_fused = _grads(fused, x, g)
        y_plain, grads_plain = _grads(plain, x, g)
    assert y_fused.dtype == y_plain.dtype == torch.bfloat16
    assert (y_fused == y_plain).float().mean() > 0.99
    for a, b in zip(grads_fused, grads_plain):
        assert (a - b).norm() <= 1e-2 * b.norm()


@pytest.mark.parametrize("case", ["input needs grad", "no grad", "eval mode", "odd size",
                                  "even kernel", "stride 2", "padding", "avg pool", "nchw input"])
def test_other_conv_pool_pairs_run_layer_by_layer(case):
    conv = Conv2d(1, 6, 4 if case == "even kernel" else 5, stride=2 if case == "stride 2" else 1,
                  padding=1 if case == "padding" else 0)
    pool = torch.nn.AvgPool2d(2) if case == "avg pool" else MaxPool2d(2, 2)
    model = Sequential(conv, pool).to(memory_format=torch.channels_last)
    size = 31 if case == "odd size" else 32
    channels = 2 if case == "nchw input" else 1
    if channels == 2:
        model[0] = Conv2d(2, 6, 5)  # NCHW weights and input
    x = torch.randn(2, channels, size, size)
    if case != "nchw input":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(case == "input needs grad")
    model.train(case != "eval mode")
    with torch.set_grad_enabled(case != "no grad"):
        y = model(x)
    assert y.grad_fn is None or "ConvMaxPool" not in type(y.grad_fn).__name__
    assert torch.equal(y, torch.nn.Sequential(*model)(x))
