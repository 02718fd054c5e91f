import json

import pytest
import torch

from lenet5.checkpoint import load_checkpoint
from lenet5.errors import Lenet5Error
from lenet5.evaluation import evaluate
from lenet5.models import get_model_entry
from lenet5.training import TrainConfig, train
from lenet5.training.ema import WeightAverage


def small(mnist, n=2000):
    return mnist.head(n)


def test_recipe_fills_what_flags_leave_out():
    cfg = TrainConfig.for_model("sigmoid", epochs=3, lr=None)
    assert cfg.epochs == 3
    assert cfg.optimizer == "adam" and cfg.lr == 3e-3  # sigmoid's own recipe


def test_short_run_reduces_loss_and_writes_log(mnist, tmp_path):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig.for_model("classic", epochs=2, out=str(out), progress=False)
    lines = []
    result = train(cfg, small(mnist), log=lines.append)
    losses = [h["train"]["loss"] for h in result.history]
    assert losses[1] < losses[0] < 2.3
    assert result.test.acc > 0.5  # chance is 0.1
    assert lines[0].startswith("(train set) epoch: 1 loss: ")
    assert lines[1].startswith("(test set)  epoch: 1 loss: ")
    log = [json.loads(x) for x in cfg.log_path.read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert log[-1]["test"]["correct"] == result.test.correct


def test_same_seed_same_numbers(mnist):
    def run():
        cfg = TrainConfig.for_model("modern", epochs=1, seed=7, progress=False)
        return train(cfg, small(mnist, 1000), log=lambda s: None).history

    a, b = run(), run()
    for x, y in zip(a, b):
        x.pop("train_seconds"), y.pop("train_seconds")
    assert a == b


def test_val_split_reports_val_then_test(mnist):
    lines = []
    cfg = TrainConfig.for_model("modern", epochs=1, val_split=0.1, progress=False)
    result = train(cfg, small(mnist, 1000), log=lines.append)
    assert lines[1].startswith("(val set)   epoch: 1")
    assert lines[2].startswith("(test set)  loss:")
    assert result.history[0]["val"]["total"] == 100
    assert result.history[0]["train"]["total"] == 900


def test_checkpoint_round_trip(mnist, tmp_path):
    out = tmp_path / "k.safetensors"
    cfg = TrainConfig.for_model("keras", epochs=1, out=str(out), progress=False)
    result = train(cfg, small(mnist, 500), log=lambda s: None)
    ckpt = load_checkpoint(out)
    assert ckpt.model_name == "keras"
    # every argument named (keras's dropout too), so a later default cannot change the model
    assert ckpt.model_args == {"num_classes": 10, "in_channels": 1, "dropout": 0.2}
    assert ckpt.metrics["test"]["correct"] == result.test.correct
    assert ckpt.dataset["sha256"] == mnist.content_hash
    assert ckpt.preprocess.pad == 2
    model = ckpt.build_model()
    for k, v in result.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(lr=-1.0), dict(val_split=1.5),
                                 dict(ema=1.0), dict(ema=-0.1), dict(double_batch_from=-1)])
def test_bad_settings_are_refused(mnist, bad):
    with pytest.raises(Lenet5Error):
        train(TrainConfig.for_model("classic", progress=False, **bad), small(mnist, 100))


def test_weight_average_follows_the_ema_rule():
    net = torch.nn.Linear(3, 2)
    average = WeightAverage(net, 0.75)
    first = [p.detach().clone() for p in net.parameters()]
    average.update()  # the first update copies
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    average.update()  # then 0.75 * average + 0.25 * weights
    for a, p0 in zip(average.module.parameters(), first):
        assert torch.allclose(a, 0.75 * p0 + 0.25 * (p0 + 1.0))
    with pytest.raises(Lenet5Error):
        WeightAverage(net, 1.0)


