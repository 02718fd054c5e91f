"""The loop's named hooks: the order they run in, what they see, what they may change,
and their state carried over by --resume; augmentations by name; the CSV log."""

import csv
import json
from pathlib import Path

import pytest
import torch

from lenet5.cli import main
from lenet5.errors import Lenet5Error
from lenet5.training import Callback, TrainConfig, register_augmentation, train
from lenet5.training.augment import AUGMENTATIONS, Augmentation, parse_augment, seed_for
from tests.training.stopping import train_until


class Recorder(Callback):
    name = "recorder"

    def __init__(self):
        self.calls, self.counter = [], 0

    def on_train_start(self, loop):
        self.calls.append(("train_start", loop.epoch))

    def on_epoch_start(self, loop):
        self.calls.append(("epoch_start", loop.epoch, loop.batch_size, len(loop.perm), loop.steps))

    def on_batch(self, loop, x, y):
        self.calls.append(("batch", loop.step, len(y)))
        return x, y

    def after_step(self, loop):
        self.counter += 1
        self.calls.append(("step", loop.step, loop.units, loop.loss.requires_grad))

    def on_epoch_end(self, loop):
        self.calls.append(("epoch_end", loop.record["epoch"], loop.record["batch_size"]))

    def on_train_end(self, loop):
        self.calls.append(("train_end", loop.result.test.total))

    def state_dict(self):
        return {"counter": self.counter}

    def load_state_dict(self, state):
        self.counter = state["counter"]


def test_hooks_run_at_their_points_in_order(mnist):
    recorder = Recorder()
    cfg = TrainConfig.for_model("classic", epochs=2, batch_size=64, double_batch_from=2,
                                progress=False)
    train(cfg, mnist.head(200), log=lambda s: None, callbacks=[recorder])
    assert recorder.calls == [
        ("train_start", 0),
        ("epoch_start", 1, 64, 200, 4),
        ("batch", 0, 64), ("step", 0, 1, True), ("batch", 1, 64), ("step", 1, 1, True),
        ("batch", 2, 64), ("step", 2, 1, True), ("batch", 3, 8), ("step", 3, 1, True),
        ("epoch_end", 1, 64),
        # the ramp doubles the batch; a step of 128 stands for 2 of 64, the last (72) for 2
        ("epoch_start", 2, 128, 200, 2),
        ("batch", 0, 128), ("step", 0, 2, True), ("batch", 1, 72), ("step", 1, 2, True),
        ("epoch_end", 2, 128),
        ("train_end", 200),
    ]


class ZeroInput(Callback):
    name = "zero_input"

    def on_batch(self, loop, x, y):
        return torch.zeros_like(x), y


def test_on_batch_changes_what_is_trained_on(mnist):
    cfg = TrainConfig.for_model("classic", epochs=1, progress=False)
    data = mnist.head(300)
    blind = train(cfg, data, log=lambda s: None, callbacks=[ZeroInput()])
    seeing = train(cfg, data, log=lambda s: None)
    assert blind.history[0]["train"]["acc"] < 0.25 < seeing.history[0]["test"]["acc"]


def test_a_hooks_state_is_saved_under_its_name_and_resumed(mnist, tmp_path):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig.for_model("classic", epochs=3, batch_size=100, out=str(out), progress=False)
    state = train_until(cfg, mnist.head(200), 2, callbacks=[Recorder()])
    assert state["callbacks"]["recorder"] == {"counter": 4}
    resumed = Recorder()
    train(cfg, mnist.head(200), log=lambda s: None, callbacks=[resumed], resume=state)
    assert resumed.calls[0] == ("train_start", 2) and resumed.counter == 6
    with pytest.raises(Lenet5Error, match="nothing for the recorder hook"):
        state["callbacks"].pop("recorder")
        train(cfg, mnist.head(200), log=lambda s: None, callbacks=[Recorder()], resume=state)


def test_two_hooks_of_one_name_are_refused(mnist):
    class Unnamed(Callback):
        pass

    assert Unnamed().name == "Unnamed" and Recorder.name == "recorder"
    with pytest.raises(ValueError, match="same name"):
        train(TrainConfig.for_model("classic", epochs=1, progress=False), mnist.head(50),
              log=lambda s: None, callbacks=[Recorder(), Recorder()])


