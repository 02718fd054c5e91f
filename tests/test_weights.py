"""The shipped weights: every file verified and re-evaluated against its card; the
registry, the hash check, the names commands take."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import lenet5
from lenet5.errors import Lenet5Error
from lenet5.weights import WEIGHTS, Weights, get_weights, list_weights, resolve_checkpoint

from .conftest import run_cli

MAX_BYTES = 600 * 1024
# where `lenet5 eval` prints the figure a card records, by task
ACCURACY = {"classify": r"\(test set\).* acc: ([0-9.]+)", "read": r"\(test set\).* exact: ([0-9.]+)"}


@pytest.mark.parametrize("name", list_weights())
def test_shipped_file_matches_its_card(name, mnist_dir):
    """The file's hash, its size, the data it was trained on, and its test accuracy
    re-measured here by `lenet5 eval NAME`, as recorded."""
    w = get_weights(name)
    path = w.verify()
    assert path.stat().st_size < MAX_BYTES
    ckpt = w.load()
    assert ckpt.model_name == w.model and ckpt.dataset["name"] == w.dataset
    assert ckpt.dataset["sha256"] == w.dataset_sha256
    assert w.command.startswith("lenet5 train ")
    r = run_cli("eval", name, "--data-dir", str(mnist_dir))
    assert r.returncode == 0, r.stderr
    assert "differs from the data the model was trained on" not in r.stderr
    measured = float(re.search(ACCURACY[w.task], r.stdout).group(1))
    assert abs(measured - w.accuracy) < 1e-4, (measured, w.accuracy)


@pytest.fixture
def fake_weights(small_run, tmp_path, monkeypatch) -> Weights:
    """A registered entry for the small test run's checkpoint, copied to tmp_path."""
    import hashlib

    from lenet5.checkpoint import load_checkpoint

    data = small_run.read_bytes()
    ckpt = load_checkpoint(small_run)
    w = Weights(model="classic", dataset="testset", sha256=hashlib.sha256(data).hexdigest(),
                accuracy=ckpt.metrics["test"]["acc"], command="lenet5 train --model classic",
                dataset_sha256=ckpt.dataset["sha256"])
    (tmp_path / w.file).write_bytes(data)
    monkeypatch.setattr(Weights, "path", property(lambda self: tmp_path / self.file))
    monkeypatch.setitem(WEIGHTS._entries, w.name, w)
    return w


def test_create_model_with_weights(fake_weights, small_run):
    from lenet5.checkpoint import load_checkpoint

    model = lenet5.create_model("classic", weights="testset")
    assert not model.training
    saved = load_checkpoint(small_run).state_dict
    for key, value in model.state_dict().items():
        assert value.equal(saved[key]), key
    with pytest.raises(Lenet5Error, match="trained with num_classes=10"):
        lenet5.create_model("classic", weights="testset", num_classes=5)
    with pytest.raises(Lenet5Error, match="unknown shipped weights 'classic.nope'"):
        lenet5.create_model("classic", weights="nope")


def test_a_changed_file_is_refused_with_one_line(fake_weights):
    path = fake_weights.path
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one flipped bit in the last weight
    path.write_bytes(bytes(data))
    with pytest.raises(Lenet5Error, match=r"does not match its recorded SHA-256.*reinstall"):
        fake_weights.load()
    path.unlink()
    with pytest.raises(Lenet5Error, match="cannot read"):
        fake_weights.load()


def test_resolve_checkpoint_takes_paths_and_names(fake_weights, small_run, tmp_path):
    assert resolve_checkpoint(fake_weights.name).model_name == "classic"
    assert resolve_checkpoint(str(small_run)).model_name == "classic"
    with pytest.raises(Lenet5Error, match="is a checkpoint of model 'classic', not 'modern'"):
        resolve_checkpoint(str(small_run), expect_model="modern")
    with pytest.raises(Lenet5Error, match="does not exist: neither a checkpoint file nor shipped weights"):
        resolve_checkpoint("nonsense")
    with pytest.raises(Lenet5Error, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "missing.safetensors"))


def test_cli_lists_and_shows_weights():
    listed = run_cli("weights")
    assert listed.returncode == 0, listed.stderr
    names = list_weights()
    if not names:
        assert listed.stdout.strip() == "no shipped weights"
        return
    for name in names:
        assert name in listed.stdout
    shown = run_cli("weights", names[0], "--json")
    card = json.loads(shown.stdout)
    assert card["name"] == names[0] and card["verified"] is True
    assert card["sha256"] == get_weights(names[0]).sha256


def test_cli_unknown_weights_is_one_line():
    r = run_cli("weights", "nope.mnist")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "unknown shipped weights 'nope.mnist'" in r.stderr


def test_package_data_ships_the_files():
    """The wheel carries every catalogued file (package data globs them)."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["lenet5"]
    assert "weights/*.safetensors" in globs and "**/*.json" in globs


SHIPPED = {"classic.mnist", "modern.mnist", "lenet5-1998.mnist", "reader.mnist"}


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_a_shipped_file_records_no_path_of_the_machine_that_trained_it(name):
    from safetensors import safe_open

    with safe_open(str(get_weights(name).path), framework="pt") as f:
        meta = json.loads(f.metadata()["lenet5"])
    assert meta["config"]["data_dir"] is None
    paths = re.findall(r'"(/[^"]*|[A-Za-z]:\\\\[^"]*)"', json.dumps(meta))
    assert not paths, paths


def test_the_promised_weights_ship_with_a_default_for_each_task():
    from lenet5.weights import DEFAULTS, default_weights

    assert SHIPPED <= set(list_weights("classify"))
    assert default_weights("classify").name in list_weights("classify")
    for task, name in DEFAULTS.items():
        assert get_weights(name).task == task


def test_predict_with_no_checkpoint_uses_the_default(tmp_path):
    """``lenet5 predict IMAGE``: the first word is an image, so the shipped default reads it."""
    from PIL import Image, ImageDraw

    from lenet5.weights import default_weights

    img = Image.new("L", (120, 160), 255)
    ImageDraw.Draw(img).line([(60, 20), (60, 140)], fill=0, width=12)  # a "1"
    img.save(tmp_path / "one.png")
    r = run_cli("predict", str(tmp_path / "one.png"), "--json")
    assert r.returncode == 0, r.stderr
    (answer,) = json.loads(r.stdout)
    assert answer["digit"] == 1
    named = run_cli("predict", default_weights("classify").name, str(tmp_path / "one.png"), "--json")
    assert json.loads(named.stdout) == json.loads(r.stdout)
    alone = run_cli("predict", "modern.mnist")
    assert alone.returncode == 1 and "nothing to read" in alone.stderr


def test_serve_with_no_checkpoint_serves_the_shipped_models():
    from lenet5.cli.serve import shipped_models
    from lenet5.weights import DEFAULTS

    served = shipped_models()
    assert set(served[:len(DEFAULTS)]) == set(DEFAULTS.values())  # each kind's default first
    assert SHIPPED <= set(served) and set(served) == set(list_weights())
