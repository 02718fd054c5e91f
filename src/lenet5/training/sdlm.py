"""Stochastic diagonal Levenberg-Marquardt (LeCun et al. 1998, appendix C).

Each parameter w_k gets its own step size

    eta_k = eta / (mu + h_kk)

where h_kk estimates the second derivative of the loss with respect to w_k, averaged
over a few hundred training samples (500) before each pass and held fixed during it; mu
(0.02) keeps the step bounded where the curvature is small.

h is computed as the paper does (its eq. 22-25), by back-propagating second derivatives
instead of first ones, in the Gauss-Newton approximation (second derivatives of the
squashing functions are dropped) and keeping only the diagonal at every layer:

    d2E/da_i^2 = f'(a_i)^2 d2E/dx_i^2                     through a nonlinearity x = f(a)
    d2E/dx_j^2 = sum_i w_ij^2 d2E/da_i^2                  through a linear map a = W x + b
    h(w_ij)   += d2E/da_i^2 x_j^2,   h(b_i) += d2E/da_i^2  (summed over shared positions)

A linear layer's two rules are its ordinary backward pass applied to the second
derivatives with the weights and the inputs squared, so any module that is linear in its
input given its weights (Conv2d, Linear, lenet5-1998's subsampling and partial C3) needs
no code of its own: we run it on x^2 with its weights squared and take the vector-Jacobian
product. Elementwise nonlinearities multiply by f'^2; flatten and max-pooling route the
values; average pooling divides by the window area squared.

The second derivatives the backward pass starts from are the diagonal of the loss's
Hessian with respect to the model's output. Layers at the end of the model that these
rules do not cover and that have no trainable weights are folded into the loss, whose
Hessian is then taken at their input, exactly (lenet5-1998's RBF layer with its fixed
prototypes, whose squared distances supply the curvature 2 per F6 unit, as in the paper).

Use with ``lenet5.training.train``: its :class:`CurvatureEstimate` hook calls
:meth:`SDLM.prepare_epoch` before each pass with a function that returns training samples.
Without it (h = 0) SDLM is plain SGD with step eta / mu.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, hessian, vmap

from ..errors import Lenet5Error
from .callbacks import Callback, Loop

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_ELEMENTWISE = (nn.Tanh, nn.ReLU, nn.Sigmoid, nn.LeakyReLU, nn.GELU, nn.ELU, nn.SiLU)
_IDENTITY = (nn.Dropout, nn.Identity)
_ROUTING = (nn.Flatten, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


def _is_elementwise(module: nn.Module) -> bool:
    return isinstance(module, _ELEMENTWISE) or getattr(module, "elementwise", False)


def _has_rule(module: nn.Module) -> bool:
    """Whether :func:`_back` carries second derivatives through ``module``."""
    return (any(True for _ in module.parameters()) or _is_elementwise(module)
            or isinstance(module, _IDENTITY + _ROUTING))


def _back(module: nn.Module, x: torch.Tensor, d2: torch.Tensor, h: dict[str, torch.Tensor],
          prefix: str) -> torch.Tensor:
    """Second derivatives at the input of ``module`` from those at its output; adds the
    module's parameters' second derivatives to ``h``."""
    params = dict(module.named_parameters())
    if params:  # linear in x given its weights: backward with x^2 and weights^2
        squared = {n: (p.detach() if n.endswith("bias") else p.detach().square()).requires_grad_()
                   for n, p in params.items()}
        x2 = x.detach().square().requires_grad_()
        out = functional_call(module, squared, (x2,))
        grads = torch.autograd.grad(out, [x2, *squared.values()], grad_outputs=d2)
        for n, g in zip(squared, grads[1:]):
            if params[n].requires_grad:
                h[prefix + n] = h.get(prefix + n, 0) + g
        return grads[0]
    if _is_elementwise(module):
        xg = x.detach().clone().requires_grad_()
        (fprime,) = torch.autograd.grad(module(xg.clone()).sum(), xg)
        return d2 * fprime.square()
    if isinstance(module, _IDENTITY):
        return d2
    if isinstance(module, _ROUTING):
        xg = x.detach().clone().requires_grad_()
        (back,) = torch.autograd.grad(module(xg), xg, grad_outputs=d2)  # sum_i M_ij d2_i
        if isinstance(module, nn.AvgPool2d):  # M_ij = 1/area: M_ij^2 = M_ij / area
            k = module.kernel_size
            back = back / (k * k if isinstance(k, int) else k[0] * k[1])
        elif isinstance(module, nn.AdaptiveAvgPool2d) and x.shape[-2:] != d2.shape[-2:]:
            area = x.shape[-2] * x.shape[-1] / (d2.shape[-2] * d2.shape[-1])
            back = back / area  # exact when the windows divide evenly
        return back
    raise Lenet5Error(f"sdlm cannot carry second derivatives through {type(module).__name__}")


@torch.no_grad()
def _record_chain(model: nn.Module, x: torch.Tensor) -> tuple[list, torch.Tensor]:
    """The leaf modules of ``model`` in the order they run, with their inputs and outputs,
    and the model's output; ``model`` must be a chain (each leaf's input is the previous
    leaf's output)."""
    records: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = [m.register_forward_hook(
        lambda mod, inp, out: records.append((names[mod], mod, inp[0], out)))
        for m in model.modules() if not list(m.children())]
    try:
        z = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    prev = x
    for name, _, inp, out in records:
        if inp is not prev and (inp.shape != prev.shape or not torch.equal(inp, prev)):
            raise Lenet5Error(f"sdlm needs a chain of layers; {name or 'the model'} is not one")
        prev = out
    return records, z