if "test-shift" not in AUGMENTATIONS:
    @register_augmentation("test-shift")
    class Shift(Augmentation):
        """Rolls a random share ``p`` of the images ``pixels`` to the right."""

        def __init__(self, generator, p=0.5, pixels=1):
            super().__init__(generator)
            self.p, self.pixels = p, pixels

        def on_batch(self, loop, x, y):
            chosen = torch.rand(len(x), generator=self.generator) < self.p
            return torch.where(chosen[:, None, None, None], x.roll(self.pixels, -1), x), y


def test_an_augmentation_by_name_draws_from_its_own_generator(mnist, tmp_path):
    data = mnist.head(200)
    runs = {}
    for name, augment in {"plain": {}, "shift": {"test-shift": {"p": 1.0, "pixels": 2}}}.items():
        out = tmp_path / f"{name}.safetensors"
        cfg = TrainConfig.for_model("classic", epochs=1, augment=augment, out=str(out),
                                    progress=False)
        runs[name] = train(cfg, data, log=lambda s: None).history[0]["train"]["loss"]
    assert runs["plain"] != runs["shift"]
    assert seed_for("test-shift", 0) != seed_for("test-shift", 1) != seed_for("distort", 1) == 3


def test_augment_flag(mnist_dir, tmp_path, capsys):
    assert parse_augment("test-shift:p=0.25,pixels=3") == ("test-shift", {"p": 0.25, "pixels": 3})
    out = tmp_path / "m.safetensors"
    assert main(["train", "--limit", "100", "--epochs", "1", "--data-dir", str(mnist_dir),
                 "--augment", "test-shift:pixels=3", "--out", str(out), "--no-progress"]) == 0
    from lenet5.checkpoint import load_checkpoint

    assert load_checkpoint(out).config["augment"] == {"test-shift": {"pixels": 3}}
    capsys.readouterr()
    assert main(["train", "--augment", "nope", "--out", str(out)]) == 1
    assert "unknown augmentation 'nope'; known augmentations: distort" in capsys.readouterr().err
    assert main(["train", "--augment", "test-shift:p", "--out", str(out)]) == 1
    assert "NAME:KEY=VALUE" in capsys.readouterr().err


def test_csv_log_holds_what_the_jsonl_holds_and_is_resumed_alike(mnist, tmp_path):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig.for_model("classic", epochs=3, out=str(out), progress=False)
    state = train_until(cfg, mnist.head(150), 2)
    train(cfg, mnist.head(150), log=lambda s: None, resume=state)
    records = [json.loads(x) for x in cfg.log_path.read_text().splitlines()]
    with open(out.with_name("m.metrics.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]  # epoch 3, logged then redone: once
    assert list(rows[0])[:6] == ["epoch", "lr", "batch_size", "train_seconds", "train_loss",
                                 "train_correct"]
    for row, record in zip(rows, records):
        assert float(row["test_acc"]) == record["test"]["acc"]
        assert float(row["lr"]) == record["lr"] and int(row["train_total"]) == 150


def doc_example(heading):
    """The first python block after ``heading`` in docs/training.md, up to its first line
    that trains (the examples train on the full data set: the tests train on less)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    block = text.split(heading, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    return block.split("\n\ncfg = ", 1)[0]


def test_the_documented_hook_and_augmentation_work(mnist, tmp_path):
    hook, augmentation = {}, {}
    exec(doc_example("### Writing a hook"), hook)
    if "erase" not in AUGMENTATIONS:
        exec(doc_example("### Writing an augmentation"), augmentation)
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig.for_model("modern", epochs=2, augment={"erase": {"p": 0.5, "size": 6}},
                                out=str(out), progress=False)
    train(cfg, mnist.head(300), log=lambda s: None, callbacks=[hook["GradientNorm"]()])
    records = [json.loads(x) for x in cfg.log_path.read_text().splitlines()]
    assert all(r["grad_norm"] > 0 for r in records) and len(records) == 2
    assert "grad_norm" in out.with_name("m.metrics.csv").read_text().splitlines()[0]
    erase = AUGMENTATIONS.get("erase")(torch.Generator().manual_seed(0), p=1.0, size=6)
    x = torch.randn(4, 1, 32, 32)
    erased = erase.on_batch(None, x, torch.zeros(4))[0]
    assert ((erased != x).flatten(1).sum(1) <= 36).all() and (erased != x).any()
