"""The command line as a user drives it: real subprocesses, exit codes, one-line errors."""

import os
import stat

import pytest
import torch

from lenet5.checkpoint import load_checkpoint
from tests.conftest import run_cli


def assert_one_line_error(r, pattern):
    import re

    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.strip().splitlines() if x]
    assert len(lines) == 1, r.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_help_and_version():
    r = run_cli("--help")
    assert r.returncode == 0 and "train" in r.stdout
    assert run_cli("--version").stdout.startswith("lenet5 ")


def test_summary_prints_the_totals():
    r = run_cli("summary", "classic")
    assert r.returncode == 0
    assert "Total params:        61,706" in r.stdout
    assert "[-1, 6, 28, 28]" in r.stdout
    r = run_cli("summary", "--all")
    assert r.stdout.count("Total params:        61,706") == 6
    assert "Total params:        61,100,840" in r.stdout


def test_unknown_model():
    assert_one_line_error(run_cli("summary", "lenet6"), r"unknown model 'lenet6'; known models: .*modern")
    assert_one_line_error(run_cli("train", "--model", "lenet6"), r"unknown model 'lenet6'")


def test_missing_data(tmp_path):
    assert_one_line_error(run_cli("train", "--data-dir", str(tmp_path)),
                          r"lacks train-images-idx3-ubyte")
    assert_one_line_error(run_cli("train", "--data-dir", str(tmp_path / "nope")),
                          r"is not a directory")


