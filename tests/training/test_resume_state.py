"""A resume state that does not hold what it should: one line, exit 1, nothing built first.
And a state of the earlier format (1) still resumes, exactly."""

import dataclasses
import json

import pytest
import torch

from lenet5.checkpoint import load_checkpoint
from lenet5.cli import main
from lenet5.training import TrainConfig, train
from lenet5.training.resume import VERSION, state_path_for
from tests.training.stopping import train_until


@pytest.fixture(scope="module")
def run(mnist, tmp_path_factory):
    """A classic run with a weight average and distortions, stopped after epoch 1 of 3
    (its state file), and the same run never stopped (its checkpoint)."""
    data = mnist.head(200)
    tmp = tmp_path_factory.mktemp("state")
    cfg = TrainConfig.for_model("classic", epochs=3, ema=0.9, distort=0.5, progress=False,
                                out=str(tmp / "stopped.safetensors"))

    train_until(cfg, data, 1)
    state = state_path_for(cfg.out)
    whole = dataclasses.replace(cfg, out=str(tmp / "whole.safetensors"))
    train(whole, data, log=lambda s: None)
    return state, load_checkpoint(whole.out)


def write(tmp_path, state):
    path = tmp_path / "run.state.pt"
    torch.save(state, path)
    return path


def set_config(**values):
    def change(state):
        state["config"] = json.dumps({**json.loads(state["config"]), **values})
    return change


def set_item(key, value):
    return lambda state: state.__setitem__(key, value)


BROKEN = {
    "config is not JSON": (set_item("config", "{not json"), "not JSON"),
    "config is a list": (set_item("config", "[1, 2]"), "not a JSON object"),
    "epochs as text": (set_config(epochs="ten"), "epochs is 'ten', not a int"),
    "lr as a list": (set_config(lr=[1]), "lr is \\[1\\]"),
    "huge num_classes": (set_config(model_args={"num_classes": 10**9}), "num_classes=1000000000"),
    "evaluation batch 0": (set_config(eval_batch_size=0), "batch sizes .* must be positive"),
    "seed past 64 bits": (set_config(seed=2**70), "out of range"),
    "augmentation options as a number": (set_config(augment={"distort": 5}), "KEY=VALUE pairs"),
    "tensorboard under a file": (set_config(tensorboard="/dev/null/tb"), "cannot write to /dev/null/tb"),
    "epoch as text": (set_item("epoch", "1"), "'epoch' is not an epoch number"),
    "epoch past the end": (set_item("epoch", 7), "does not hold one record for each"),
    "history short": (set_item("history", []), "one record for each of the 1 epochs"),
    "weights of another shape": (
        lambda s: s["model"].__setitem__("features.c1.weight", torch.zeros(3, 3)),
        "the weights in the state does not fit this run"),
    "weights as text": (set_item("model", "weights"), "'model' is not the weights"),
    "a generator's state cut short": (
        lambda s: s["generators"].__setitem__("shuffle", torch.zeros(3, dtype=torch.uint8)),
        "the shuffle generator's state .* does not fit"),
    "no hooks' states": (set_item("callbacks", {}), "nothing for the distort hook"),
    "a hook's state of another kind": (
        lambda s: s["callbacks"].__setitem__("ema", {"weights": {}, "updates": 3}),
        "the ema hook's state .* does not fit"),
    "random states missing": (set_item("rng", {}), "the random states .* does not fit"),
    "dataset limit as text": (set_item("dataset", json.dumps({"limit": "200"})),
                              "limit '200' is not a number of images"),
    "version as text": (set_item("version", "2"), "no valid format version"),
    "newer version": (set_item("version", VERSION + 1), "newer lenet5"),
    "not a dict": (lambda s: s.clear(), "not a lenet5 training state"),
}


@pytest.mark.parametrize("broken", BROKEN)
def test_a_malformed_state_is_one_line_and_exit_1(broken, run, tmp_path, mnist_dir, capsys):
    change, message = BROKEN[broken]
    state = torch.load(run[0], weights_only=True)
    change(state)
    path = write(tmp_path, state)
    assert main(["train", "--resume", str(path), "--data-dir", str(mnist_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lenet5: error: "), err
    assert __import__("re").search(message, err[0]), err[0]
    assert not path.with_name("run.safetensors").exists()


def test_a_state_of_format_1_resumes_exactly(run, tmp_path, mnist_dir):
    """Format 1 kept the weight average and the distortions' generator apart from the hooks."""
    state = torch.load(run[0], weights_only=True)
    hooks = state.pop("callbacks")
    ema = hooks["ema"]
    state.update(version=1, average={**{f"module.{k}": v for k, v in ema["weights"].items()},
                                     "n_averaged": torch.tensor(ema["updates"])})
    state["generators"]["distort"] = hooks["distort"]["generator"]
    path = write(tmp_path, state)
    assert main(["train", "--resume", str(path), "--data-dir", str(mnist_dir), "--no-progress"]) == 0
    resumed, whole = load_checkpoint(path.with_name("run.safetensors")), run[1]
    for k, v in whole.state_dict.items():
        assert torch.equal(resumed.state_dict[k], v), k
