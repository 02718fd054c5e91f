"""Resume: a run killed (SIGKILL) or interrupted (Ctrl-C) and resumed ends exactly as the
same run never interrupted: same metrics, same weights, same metrics log."""

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from lenet5.checkpoint import load_checkpoint
from lenet5.cli import main
from lenet5.errors import Lenet5Error
from lenet5.models import get_model_entry, list_models
from lenet5.training import TrainConfig, train
from lenet5.training.logs import append_record
from lenet5.training.resume import load_state, state_path_for
from tests.conftest import run_cli

# small batches and several epochs: long enough (~1 s after epoch 1) for the signal to
# arrive mid-run on a fast machine
RUN = ["--limit", "1000", "--epochs", "8", "--batch-size", "16", "--seed", "5",
       "--model", "keras",  # keras: dropout RNG
       "--ema", "0.9"]  # and a moving average of the weights to carry over


def train_args(mnist_dir, out):
    return ["train", *RUN, "--data-dir", str(mnist_dir), "--out", str(out), "--no-progress"]


def log_records(out):
    """The metrics log without the wall-clock field."""
    lines = out.with_name(out.stem + ".metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "train_seconds"} for x in lines]


def interrupt(mnist_dir, out, sig):
    """Start a training run, send ``sig`` once epoch 1's state is saved (so during epoch 2)."""
    # SIGINT as a terminal delivers it: a shell without job control starts background
    # jobs with SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "lenet5", *train_args(mnist_dir, out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    state = state_path_for(out)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if state.is_file() and load_state(state)["epoch"] >= 1:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert not out.exists(), "the run finished before the signal arrived"
    return proc.returncode, stdout, stderr


@pytest.fixture(scope="module")
def reference(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "m.safetensors"
    r = run_cli(*train_args(mnist_dir, out))
    assert r.returncode == 0, r.stderr
    assert not state_path_for(out).exists()  # removed once the run is finished
    return out


def assert_same_run(out, ref):
    a, b = load_checkpoint(out), load_checkpoint(ref)
    assert a.metrics == b.metrics
    for k, v in b.state_dict.items():
        assert torch.equal(a.state_dict[k], v), k
    assert log_records(out) == log_records(ref)
    assert [r["epoch"] for r in log_records(out)] == list(range(1, 9))
    assert not state_path_for(out).exists()


def test_killed_run_resumes_exactly(reference, mnist_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    rc, _, _ = interrupt(mnist_dir, out, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    r = run_cli("train", "--resume", str(state_path_for(out)), "--data-dir", str(mnist_dir))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("resuming keras after epoch ")
    assert_same_run(out, reference)


def test_ctrl_c_saves_and_says_how_to_resume(mnist_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    rc, _, stderr = interrupt(mnist_dir, out, signal.SIGINT)
    assert rc == 130
    assert "Traceback" not in stderr
    state = state_path_for(out)
    assert f"resume with: lenet5 train --resume {state}" in stderr
    saved = load_state(state)  # resumable: the state of a completed epoch
    assert saved["epoch"] >= 1 and len(saved["history"]) == saved["epoch"]
    assert [r["epoch"] for r in log_records(out)][:saved["epoch"]] == list(range(1, saved["epoch"] + 1))


def test_resume_refuses_what_it_cannot_do(mnist, mnist_dir, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig.for_model("classic", epochs=2, out=str(out), progress=False)

    def stop_after_epoch_1(line):
        if line.startswith("(test set)  epoch: 1"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, mnist.head(300), log=stop_after_epoch_1)
    state = state_path_for(out)
    assert load_state(state)["epoch"] == 0  # epoch 1 was logged but its state not yet saved

    def error(*argv):
        assert main(["train", *argv, "--data-dir", str(mnist_dir)]) == 1
        return capsys.readouterr().err.strip()

    assert error("--resume", str(state), "--lr", "0.5") == (
        f"lenet5: error: --resume: --lr 0.5 differs from the run's {cfg.lr}; a resumed run keeps "
        "its own settings (leave the flag out)")
    assert "--limit 10 differs from the run's 300" in error("--resume", str(state), "--limit", "10")
    assert "goes beside its state file" in error("--resume", str(state), "--out", "other.safetensors")
    assert "does not exist" in error("--resume", str(tmp_path / "nope.state.pt"))
    junk = tmp_path / "junk.state.pt"
    junk.write_bytes(b"not a state")
    assert "is not a lenet5 training state" in error("--resume", str(junk))

    # the same flags as the run are accepted; the run finishes and its state goes away
    assert main(["train", "--resume", str(out), "--seed", "0", "--limit", "300",
                 "--data-dir", str(mnist_dir), "--no-progress"]) == 0
    assert "resuming classic after epoch 0 of 2" in capsys.readouterr().out
    assert not state.exists() and out.is_file()
    assert "that run finished" in error("--resume", str(out))


def test_log_is_appended_not_duplicated(tmp_path):
    log = tmp_path / "m.metrics.jsonl"
    for epoch in (1, 2, 3, 2, 3):  # a run that logged epoch 3, then resumed after epoch 1
        append_record(log, {"epoch": epoch, "x": epoch * 10})
    assert [json.loads(x) for x in log.read_text().splitlines()] == [
        {"epoch": 1, "x": 10}, {"epoch": 2, "x": 20}, {"epoch": 3, "x": 30}]
    append_record(log, {"epoch": 1, "x": 0})  # a new run with the same path starts afresh
    assert log.read_text().count("\n") == 1


def test_state_holds_no_pickled_objects(mnist, tmp_path):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig.for_model("modern", epochs=2, out=str(out), progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, mnist.head(200), log=lambda s: (_ for _ in ()).throw(KeyboardInterrupt()))
    state = torch.load(state_path_for(out), weights_only=True)  # refuses arbitrary objects
    assert set(state["generators"]) == {"shuffle"}
    assert set(state["callbacks"]) == {"batch_ramp", "ema", "progress", "metrics_log"}
    assert state["callbacks"]["ema"]["updates"] == 0  # the hooks' own states, by name
    with pytest.raises(Lenet5Error, match="not a lenet5 training state"):
        torch.save({"format": "something else"}, tmp_path / "x.state.pt")
        load_state(tmp_path / "x.state.pt")


# ------------------------------------------------- every model, resumed after every epoch

def mnist_models():
    """Every registered classifier that trains on MNIST as it is (one input channel); a
    registry that names tasks keeps the string readers out."""
    entries = [get_model_entry(m) for m in list_models()]
    return [e.name for e in entries
            if e.input_size[0] == 1 and getattr(e, "task", "classify") == "classify"]


def resumed_everywhere(cfg, data, tmp_path):
    """Train ``cfg`` keeping a copy of the state after every epoch, then resume from each
    copy; yield (epoch resumed after, the resumed run, the uninterrupted run): their
    checkpoints and histories."""
    out = tmp_path / "run.safetensors"
    cfg = dataclasses.replace(cfg, out=str(out), progress=False)
    saved = []

    def keep_state(record):  # the state on disk is that of the epoch before this one
        saved.append(tmp_path / f"after{record['epoch'] - 1}.state.pt")
        shutil.copyfile(state_path_for(out), saved[-1])

    history = train(cfg, data, log=lambda s: None, on_epoch=keep_state).history
    assert [load_state(p)["epoch"] for p in saved] == list(range(cfg.epochs))
    for path in saved:
        state = load_state(path)
        again = tmp_path / f"resumed{state['epoch']}.safetensors"
        resumed = train(dataclasses.replace(cfg, out=str(again)), data, log=lambda s: None,
                        resume=state).history
        yield state["epoch"], (again, resumed), (out, history)


@pytest.mark.parametrize("model", mnist_models())
def test_every_model_resumed_after_every_epoch_ends_bit_identical(model, mnist, tmp_path):
    """Each model's recipe, made quick: a ramp from epoch 2 (so a run resumes before, into
    and within the doubled epochs; 600 images, so a doubled epoch is one step of 512 and one
    of 88); SDLM with larger batches, its curvature on fewer samples, refreshed within each
    pass."""
    cfg, images = TrainConfig.for_model(model, epochs=3), 300
    if cfg.double_batch_from:
        cfg, images = dataclasses.replace(cfg, double_batch_from=2), 600
    if cfg.optimizer == "sdlm":
        cfg = dataclasses.replace(cfg, batch_size=64, optimizer_args={
            **cfg.optimizer_args, "hessian_samples": 32, "refresh_every": 2})
    for epoch, resumed, uninterrupted in resumed_everywhere(cfg, mnist.head(images), tmp_path):
        assert_same_run_in_process(resumed, uninterrupted, f"{model}, resumed after epoch {epoch}")


def test_every_hook_resumed_after_every_epoch_ends_bit_identical(mnist, tmp_path):
    """Distortions, a weight average, a batch ramp and a validation split at once."""
    cfg = TrainConfig.for_model("classic", epochs=3, distort=0.5, ema=0.9, double_batch_from=2,
                                val_split=0.1)
    for epoch, resumed, uninterrupted in resumed_everywhere(cfg, mnist.head(300), tmp_path):
        assert_same_run_in_process(resumed, uninterrupted, f"resumed after epoch {epoch}")


def assert_same_run_in_process(run, ref, what):
    (out, history), (ref_out, ref_history) = run, ref
    a, b = load_checkpoint(out), load_checkpoint(ref_out)
    assert a.metrics == b.metrics, what
    for k, v in b.state_dict.items():
        assert torch.equal(a.state_dict[k], v), f"{what}: {k}"
    strip = lambda records: [{k: v for k, v in r.items() if k != "train_seconds"}  # noqa: E731
                             for r in records]
    assert strip(history) == strip(ref_history), what
