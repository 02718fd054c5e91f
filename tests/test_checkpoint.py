"""Checkpoints refused at load, with one line, when their metadata or weights are wrong:
malformed metadata, corrupted, non-float or non-finite weights, tensors that do not fit the
model, model arguments that would build something absurd. (Round trips of good checkpoints
are tested with training, in tests/training/test_train.py.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save

import lenet5
from benchmarks.bounded_memory import huge_checkpoint, refuse_in_child
from lenet5.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, weights_sha256
from lenet5.cli import main
from lenet5.errors import Lenet5Error
from lenet5.models import get_model_entry


def make_checkpoint(path: Path, model: str = "classic", **model_args) -> Path:
    """An untrained model saved as `lenet5 train` saves one (metadata of every kind)."""
    torch.manual_seed(0)
    args = {"num_classes": 10, "in_channels": 1, **model_args}
    net = lenet5.create_model(model, **args)
    classes = [str(i) for i in range(args["num_classes"])]
    return save_checkpoint(path, Checkpoint(
        model, args, get_model_entry(model).preprocess, net.state_dict(),
        metrics={"test": {"acc": 0.1, "loss": 2.3}, "epochs": 1},
        dataset={"name": "mnist", "sha256": "0" * 64, "classes": classes},
        config={"loss": "cross_entropy", "loss_args": {}, "eval_batch_size": 256}))


def read_raw(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["lenet5"]), {k: f.get_tensor(k) for k in f.keys()}


def write_raw(path: Path, meta: dict, tensors: dict[str, torch.Tensor],
              rehash: bool = True) -> Path:
    """Write a checkpoint file as given (``rehash``: with the hash of these tensors, so that
    only what the test changed is wrong)."""
    if rehash and "weights_sha256" in meta:
        meta = {**meta, "weights_sha256": weights_sha256(tensors)}
    path.write_bytes(safetensors_save(tensors, metadata={"lenet5": json.dumps(meta)}))
    return path


def tamper(good: Path, out: Path, keys: str, value) -> Path:
    """A copy of ``good`` with the metadata entry at dotted ``keys`` set to ``value``."""
    meta, tensors = read_raw(good)
    *parents, last = keys.split(".")
    node = meta
    for k in parents:
        node = node[k]
    node[last] = value
    return write_raw(out, meta, tensors)


# (metadata entry, bad value, what the one-line error must say)
BAD_METADATA = [
    ("preprocess.std", 0, "std must be a number from"),
    ("preprocess.std", -0.3, "std must be a number from"),
    ("preprocess.std", "0.3", "std must be a number"),
    ("preprocess.mean", math.nan, "mean must be a finite number"),
    ("preprocess.mean", None, "mean must be a finite number"),
    ("preprocess.pad", -2, "pad must be"),
    ("preprocess.pad", 2.5, "pad must be"),
    ("preprocess.pad", "2", "pad must be"),
    ("preprocess.pad", 9, "needs pad 2"),
    ("preprocess", [2, 0.1, 0.3], "preprocess must be"),
    ("metrics", [0.98], "metrics must be"),
    ("metrics.test", 0.98, "metrics.test must be"),
    ("metrics.test.acc", "high", "metrics.test.acc must be"),
    ("model_args", [10, 1], "model_args must be"),
    ("model_args.num_classes", "10", "num_classes must be an integer"),
    ("model_args.num_classes", 10.0, "num_classes must be an integer"),
    ("model_args.num_classes", True, "num_classes must be an integer"),
    ("model_args.num_classes", 0, "num_classes must be from 1"),
    ("model_args.num_classes", 10**12, "num_classes must be from 1"),
    ("model_args.in_channels", -1, "in_channels must be from 1"),
    ("model_args.width", 4, "no argument 'width'"),
    ("model_args.num_classes", 12, "classifier.output.weight is 10x84 in the file"),
    ("dataset", "mnist", "dataset must be"),
    ("dataset.classes", "0123456789", "dataset.classes must be"),
    ("dataset.classes", ["0", "1"], "2 class names for 10 classes"),
    ("dataset.name", 7, "dataset.name must be"),
    ("config", ["adam"], "config must be"),
    ("config.loss_args", [0.1], "config.loss_args must be"),
    ("config.eval_batch_size", "big", "eval_batch_size must be"),
    ("config.loss", 3, "config.loss must be"),
    ("version", "1", "version must be"),
    ("model", ["classic"], "unknown model"),
    ("metrics.test.acc", 10**400, "metrics.test.acc must be"),  # too big for a float
    ("preprocess.std", 10**400, "std must be a number from"),
]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("good") / "classic.safetensors")


def test_good_checkpoint_records_and_checks_the_weights_hash(good):
    meta, tensors = read_raw(good)
    assert meta["weights_sha256"] == weights_sha256(tensors)
    ckpt = load_checkpoint(good)
    assert ckpt.model_args == {"num_classes": 10, "in_channels": 1}
    assert ckpt.build_model()(torch.zeros(1, 1, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("keys,value,match", BAD_METADATA,
                         ids=[f"{k}={v!r}"[:40] for k, v, _ in BAD_METADATA])
def test_malformed_metadata_is_refused_at_load(good, tmp_path, keys, value, match):
    bad = tamper(good, tmp_path / "bad.safetensors", keys, value)
    with pytest.raises(Lenet5Error, match=match) as e:
        load_checkpoint(bad)
    assert "\n" not in str(e.value) and str(bad) in str(e.value)


def test_metadata_nested_too_deep_is_not_a_checkpoint(good, tmp_path):
    _, tensors = read_raw(good)
    bad = tmp_path / "deep.safetensors"
    bad.write_bytes(safetensors_save(tensors, metadata={"lenet5": "[" * 100_000}))
    with pytest.raises(Lenet5Error, match="a safetensors file but not a lenet5 checkpoint"):
        load_checkpoint(bad)


def test_flipped_bytes_in_the_weights_are_detected(good, tmp_path):
    data = bytearray(good.read_bytes())
    data[-100] ^= 0x10  # a bit of the last tensor's data (the file ends with tensor data)
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(Lenet5Error, match="weights do not match the SHA-256 recorded"):
        load_checkpoint(bad)


def test_int8_and_non_finite_weights_are_refused(good, tmp_path):
    meta, tensors = read_raw(good)
    name = "features.c1.weight"
    as_int8 = {**tensors, name: tensors[name].mul(100).to(torch.int8)}
    with pytest.raises(Lenet5Error, match=f"tensor {name} is int8, not floating point"):
        load_checkpoint(write_raw(tmp_path / "int8.safetensors", meta, as_int8))
    for value in (math.nan, math.inf):
        t = tensors[name].clone()
        t[0, 0, 0, 0] = value
        with pytest.raises(Lenet5Error, match=f"tensor {name} holds NaN or infinite values"):
            load_checkpoint(write_raw(tmp_path / "nan.safetensors", meta, {**tensors, name: t}))


def test_tensors_that_do_not_fit_the_model_are_named(good, tmp_path):
    meta, tensors = read_raw(good)
    name = "features.c3.weight"
    cases = [
        ({**tensors, name: torch.zeros(16, 6, 3, 3)},
         rf"weights do not fit model 'classic' \(num_classes=10, in_channels=1\): tensor {name} "
         "is 16x6x3x3 in the file, the model needs 16x6x5x5"),
        ({k: v for k, v in tensors.items() if k != name}, f"the file lacks tensor {name}"),
        ({**tensors, "extra.weight": torch.zeros(3)},
         "holds tensor extra.weight, which the model does not have"),
    ]
    for i, (state, match) in enumerate(cases):
        with pytest.raises(Lenet5Error, match=match):
            load_checkpoint(write_raw(tmp_path / f"{i}.safetensors", meta, state))


def test_older_checkpoint_without_a_hash_loads_with_a_warning(good, tmp_path, capsys):
    meta, tensors = read_raw(good)
    del meta["weights_sha256"]
    old = write_raw(tmp_path / "old.safetensors", meta, tensors)
    ckpt = load_checkpoint(old)
    assert torch.equal(ckpt.state_dict["features.c1.weight"], tensors["features.c1.weight"])
    assert "records no hash of its weights" in capsys.readouterr().err
    with pytest.raises(Lenet5Error, match="metrics must be"):  # refused: no warning then
        load_checkpoint(tamper(old, tmp_path / "older.safetensors", "metrics", [1]))
    assert capsys.readouterr().err == ""
    meta["weights_sha256"] = "not a hash"
    with pytest.raises(Lenet5Error, match="weights_sha256 must be"):
        load_checkpoint(write_raw(old, meta, tensors, rehash=False))


def test_every_model_is_checked_without_building_it(tmp_path):
    """The check builds each model on PyTorch's meta device (no memory): it must work for
    every registered model, and a model argument absurd for the weights is caught there."""
    for name in lenet5.list_models():
        if name == "alexnet":
            continue  # 244 MB of weights to write: the same code path, tested below at no cost
        path = make_checkpoint(tmp_path / f"{name}.safetensors", name)
        assert load_checkpoint(path).model_name == name
    meta, tensors = read_raw(tmp_path / "classic.safetensors")
    meta["model"], meta["model_args"] = "alexnet", {"num_classes": 100_000, "in_channels": 3}
    meta["preprocess"] = get_model_entry("alexnet").preprocess.to_dict()
    with pytest.raises(Lenet5Error, match="lacks tensor features.0.weight"):
        load_checkpoint(write_raw(tmp_path / "alexnet.safetensors", meta, tensors))


def test_huge_num_classes_is_refused_before_any_allocation(tmp_path):
    """AlexNet with 2,050,000 classes: 33.6 GB in its last layer. Measured in a child
    process: its peak memory stays that of the imports."""
    (message,), peak_kib = refuse_in_child("checkpoint", str(huge_checkpoint(tmp_path / "h.st")))
    assert "model_args.num_classes must be from 1 to 100,000, not 2050000" in message
    assert peak_kib < 1024 * 1024  # < 1 GiB


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
def test_cli_refuses_malformed_metadata_with_one_line(good, tmp_path, mnist_dir, command,
                                                      capsys):
    """(``main`` in this process: the command line as a user runs it, without starting
    Python again for each command.)"""
    bad = tamper(good, tmp_path / "bad.safetensors", "model_args.num_classes", "ten")
    extra = {"eval": ["--data-dir", str(mnist_dir)], "export": ["--format", "torchscript"],
             "predict": [str(tmp_path)]}[command]
    assert main([command, str(bad), *extra]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"lenet5: error: {bad}: bad checkpoint metadata: model_args.num_classes must be an "
        "integer, not 'ten'"]
