import math

import pytest
import torch

from lenet5.errors import Lenet5Error
from lenet5.evaluation import evaluate
from lenet5.models import get_model_entry
from lenet5.training import TrainConfig, build_loss, reported_loss, train
from lenet5.training.losses import build_losses


def test_label_smoothing_by_hand_and_reported_without_it():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    target = torch.tensor([0])
    logp = torch.log_softmax(logits, 1)[0]
    eps = 0.3
    # smoothed target: (1 - eps) on the class plus eps / K everywhere
    want = -((1 - eps) * logp[0] + eps / 3 * logp.sum())
    smoothed = build_loss("cross_entropy", label_smoothing=eps)
    assert smoothed(logits, target).item() == pytest.approx(want.item(), rel=1e-6)
    reported = reported_loss("cross_entropy", label_smoothing=eps)
    assert reported(logits, target).item() == pytest.approx(-logp[0].item())
    train_fn, report_fn = build_losses("cross_entropy")
    assert report_fn is train_fn  # nothing to drop: the loss is not computed twice
    train_fn, report_fn = build_losses("cross_entropy", label_smoothing=eps)
    assert report_fn is not train_fn
    with pytest.raises(Lenet5Error):
        build_loss("cross_entropy", label_smoothing=1.0)
    with pytest.raises(Lenet5Error):
        build_loss("map", label_smoothing=0.1)


def test_modern_recipe_smooths_but_reports_the_plain_loss(mnist):
    data = mnist.head(600)
    cfg = TrainConfig.for_model("modern", epochs=1, progress=False)
    assert cfg.loss_args == {"label_smoothing": 0.1}
    result = train(cfg, data, log=lambda s: None)
    plain = evaluate(result.model, data.test, get_model_entry("modern").preprocess,
                     build_loss("cross_entropy"), 512, torch.device("cpu"))
    assert result.test.loss == pytest.approx(plain.loss, rel=1e-5)
    assert math.isfinite(result.history[0]["train"]["loss"])
