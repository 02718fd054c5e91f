"""The optimizers' direct fused step against PyTorch's own Adam and AdamW."""

import copy

import pytest
import torch

from lenet5.training import optim
from lenet5.training.optim import FusedAdam, FusedAdamW

TORCH = {FusedAdam: torch.optim.Adam, FusedAdamW: torch.optim.AdamW}


def _pair(cls, **kw):
    torch.manual_seed(0)
    ours = [torch.randn(6, 3, requires_grad=True), torch.randn(4, requires_grad=True)]
    theirs = [t.detach().clone().requires_grad_() for t in ours]
    return (ours, cls(ours, lr=1e-2, weight_decay=0.05, fused=True, **kw),
            theirs, TORCH[cls](theirs, lr=1e-2, weight_decay=0.05, fused=True, **kw))


def _steps(params, opt, schedule, grads):
    for g in grads:
        for p, gp in zip(params, g):
            p.grad = None if gp is None else gp.clone()
        opt.step()
        schedule.step()


@pytest.mark.parametrize("cls", [FusedAdam, FusedAdamW])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_direct_step_is_pytorchs_update_bit_for_bit(cls, amsgrad, monkeypatch, torch_api):
    ours, opt, theirs, ref = _pair(cls, amsgrad=amsgrad)
    calls = []
    fused_kernel = optim._fused_kernel

    def counted(cls):
        kernel = fused_kernel(cls)
        return kernel and (lambda *a, **k: calls.append(1) or kernel(*a, **k))

    monkeypatch.setattr(optim, "_fused_kernel", counted)
    g = torch.Generator().manual_seed(1)
    grads = [[torch.randn(p.shape, generator=g) for p in ours] for _ in range(5)]
    _steps(ours, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10), grads)
    _steps(theirs, ref, torch.optim.lr_scheduler.CosineAnnealingLR(ref, 10), grads)
    # the first step creates the state; LENET5_PUBLIC_TORCH=1: Optimizer.step throughout
    assert len(calls) == (0 if amsgrad or torch_api == "public" else 4)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(opt.state[a][key], ref.state[b][key])


def test_direct_step_carries_on_from_a_loaded_state_and_skips_what_it_cannot_do():
    ours, opt, theirs, ref = _pair(FusedAdam)
    g = torch.Generator().manual_seed(2)
    grads = [[torch.randn(p.shape, generator=g) for p in ours] for _ in range(3)]
    _steps(theirs, ref, torch.optim.lr_scheduler.LambdaLR(ref, lambda s: 1.0), grads[:2])
    opt.load_state_dict(copy.deepcopy(ref.state_dict()))  # resuming, as from a file
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            a.copy_(b)
    one_missing = [[grads[2][0], None]]  # a parameter without a gradient: Optimizer.step
    _steps(ours, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), one_missing)
    _steps(theirs, ref, torch.optim.lr_scheduler.LambdaLR(ref, lambda s: 1.0), one_missing)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b) and torch.equal(opt.state[a]["step"], ref.state[b]["step"])