def diagonal_hessian(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
    """The paper's diagonal Gauss-Newton estimate of d2E/dw^2, averaged over ``x, y``,
    one tensor per trainable parameter (by its name in ``model``)."""
    training = model.training
    model.eval()  # the deterministic network (no dropout) for the estimate
    try:
        chain, z = _record_chain(model, x)
        body = len(chain)  # the trailing layers without a rule are folded into the loss
        while body and not _has_rule(chain[body - 1][1]):
            body -= 1
        head = [module for _, module, _, _ in chain[body:]]
        if head:
            z = chain[body - 1][3] if body else x

        def loss_of_output(zi, yi):
            out = zi.view(1, *z.shape[1:])
            for module in head:
                out = module(out)
            return loss_fn(out, yi.unsqueeze(0))

        d2 = vmap(hessian(loss_of_output))(z.flatten(1), y).diagonal(dim1=1, dim2=2)
        d2 = d2.clamp(min=0).view_as(z)
        h: dict[str, torch.Tensor] = {}
        for name, module, inp, _ in reversed(chain[:body]):
            d2 = _back(module, inp, d2, h, name + "." if name else "")
    finally:
        model.train(training)
    return {n: t / len(x) for n, t in h.items()}


class SDLM(torch.optim.Optimizer):
    """w <- w - lr / (mu + h) * grad, h from :meth:`prepare_epoch` (zero before it).

    The paper estimates h once before each pass. ``refresh_every`` > 0 estimates it again
    every that many steps: with mini-batches the first pass moves the weights far from
    where h was estimated (the initial weights, where h is ~1000x smaller than a few
    hundred steps later), and a stale h lets a larger rate saturate the network.
    """

    def __init__(self, params, lr: float = 0.0005, mu: float = 0.02,
                 hessian_samples: int = 500, weight_decay: float = 0.0,
                 refresh_every: int = 0):
        if lr <= 0 or mu <= 0:
            raise ValueError(f"SDLM needs lr > 0 and mu > 0 (lr={lr}, mu={mu})")
        if hessian_samples < 1:
            raise ValueError(f"hessian_samples must be positive, not {hessian_samples}")
        if refresh_every < 0:
            raise ValueError(f"refresh_every must be 0 (once per pass) or positive, "
                             f"not {refresh_every}")
        super().__init__(params, dict(lr=lr, mu=mu, weight_decay=weight_decay))
        self.hessian_samples, self.refresh_every = hessian_samples, refresh_every
        self._estimate: Callable[[], None] | None = None
        self._steps_since = 0

    def prepare_epoch(self, model: nn.Module, loss_fn: LossFn,
                      sample: Callable[[int], tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Estimate h from ``sample(hessian_samples)`` (inputs, targets) before a pass, and
        again every ``refresh_every`` steps of the pass when that is set."""
        self._estimate = lambda: self._set_hessian(model, loss_fn, *sample(self.hessian_samples))
        self._steps_since = 0
        self._estimate()

    def _set_hessian(self, model: nn.Module, loss_fn: LossFn, x: torch.Tensor,
                     y: torch.Tensor) -> None:
        with torch.enable_grad():
            h = diagonal_hessian(model, loss_fn, x, y)
        by_tensor = {p: h[n] for n, p in model.named_parameters() if n in h}
        for group in self.param_groups:
            for p in group["params"]:
                if p in by_tensor:
                    self.state[p]["hessian"] = by_tensor[p]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                h = self.state[p].get("hessian")
                denom = h + group["mu"] if h is not None else torch.full_like(p, group["mu"])
                p.addcdiv_(g, denom, value=-group["lr"])
        self._steps_since += 1
        if self.refresh_every and self._estimate and self._steps_since % self.refresh_every == 0:
            self._estimate()  # after the update: the next steps use the new weights' curvature
        return loss


class CurvatureEstimate(Callback):
    """The hook that runs :meth:`SDLM.prepare_epoch` before each pass, on samples drawn
    from the epoch's order of the training images with a generator of its own."""

    name = "curvature"

    def __init__(self, optimizer: SDLM, seed: int):
        self.optimizer = optimizer
        self.generator = torch.Generator().manual_seed(seed)

    def on_epoch_start(self, loop: Loop) -> None:
        perm = loop.perm
        self.optimizer.prepare_epoch(loop.model, loop.loss_fn, lambda n: loop.batch(
            perm[torch.randperm(len(perm), generator=self.generator)[:n]]))

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
