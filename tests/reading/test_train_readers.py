"""Training the string readers through the one loop: `lenet5.training.train` and `lenet5 train`."""

from __future__ import annotations

import json

import pytest
import torch

from lenet5.checkpoint import load_checkpoint
from lenet5.cli import main
from lenet5.errors import Lenet5Error
from lenet5.training import Callback, TrainConfig, train
from lenet5.training.resume import load_state, state_path_for
from tests.reading.conftest import TINY, tiny_strings

READING = {"exact_match", "cer", "accept_rate", "strings"}


def test_a_reader_is_saved_with_the_reading_metrics(tiny_ctc):
    ckpt = load_checkpoint(tiny_ctc)
    assert ckpt.model_name == "lenet5-ctc" and ckpt.dataset["name"] == "mnist-strings"
    test = ckpt.metrics["test"]
    assert READING <= set(test) and test["strings"] == 24 and 0 <= test["cer"]
    assert 0 <= test["exact_match"] <= 1 and "loss" in ckpt.metrics["train"]
    log = tiny_ctc.with_name("lenet5-ctc.metrics.jsonl").read_text().splitlines()
    record = json.loads(log[-1])
    assert record["epoch"] == 1 and READING <= set(record["test"])


def test_the_sdnn_trains_on_windows_and_validates_on_numbers_of_training_digits(mnist):
    lines = []
    cfg = TrainConfig.for_model("lenet5-sdnn", val_split=0.25, progress=False, **TINY)
    result = train(cfg, tiny_strings(mnist), log=lines.append)
    assert lines[0].startswith("(train set) epoch: 1 loss:") and "window acc:" in lines[0]
    assert lines[1].startswith("(val set)   epoch: 1 strings: 9 ")  # 40 digits held out
    assert lines[2].startswith("(test set)  strings: 24 ")
    assert result.test.strings == 24


class Interrupt(Callback):
    def on_epoch_start(self, loop):
        if loop.epoch == 2:
            raise KeyboardInterrupt


def test_a_resumed_reader_ends_as_one_never_interrupted(mnist, tmp_path):
    data = tiny_strings(mnist)
    base = dict(TINY, epochs=2, progress=False, dataset="mnist-strings")
    whole = train(TrainConfig.for_model("lenet5-ctc", out=str(tmp_path / "a.safetensors"), **base),
                  data, log=lambda _: None)
    cfg = TrainConfig.for_model("lenet5-ctc", out=str(tmp_path / "b.safetensors"), **base)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, data, log=lambda _: None, callbacks=[Interrupt()])
    state = load_state(state_path_for(cfg.out))
    assert state["epoch"] == 1 and "strings" in state["generators"]
    resumed = train(cfg, data, log=lambda _: None, resume=state)
    for k, v in whole.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert resumed.test.exact == whole.test.exact


@pytest.mark.parametrize("change", [{"distort": 0.5}, {"optimizer": "sdlm"}, {"loss": "map"},
                                    {"loss_args": {"bogus": 1}}, {"augment": {"distort": {}}},
                                    {"augment": {"writing": {"bogus": 1}}}])
def test_classifier_settings_are_refused_for_a_reader(mnist, change):
    cfg = TrainConfig.for_model("lenet5-ctc", progress=False, **{**TINY, **change})
    with pytest.raises(Lenet5Error):
        train(cfg, tiny_strings(mnist), log=lambda _: None)


def test_a_reader_varies_its_digits_before_composing_numbers(mnist):
    """``--augment writing`` for a reader: each training digit varied as people write,
    before the numbers are composed (not a batch augmentation of the whole strip)."""
    from lenet5.training.train import training_callbacks

    cfg = TrainConfig.for_model("reader-ctc", progress=False, **TINY)
    assert cfg.augment == {"writing": {}}  # its recipe's
    seen = []

    class Watch(Callback):
        def on_train_start(self, loop):
            seen.append(loop.train_split.writing)

    result = train(cfg, tiny_strings(mnist), log=lambda _: None, callbacks=[Watch()])
    assert seen[0] is not None and seen[0].clean == 0.25
    assert result.test.strings == 24
    sgd = torch.optim.SGD(result.model.parameters(), 0.1)
    names = lambda **kw: [type(h).__name__ for h in training_callbacks(cfg, result.model, sgd, **kw)]  # noqa: E731
    assert "Writing" in names() and "Writing" not in names(augment_batches=False)


def test_a_reader_on_digits_or_a_classifier_on_numbers_is_refused(mnist):
    with pytest.raises(Lenet5Error, match="task"):
        train(TrainConfig.for_model("lenet5-ctc", progress=False, **TINY), mnist.head(100))
    with pytest.raises(Lenet5Error, match="task"):
        train(TrainConfig.for_model("classic", progress=False, **TINY), tiny_strings(mnist))


def test_lenet5_train_trains_a_reader_on_its_task_s_dataset(mnist_dir, tmp_path, capsys):
    out = tmp_path / "ctc.safetensors"
    args = ["train", "--model", "lenet5-ctc", "--data-dir", str(mnist_dir), "--limit", "120",
            "--epochs", "1", "--batch-size", "16", "--no-progress", "--out", str(out)]
    assert main(args) == 0  # no --dataset: mnist-strings, the readers' task's
    printed = capsys.readouterr().out
    assert "(test set)  epoch: 1 strings: 120 exact:" in printed and out.is_file()
    # another run's settings are not written over without --overwrite
    assert main([*args[:-2], "--lr", "1e-3", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["eval", str(out), "--data-dir", str(mnist_dir), "--limit", "50"]) == 0
    assert "(test set)  strings: 50 exact:" in capsys.readouterr().out
    assert main(["eval", str(out), "--data-dir", str(mnist_dir), "--limit", "50",
                 "--one-look", "--decoder", "beam"]) == 0
    assert "(test set)  strings: 50 exact:" in capsys.readouterr().out
    assert main(["eval", str(out), "--data-dir", str(mnist_dir), "--limit", "50",
                 "--decoder", "viterbi"]) == 1
    assert capsys.readouterr().err.strip() == ("lenet5: error: lenet5-ctc decodes by beam "
                                               "or greedy, not viterbi")
