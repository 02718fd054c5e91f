"""A model given images it cannot take is refused in one line, before any training."""

import pytest

from lenet5.errors import Lenet5Error
from lenet5.models import check_input, register_model
from lenet5.models.registry import MODELS

from ..conftest import run_cli


def test_the_check_compares_the_registered_input_with_the_padded_images():
    check_input("modern", (28, 28), "mnist")  # padded by 2: 32x32
    check_input("alexnet", (3, 224, 224), "imagefolder")
    check_input("alexnet", (224, 224), "imagefolder")  # channels follow the data
    with pytest.raises(Lenet5Error) as e:
        check_input("alexnet", (28, 28), "mnist")
    message = str(e.value)
    assert "'alexnet' needs 3x224x224 input (224x224 images)" in message
    assert "mnist has 28x28 images" in message and "--dataset imagefolder" in message
    with pytest.raises(Lenet5Error, match=r"needs 1x32x32 input \(28x28 images, padded by 2\)"):
        check_input("classic", (3, 224, 224), "imagefolder")


def test_the_check_reads_the_registry_not_the_name():
    register_model("tiny-test-net", input_size=(1, 16, 16))(lambda **kw: None)
    try:
        check_input("tiny-test-net", (12, 12), "x")  # 12 + 2 * 2 = 16
        with pytest.raises(Lenet5Error, match="'tiny-test-net' needs 1x16x16 input"):
            check_input("tiny-test-net", (28, 28), "mnist")
    finally:
        MODELS._entries.pop("tiny-test-net")


def test_train_alexnet_on_mnist_is_one_line_before_training(mnist_dir, tmp_path):
    out = tmp_path / "a.safetensors"
    proc = run_cli("train", "--model", "alexnet", "--limit", "64", "--data-dir", str(mnist_dir),
                   "--out", str(out), "--no-progress")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lenet5: error: model 'alexnet' needs 3x224x224")
    assert "Traceback" not in proc.stderr and proc.stdout == "" and not out.exists()