def test_weight_average_matches_pytorchs_averaged_model_bit_for_bit():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    ours = WeightAverage(net, 0.9)
    stock = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    for _ in range(5):
        ours.update()
        stock.update_parameters(net)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        net(torch.randn(8, 3))  # BatchNorm's running statistics move; its counter is an int
    assert ours.updates == int(stock.n_averaged) == 5
    for (name, a), b in zip(ours.module.state_dict().items(), stock.module.state_dict().values()):
        if a.is_floating_point():
            assert torch.equal(a, b), name
    # the step counter is copied, not averaged: the count at the last update
    assert int(ours.module[1].num_batches_tracked) == int(net[1].num_batches_tracked) - 1


def test_weight_average_falls_back_to_one_lerp_a_tensor(monkeypatch):
    torch.manual_seed(0)
    net = torch.nn.Linear(5, 3)
    fused, plain = WeightAverage(net, 0.8), WeightAverage(net, 0.8)
    for average in (fused, plain):
        average.update()
    with torch.no_grad():
        net.weight.add_(torch.randn_like(net.weight))
    fused.update(steps=2)
    monkeypatch.delattr(torch, "_foreach_lerp_")
    plain.update(steps=2)
    for a, b in zip(fused.module.parameters(), plain.module.parameters()):
        assert torch.equal(a, b)


def test_ema_run_evaluates_and_saves_the_average(mnist, tmp_path):
    data = small(mnist, 600)
    runs = {}
    for ema in (0.0, 0.9):
        out = tmp_path / f"m{ema}.safetensors"
        cfg = TrainConfig.for_model("modern", epochs=2, ema=ema, out=str(out), progress=False)
        runs[ema] = (train(cfg, data, log=lambda s: None), load_checkpoint(out))
    (plain, _), (averaged, ckpt) = runs[0.0], runs[0.9]
    # the same steps (same seed), but what is saved is the average, not the last weights
    assert not torch.equal(ckpt.state_dict["features.c1.weight"],
                           plain.model.state_dict()["features.c1.weight"])
    model = ckpt.build_model()
    assert evaluate(model, data.test, get_model_entry("modern").preprocess,
                    torch.nn.functional.cross_entropy).correct == averaged.test.correct
    assert ckpt.metrics["test"]["correct"] == averaged.test.correct


def test_weight_average_of_a_double_step_applies_the_decay_twice():
    net = torch.nn.Linear(3, 2)
    once, twice = WeightAverage(net, 0.75), WeightAverage(net, 0.75)
    once.update(), twice.update()  # both copy the weights
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    once.update(steps=2)
    twice.update(), twice.update()
    for a, b in zip(once.module.parameters(), twice.module.parameters()):
        assert torch.allclose(a, b)
    assert once.updates == twice.updates == 3


def test_doubled_batch_keeps_the_schedule_per_image(mnist):
    """From --double-batch-from on, an epoch takes half the steps of twice the images, and
    the cosine schedule and the weight average advance two steps per step: the learning
    rate at each epoch's end is the one a run without the ramp has there."""
    data = small(mnist, 1000)
    runs = {}
    for start in (0, 2):
        cfg = TrainConfig.for_model("modern", epochs=3, batch_size=128, double_batch_from=start,
                                    progress=False)
        runs[start] = train(cfg, data, log=lambda s: None).history
    assert [r["batch_size"] for r in runs[0]] == [128, 128, 128]
    assert [r["batch_size"] for r in runs[2]] == [128, 256, 256]
    for plain, ramped in zip(runs[0], runs[2]):
        assert ramped["lr"] == pytest.approx(plain["lr"], rel=1e-6, abs=1e-12)
        assert ramped["train"]["total"] == plain["train"]["total"] == 1000
    assert runs[0][0] == {**runs[2][0], "train_seconds": runs[0][0]["train_seconds"]}
    assert runs[2][-1]["test"]["acc"] > 0.3  # it learns (chance: 0.1; 8 steps per epoch)


def test_recipe_of_modern_doubles_the_batch_from_epoch_3():
    cfg = TrainConfig.for_model("modern")
    assert [cfg.batch_size_at(e) for e in (1, 2, 3, 10)] == [256, 256, 512, 512]
    assert TrainConfig.for_model("modern", double_batch_from=0).batch_size_at(10) == 256
