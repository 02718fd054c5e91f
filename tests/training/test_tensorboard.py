"""--tensorboard: the event files hold the scalars per epoch, the settings with the final
metrics and the misclassified digits; a resumed run shows each epoch once."""

import sys

import pytest
import torch

from lenet5.errors import Lenet5Error
from lenet5.training import TrainConfig, train
from lenet5.training.tensorboard import TensorBoard, default_dir, hparams, image_grid
from tests.training.stopping import train_until

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed "
                                          "(pip install 'lenet5[tensorboard]')")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData  # noqa: E402

TAGS = ["loss/train", "loss/test", "accuracy/train", "accuracy/test", "lr", "batch_size"]


def events(log_dir):
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.fixture(scope="module")
def run(mnist, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tb")
    cfg = TrainConfig.for_model("modern", epochs=2, double_batch_from=2, progress=False,
                                out=str(tmp / "m.safetensors"), tensorboard=str(tmp / "tb"))
    result = train(cfg, mnist.head(300), log=lambda s: None)
    return cfg, result, events(cfg.tensorboard)


def test_scalars_per_epoch_are_the_logged_ones(run):
    cfg, result, acc = run
    assert set(TAGS) <= set(acc.Tags()["scalars"])
    history = result.history
    assert scalars(acc, "batch_size") == [(1, 256), (2, 512)]
    assert [s for s, _ in scalars(acc, "lr")] == [1, 2]
    for (step, value), record in zip(scalars(acc, "loss/test"), history):
        assert step == record["epoch"] and value == pytest.approx(record["test"]["loss"], rel=1e-6)
    for (_, value), record in zip(scalars(acc, "accuracy/train"), history):
        assert value == pytest.approx(record["train"]["acc"], rel=1e-6)


def test_settings_with_the_final_metrics_and_the_misclassified_digits(run):
    cfg, result, acc = run
    assert scalars(acc, "hparam/test_acc") == [(2, pytest.approx(result.test.acc, rel=1e-6))]
    content = acc.PluginTagToContent("hparams")
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["lr"].number_value == cfg.lr
    assert start.session_start_info.hparams["model"].string_value == "modern"
    (image,) = acc.Images("misclassified/test")
    rows = -(-min(result.test.miss, 64) // 8)
    assert image.step == 2 and image.height == rows * 30 + 2  # 28x28 digits, 2-pixel borders
    (text,) = acc.Tensors("misclassified/test/text_summary")  # their labels, as a table
    table = text.tensor_proto.string_val[0].decode()
    assert table.count("\n") == min(result.test.miss, 64) + 1 and "| label | predicted |" in table


def test_a_resumed_run_shows_each_epoch_once(mnist, tmp_path):
    cfg = TrainConfig.for_model("classic", epochs=3, progress=False,
                                out=str(tmp_path / "c.safetensors"), tensorboard=str(tmp_path / "tb"))
    data = mnist.head(200)
    state = train_until(cfg, data, 1)  # epoch 2 is logged but its state not saved: done again
    result = train(cfg, data, log=lambda s: None, resume=state)
    got = scalars(events(cfg.tensorboard), "loss/test")
    assert [s for s, _ in got] == [1, 2, 3]
    assert [v for _, v in got] == pytest.approx([r["test"]["loss"] for r in result.history], rel=1e-6)


def test_missing_package_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(Lenet5Error, match=r"pip install 'lenet5\[tensorboard\]'"):
        TensorBoard(tmp_path)


def test_helpers():
    grid = image_grid(torch.full((10, 28, 28), 255, dtype=torch.uint8), columns=4)
    assert grid.shape == (1, 3 * 30 + 2, 4 * 30 + 2)
    assert int(grid[0, 2, 2]) == 255 and int(grid[0, 0, 0]) == 128
    assert hparams({"lr": 0.1, "out": None, "loss_args": {"j": 0.5}, "x": [1]}) == {
        "lr": 0.1, "out": "none", "loss_args.j": 0.5, "x": "[1]"}
    assert str(default_dir("runs/modern.safetensors")) == "runs/tensorboard/modern"
