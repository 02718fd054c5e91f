import math

import pytest
import torch
from torch import nn

import lenet5
from lenet5.errors import Lenet5Error
from lenet5.training import TrainConfig, build_loss, build_optimizer, train
from lenet5.training.optim import lecun1998_factor
from lenet5.training.sdlm import SDLM, diagonal_hessian


def test_map_loss_by_hand():
    scores = torch.tensor([[-1.0, -3.0], [-2.0, -0.5]])  # -y
    target = torch.tensor([0, 1])
    j = 0.5
    e0 = 1.0 + math.log(math.exp(-j) + math.exp(-1.0) + math.exp(-3.0))
    e1 = 0.5 + math.log(math.exp(-j) + math.exp(-2.0) + math.exp(-0.5))
    got = build_loss("map", j=j)(scores, target)
    assert got.item() == pytest.approx((e0 + e1) / 2, rel=1e-6)


def test_map_loss_refuses_bad_j():
    with pytest.raises(Lenet5Error):
        build_loss("map", j=0.0)


def test_cross_entropy_works_on_lenet1998_scores():
    m = lenet5.create_model("lenet5-1998")
    loss = build_loss("cross_entropy")(m(torch.randn(2, 1, 32, 32)), torch.tensor([1, 2]))
    assert torch.isfinite(loss)


def test_diagonal_hessian_by_hand():
    # s = W x (no bias), E = 0.5 * sum_i (s_i - t_i)^2 -> d2E/dW_ij^2 = x_j^2 exactly
    lin = nn.Linear(3, 2, bias=False)
    x = torch.tensor([[1.0, 2.0, -1.0], [0.0, 1.0, 3.0]])
    y = torch.zeros(2, 2)

    def loss(s, t):
        return 0.5 * ((s - t) ** 2).sum(1).mean()

    h = diagonal_hessian(lin, loss, x, y)
    want = (x ** 2).mean(0).expand(2, 3)
    torch.testing.assert_close(h["weight"], want)


def test_diagonal_hessian_through_tanh_by_hand():
    # E = 0.5 (tanh(w x + b))^2: Gauss-Newton d2E/dw^2 = (1 - tanh^2)^2 x^2, db: without x^2
    model = nn.Sequential(nn.Linear(1, 1), nn.Tanh())
    with torch.no_grad():
        model[0].weight.fill_(0.5), model[0].bias.fill_(0.1)
    x = torch.tensor([[2.0]])

    def loss(s, t):
        return 0.5 * (s ** 2).sum()

    h = diagonal_hessian(model, loss, x, torch.zeros(1))
    d = 1 - math.tanh(0.5 * 2 + 0.1) ** 2
    assert h["0.weight"].item() == pytest.approx(d ** 2 * 4, rel=1e-5)
    assert h["0.bias"].item() == pytest.approx(d ** 2, rel=1e-5)


def test_one_sdlm_step_by_hand():
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0]]))
    x, y = torch.tensor([[2.0, 1.0]]), torch.tensor([[0.0]])

    def loss(s, t):
        return 0.5 * ((s - t) ** 2).sum(1).mean()

    opt = SDLM(lin.parameters(), lr=0.1, mu=0.5)
    opt.prepare_epoch(lin, loss, lambda n: (x[:n], y[:n]))  # h = x^2 = (4, 1)
    loss(lin(x), y).backward()  # s = 1, grad = s * x = (2, 1)
    opt.step()
    want = torch.tensor([[1.0 - 0.1 * 2 / (0.5 + 4), -1.0 - 0.1 * 1 / (0.5 + 1)]])
    torch.testing.assert_close(lin.weight.detach(), want)


def test_trailing_layers_without_a_rule_are_folded_into_the_loss():
    """A fixed layer at the end (here z -> 2z + z^2, of no known kind) has its exact
    second derivative taken inside the loss's Hessian, as lenet5-1998's RBF output is:
    E = 0.5 (2z + z^2)^2 with z = w x gives d2E/dz^2 = (2 + 2z)^2 + (2z + z^2) * 2."""
    class Fixed(nn.Module):
        def forward(self, z):
            return 2 * z + z * z

    model = nn.Sequential(nn.Linear(1, 1, bias=False), Fixed())
    with torch.no_grad():
        model[0].weight.fill_(0.5)
    x = torch.tensor([[3.0]])
    z = 1.5

    def loss(s, t):
        return 0.5 * (s ** 2).sum()

    h = diagonal_hessian(model, loss, x, torch.zeros(1))
    want = ((2 + 2 * z) ** 2 + (2 * z + z * z) * 2) * 9.0
    assert h["0.weight"].item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(Lenet5Error, match="cannot carry second derivatives through Fixed"):
        diagonal_hessian(nn.Sequential(Fixed(), nn.Linear(1, 1)), loss, x, torch.zeros(1))


