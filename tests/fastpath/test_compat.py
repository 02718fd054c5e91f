"""The private PyTorch APIs behind their checks, and their public fallbacks."""

import sys

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from lenet5.fastpath import PUBLIC_TORCH_ENV, compat
from lenet5.training.optim import FusedAdam, FusedAdamW, _fused_kernel


@pytest.mark.parametrize("value,public", [("", False), ("0", False), ("1", True), ("yes", True)])
def test_the_switch_reads_the_environment(value, public, monkeypatch):
    monkeypatch.setenv(PUBLIC_TORCH_ENV, value)
    assert compat.public_only() is public


def test_the_private_routes_pass_their_checks_on_this_torch(monkeypatch):
    """On the torch the project is tested with, the fast path runs its private routes; a
    torch that changes one of them makes this fail (and the public fallback take over)."""
    monkeypatch.delenv(PUBLIC_TORCH_ENV, raising=False)
    assert compat._checked_convolution_backward() is not None, torch.__version__
    assert _fused_kernel(FusedAdam) is torch._fused_adam_, torch.__version__
    assert _fused_kernel(FusedAdamW) is torch._fused_adamw_, torch.__version__
    monkeypatch.setenv(PUBLIC_TORCH_ENV, "1")
    assert _fused_kernel(FusedAdam) is None and _fused_kernel(FusedAdamW) is None


@pytest.mark.parametrize("bias,need_w,need_b", [(True, True, True), (True, False, True),
                                                (False, True, False), (True, True, False)])
def test_weight_and_bias_gradients_are_the_convolutions(bias, need_w, need_b, torch_api):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-2, 3, (3, 4, 9, 9), generator=g).float().contiguous(memory_format=torch.channels_last)
    w = torch.randint(-2, 3, (5, 4, 3, 3), generator=g).float().requires_grad_()
    b = torch.zeros(5, requires_grad=True) if bias else None
    grad = torch.randint(-2, 3, (3, 5, 7, 7), generator=g).float()
    y = torch.nn.functional.conv2d(x, w, b)
    expected = torch.autograd.grad(y, [w] + ([b] if bias else []), grad)
    gw, gb = compat.conv_weight_and_bias_grads(grad, x, w.detach(), bias, need_w, need_b)
    assert (gw is None) is not need_w and (gb is None) is not (need_b and bias)
    if need_w:
        assert torch.equal(gw, expected[0])  # integer data: every sum exact either way
    if need_b and bias:
        assert torch.equal(gb, expected[1])


def test_a_broken_private_kernel_fails_its_check_and_the_public_one_is_used(monkeypatch):
    assert compat._agrees_with_conv2d_weight(torch.ops.aten.convolution_backward)
    assert not compat._agrees_with_conv2d_weight(  # a kernel that changed its meaning
        lambda *a: (None, torch.zeros(3, 2, 3, 3), torch.zeros(3)))
    assert not compat._agrees_with_conv2d_weight(lambda g, x, w: None)  # ... or its signature
    monkeypatch.delenv(PUBLIC_TORCH_ENV, raising=False)
    monkeypatch.setattr(compat, "_checked_convolution_backward", lambda: None)
    x, grad = torch.ones(1, 2, 5, 5), torch.ones(1, 3, 3, 3)
    gw, gb = compat.conv_weight_and_bias_grads(grad, x, torch.ones(3, 2, 3, 3), True, True, True)
    assert torch.equal(gw, torch.full((3, 2, 3, 3), 9.0)) and torch.equal(gb, torch.full((3,), 9.0))


@pytest.mark.parametrize("cls", [FusedAdam, FusedAdamW])
def test_the_public_step_is_the_direct_steps_update(cls, monkeypatch):
    weights = []
    for public in ("0", "1"):
        monkeypatch.setenv(PUBLIC_TORCH_ENV, public)
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(7, 5))
        opt = cls([p], lr=1e-2, weight_decay=0.05, fused=True)
        for step in range(4):
            p.grad = torch.randn(7, 5, generator=torch.Generator().manual_seed(step))
            opt.step()
        weights.append(p.detach())
    assert torch.equal(*weights)


def test_step_hooks_send_the_step_through_the_optimizer(monkeypatch):
    monkeypatch.delenv(PUBLIC_TORCH_ENV, raising=False)
    p = torch.nn.Parameter(torch.ones(3))
    opt = FusedAdam([p], lr=0.1, fused=True)
    p.grad = torch.ones(3)
    opt.step()
    assert opt._direct_lists() is not None  # the state exists: the direct route is open
    seen = []
    handle = register_optimizer_step_pre_hook(lambda *a: seen.append(1))
    try:
        assert compat.has_step_hooks(opt) and opt._direct_lists() is None
        opt.step()
        assert seen  # a global hook ran
    finally:
        handle.remove()
    assert not compat.has_step_hooks(opt)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the public check reads /proc/cpuinfo")
def test_the_bf16_check_agrees_with_pytorchs(monkeypatch):
    monkeypatch.delenv(PUBLIC_TORCH_ENV, raising=False)
    private = compat.cpu_has_bf16()
    monkeypatch.setenv(PUBLIC_TORCH_ENV, "1")
    assert compat.cpu_has_bf16() == private


def test_lerp_is_the_same_both_ways(monkeypatch):
    results = []
    for public in ("0", "1"):
        monkeypatch.setenv(PUBLIC_TORCH_ENV, public)
        g = torch.Generator().manual_seed(0)
        starts = [torch.randn(5, 3, generator=g), torch.randn(7, generator=g)]
        ends = [torch.randn(5, 3, generator=g), torch.randn(7, generator=g)]
        compat.foreach_lerp_(starts, ends, 1 - 0.98 ** 2)
        results.append(starts)
    assert all(torch.equal(a, b) for a, b in zip(*results))