def test_corrupt_data(mnist_dir, tmp_path):
    for f in mnist_dir.glob("*.gz"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    assert_one_line_error(run_cli("eval", "x", "--data-dir", str(tmp_path)), "does not exist")
    assert_one_line_error(run_cli("train", "--data-dir", str(tmp_path)),
                          r"t10k-images-idx3-ubyte.gz is truncated or corrupt")


@pytest.fixture(scope="module")
def trained(mnist_dir, tmp_path_factory):
    """One short CLI training run shared by the tests below."""
    out = tmp_path_factory.mktemp("run") / "classic.safetensors"
    r = run_cli("train", "--epochs", "2", "--limit", "3000", "--data-dir", str(mnist_dir),
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out, r.stdout


def test_train_prints_the_lines_and_writes_the_log(trained):
    out, stdout = trained
    lines = stdout.splitlines()
    assert lines[0].startswith("(train set) epoch: 1 loss: ")
    assert lines[3].startswith("(test set)  epoch: 2 loss: ")
    assert out.is_file() and out.with_name("classic.metrics.jsonl").is_file()


def test_eval_prints_exactly_what_training_printed(trained, mnist_dir):
    out, stdout = trained
    last_test = [x for x in stdout.splitlines() if x.startswith("(test set)")][-1]
    r = run_cli("eval", str(out), "--limit", "3000", "--data-dir", str(mnist_dir))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == last_test.replace(" epoch: 2", "")


def test_eval_of_another_model_is_refused(trained, mnist_dir):
    out, _ = trained
    assert_one_line_error(run_cli("eval", str(out), "--model", "modern",
                                  "--data-dir", str(mnist_dir)),
                          r"checkpoint of model 'classic', not 'modern'")


def test_not_a_checkpoint(tmp_path, mnist_dir):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a checkpoint")
    assert_one_line_error(run_cli("eval", str(junk), "--data-dir", str(mnist_dir)),
                          r"not a lenet5 checkpoint")


def test_weights_of_another_shape_are_refused(trained, tmp_path):
    import json

    from safetensors.torch import save_file

    out, _ = trained
    ckpt = load_checkpoint(out)
    meta = ckpt.metadata() | {"model": "modern-c5conv"}
    bad = tmp_path / "bad.safetensors"
    save_file(ckpt.state_dict, str(bad), metadata={"lenet5": json.dumps(meta)})
    assert_one_line_error(run_cli("eval", str(bad)), r"weights do not fit model 'modern-c5conv'")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_output_directory(tmp_path, mnist_dir):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        assert_one_line_error(run_cli("train", "--data-dir", str(mnist_dir), "--limit", "100",
                                      "--out", str(locked / "m.safetensors")),
                              r"cannot write to .*locked")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_a_good_checkpoint_survives_a_failed_write(trained, tmp_path):
    """Atomic writes: a failure while writing leaves the old file as it was."""
    from lenet5.checkpoint import save_checkpoint

    out, _ = trained
    before = out.read_bytes()
    ckpt = load_checkpoint(out)
    ckpt.state_dict = {**ckpt.state_dict, "bad": object()}  # not a tensor: fails mid-save
    with pytest.raises(AttributeError):
        save_checkpoint(out, ckpt)
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []


def test_prepare_from_a_directory_fills_the_cache(mnist_dir, tmp_path):
    r = run_cli("prepare", "--data-dir", str(mnist_dir), env={"LENET5_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ok  ") == 4
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(
        p.name for p in mnist_dir.glob("*.gz"))
    # now every command finds it without --data-dir
    r = run_cli("train", "--limit", "200", "--epochs", "1", "--out", str(tmp_path / "m.safetensors"),
                env={"LENET5_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr


def test_data_dir_environment_variable(mnist_dir, tmp_path):
    r = run_cli("train", "--limit", "200", "--epochs", "1", "--out", str(tmp_path / "m.safetensors"),
                env={"LENET5_DATA_DIR": str(mnist_dir)})
    assert r.returncode == 0, r.stderr


def test_output_path_that_cannot_be_a_directory(tmp_path, mnist_dir):
    """Works as root too: the parent of --out is a regular file."""
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    assert_one_line_error(run_cli("train", "--data-dir", str(mnist_dir), "--limit", "100",
                                  "--out", str(blocker / "m.safetensors")),
                          r"cannot write to .*file")
    assert blocker.read_text() == "keep me"


def test_bad_ema_decay_is_one_line(tmp_path, mnist_dir):
    out = tmp_path / "m.safetensors"
    assert_one_line_error(run_cli("train", "--data-dir", str(mnist_dir), "--limit", "100",
                                  "--ema", "1.5", "--out", str(out)),
                          r"--ema must be in \[0, 1\)")
    assert not out.exists()


def test_eval_defaults_to_the_dataset_the_checkpoint_was_trained_on(fashion_dir, tmp_path):
    out = tmp_path / "f.safetensors"
    r = run_cli("train", "--dataset", "fashion-mnist", "--data-dir", str(fashion_dir),
                "--limit", "300", "--epochs", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = run_cli("eval", str(out), "--data-dir", str(fashion_dir), "--limit", "300")
    assert r.returncode == 0, r.stderr  # read as Fashion-MNIST, not refused as a wrong MNIST
    assert r.stdout.startswith("(test set)  loss: ")


def test_out_that_is_a_directory_is_refused_before_anything_is_loaded(tmp_path):
    """No --data-dir and no data in the cache: the error is the --out one, so it came first."""
    (tmp_path / "runs").mkdir()
    assert_one_line_error(run_cli("train", "--out", str(tmp_path / "runs"), "--epochs", "1"),
                          r"--out .*runs is a directory; give the checkpoint's file name")
    (tmp_path / "m.state.pt").mkdir()  # a directory where the resume state would go
    assert_one_line_error(run_cli("train", "--out", str(tmp_path / "m.safetensors")),
                          r"m.state.pt is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.state.pt", "runs"]


def test_a_checkpoint_trained_differently_is_not_replaced(mnist_dir, tmp_path, capsys):
    from lenet5.cli import main

    out = tmp_path / "m.safetensors"

    def train(*flags):
        code = main(["train", "--limit", "100", "--data-dir", str(mnist_dir), "--out", str(out),
                     "--no-progress", *flags])
        return code, capsys.readouterr().err.strip()

    assert train("--epochs", "2") == (0, "")
    first = out.read_bytes()
    code, err = train("--epochs", "1")  # a quicker experiment to the same path: refused
    assert code == 1 and err.startswith(f"lenet5: error: {out} holds a model trained "
                                        "differently (epochs 2, not 1); pass --overwrite")
    assert "\n" not in err and out.read_bytes() == first
    code, err = train("--epochs", "2", "--limit", "50")  # other data: refused too
    assert code == 1 and "other data (limit 100, not 50)" in err
    # the same settings and data train the same model: it may be replaced
    weights = load_checkpoint(out).state_dict
    assert train("--epochs", "2", "--device", "cpu") == (0, "")
    again = load_checkpoint(out)
    assert again.config["device"] == "cpu"  # replaced, with the same weights bit for bit
    assert all(torch.equal(again.state_dict[k], v) for k, v in weights.items())
    assert train("--epochs", "1", "--overwrite") == (0, "")
    assert load_checkpoint(out).config["epochs"] == 1
    out.write_bytes(b"something else")
    code, err = train("--epochs", "1")
    assert code == 1 and "exists and is not a lenet5 checkpoint; pass --overwrite" in err


def test_a_closed_pipe_is_no_error():
    """``lenet5 summary --all | head -1``: no "internal error" when the reader leaves."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "lenet5", "summary", "--all"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # before the rest is written: the next writes hit a broken pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141) and "error" not in err, err