def test_sdlm_needs_a_chain():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x):
            return self.b(self.a(x)) + self.a(x)

    with pytest.raises(Lenet5Error):
        diagonal_hessian(Residual(), build_loss("cross_entropy"), torch.randn(3, 2),
                         torch.tensor([0, 1, 0]))


def test_sdlm_options_and_errors():
    params = [nn.Parameter(torch.zeros(1))]
    opt = build_optimizer("sdlm", params, lr=0.01, mu=0.1, hessian_samples=7)
    assert opt.hessian_samples == 7 and opt.param_groups[0]["mu"] == 0.1
    with pytest.raises(Lenet5Error):
        build_optimizer("adam", params, lr=0.01, mu=0.1)


def test_lecun1998_schedule():
    assert [lecun1998_factor(e) for e in (1, 2, 3, 5, 6, 8, 9, 12, 13, 20)] == pytest.approx(
        [1, 1, 0.4, 0.4, 0.2, 0.2, 0.1, 0.1, 0.02, 0.02])


def test_recipe_and_overrides():
    cfg = TrainConfig.for_model("lenet5-1998")
    assert (cfg.optimizer, cfg.schedule, cfg.epochs, cfg.loss) == ("sdlm", "lecun1998", 20, "map")
    assert TrainConfig.for_model("lenet5-1998", loss="cross_entropy").loss_args == {}
    assert TrainConfig.for_model("lenet5-1998", loss_args={"j": 2.0}).loss_args == {"j": 2.0}
    cfg = TrainConfig.for_model("classic", optimizer="sdlm", optimizer_args={"mu": 0.1})
    assert cfg.optimizer_args == {"mu": 0.1}


def test_prototypes_fixed_under_training_and_smoke(mnist):
    # the recipe on a small slice, without the 1000-step warm-up (longer than the run)
    cfg = TrainConfig.for_model("lenet5-1998", epochs=2, lr=0.0002, schedule="constant",
                                progress=False)
    result = train(cfg, mnist.head(2000), log=lambda s: None)
    torch.testing.assert_close(result.model.classifier.output.prototypes,
                               lenet5.models.lenet1998.digit_prototypes())
    losses = [h["train"]["loss"] for h in result.history]
    assert losses[1] < losses[0]
    assert result.history[-1]["test"]["mcr"] < 0.5  # chance is 0.9


def test_sdlm_trains_another_model(mnist):
    cfg = TrainConfig.for_model("classic", optimizer="sdlm", lr=0.001, schedule="constant",
                                batch_size=16, epochs=1, progress=False,
                                optimizer_args={"hessian_samples": 100})
    result = train(cfg, mnist.head(1000), log=lambda s: None)
    assert result.test.acc > 0.3


def test_lecun1998_schedule_warms_up_then_follows_the_paper():
    from lenet5.training import build_schedule

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_schedule("lecun1998", opt, epochs=20, steps_per_epoch=2000)
    lrs = []
    for _ in range(2000 * 13 + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step(), sched.step()
    assert lrs[0] == pytest.approx(0.001) and lrs[999] == pytest.approx(1.0)
    assert lrs[2000 * 2] == pytest.approx(0.4) and lrs[2000 * 13] == pytest.approx(0.02)


def test_sdlm_refreshes_the_curvature_within_a_pass():
    # E = 0.5 (tanh(w x))^2: h depends on w, so a refresh after a step must see the new w
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.Tanh())
    with torch.no_grad():
        model[0].weight.fill_(0.3)
    x, y = torch.tensor([[2.0]]), torch.zeros(1)

    def loss(s, t):
        return 0.5 * (s ** 2).sum()

    calls = []

    def sample(n):
        calls.append(n)
        return x, y

    opt = SDLM(model.parameters(), lr=0.5, mu=0.1, hessian_samples=3, refresh_every=2)
    opt.prepare_epoch(model, loss, sample)
    for step in range(1, 5):
        before = opt.state[model[0].weight]["hessian"].clone()
        opt.zero_grad()
        loss(model(x), y).backward()
        opt.step()
        after = opt.state[model[0].weight]["hessian"]
        if step % 2:  # no refresh: the estimate is the one from before the step
            torch.testing.assert_close(after, before)
        else:
            torch.testing.assert_close(after, diagonal_hessian(model, loss, x, y)["0.weight"])
            assert not torch.equal(after, before)
    assert calls == [3, 3, 3]  # before the pass, after steps 2 and 4


def test_sdlm_refuses_a_negative_refresh_interval():
    with pytest.raises(Lenet5Error):
        build_optimizer("sdlm", [nn.Parameter(torch.zeros(1))], lr=0.1, refresh_every=-1)
