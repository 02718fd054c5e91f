"""Export: every registered model, both formats, gives PyTorch's logits (<= 1e-4, same
argmax) on the images it is checked on; a failed check writes nothing."""

import pytest
import torch

import lenet5
from lenet5.cli import main
from lenet5.errors import Lenet5Error
from lenet5.export import (
    ATOL,
    FORMATS,
    WithPreprocess,
    export_model,
    onnx_runner,
    onnx_throughput,
    reference_logits,
    torchscript_runner,
)
from lenet5.models import get_model_entry
from tests.conftest import run_cli

RUNNERS = {"onnx": onnx_runner, "torchscript": torchscript_runner}


def model_and_images(name, mnist, n=256):
    """A seeded model of ``name`` and uint8 images it takes: MNIST test images where the
    model takes 28x28 digits (the LeNets), random images of its input size otherwise."""
    entry = get_model_entry(name)
    torch.manual_seed(0)
    model = lenet5.create_model(name, num_classes=10, in_channels=1).eval()
    c, h, w = entry.input_size
    raw = (1, h - 2 * entry.preprocess.pad, w - 2 * entry.preprocess.pad)
    if raw == (1, 28, 28):
        images = mnist.test.images[:n].unsqueeze(1)
    else:
        images = torch.randint(0, 256, (4, *raw), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
    return model, entry.preprocess, images


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("name", lenet5.list_models())
def test_every_model_exports_with_parity(name, fmt, mnist, tmp_path):
    model, pre, images = model_and_images(name, mnist)
    out = tmp_path / f"m{FORMATS[fmt]}"
    report = export_model(model, out, fmt, preprocess=pre, check_images=images)
    assert report.parity.ok and report.parity.images == len(images)
    assert report.parity.max_abs_diff <= ATOL
    assert report.input_name == "images" and report.input_dtype == "uint8"
    # the file on disk is what was checked: run it again, on a batch size not seen before
    got = RUNNERS[fmt](out)(images[:3])
    want = reference_logits(model, images[:3], pre)
    assert (got - want).abs().max() <= ATOL
    assert torch.equal(got.argmax(1), want.argmax(1))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_float_input_is_the_bare_network(fmt, mnist, tmp_path):
    model, pre, images = model_and_images("classic", mnist, 64)
    out = tmp_path / f"m{FORMATS[fmt]}"
    report = export_model(model, out, fmt, preprocess=pre, check_images=images, input="float")
    assert report.input_name == "input" and report.input_shape == ("batch", 1, 32, 32)
    assert report.parity.ok
    if fmt == "onnx":  # the file says how to preprocess: throughput starts from uint8 images
        assert onnx_throughput(out, images, 32, repeats=1) > 0


def test_preprocessing_in_the_graph_is_bit_exact(mnist):
    model, pre, images = model_and_images("modern", mnist, 64)
    assert torch.equal(WithPreprocess(model, pre)(images), reference_logits(model, images, pre))


def test_failed_parity_writes_nothing(mnist, tmp_path, monkeypatch):
    model, pre, images = model_and_images("classic", mnist, 32)
    out = tmp_path / "m.onnx"
    out.write_text("the old file")

    def off_by_a_bit(*args, **kwargs):
        return reference_logits(*args, **kwargs) + 1e-3

    monkeypatch.setattr("lenet5.export.reference_logits", off_by_a_bit)
    with pytest.raises(Lenet5Error, match=r"onnx export does not match PyTorch: max \|logit "
                                          r"diff\| 1.00e-03 \(limit 1e-04\)"):
        export_model(model, out, "onnx", preprocess=pre, check_images=images)
    assert out.read_text() == "the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left


def test_cli_exports_and_checks_the_whole_test_set(mnist, mnist_dir, tmp_path):
    from lenet5.checkpoint import Checkpoint, save_checkpoint

    model, pre, _ = model_and_images("classic", mnist)
    ckpt = tmp_path / "classic.safetensors"
    save_checkpoint(ckpt, Checkpoint("classic", {"num_classes": 10, "in_channels": 1}, pre,
                                     model.state_dict()))
    r = run_cli("export", str(ckpt), "--format", "onnx", "--data-dir", str(mnist_dir))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith(
        f"exported {tmp_path / 'classic.onnx'} (onnx, 0.2")
    assert "input 'images' uint8 [batch, 1, 28, 28] -> 'logits' float32 [batch, 10]" in r.stdout
    assert "parity with PyTorch on 10000 test images: max |logit diff| " in r.stdout
    assert "argmax agrees on 10000/10000" in r.stdout

    # the throughput `lenet5 bench` reports
    assert onnx_throughput(tmp_path / "classic.onnx", mnist.test.images[:512], 128, repeats=1) > 0


def test_cli_refuses_a_missing_checkpoint_before_loading_data(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.safetensors"), "--format", "torchscript"]) == 1
    assert capsys.readouterr().err.strip().endswith("nope.safetensors does not exist")
