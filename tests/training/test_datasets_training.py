"""Training on datasets beyond MNIST: Fashion-MNIST from the system, AlexNet on a folder."""

from lenet5.checkpoint import load_checkpoint
from lenet5.cli.common import image_format_for
from lenet5.data import load_dataset
from lenet5.training import TrainConfig, train
from tests.data.test_folder import make_folder


def test_modern_learns_a_slice_of_fashion_mnist(fashion_dir, tmp_path):
    data = load_dataset("fashion-mnist", data_dir=fashion_dir).head(1000)
    out = tmp_path / "f.safetensors"
    cfg = TrainConfig.for_model("modern", dataset="fashion-mnist", epochs=1, batch_size=32,
                                out=str(out), progress=False)
    result = train(cfg, data, log=lambda s: None)
    assert result.test.acc > 0.4  # chance is 0.1
    ckpt = load_checkpoint(out)
    assert ckpt.classes[0] == "T-shirt/top" and ckpt.classes[9] == "Ankle boot"
    assert ckpt.dataset["name"] == "fashion-mnist"


def test_alexnet_smoke_run_on_224px_colour_folder(tmp_path):
    root = make_folder(tmp_path / "f", 3, colour=True, size=(240, 240))
    data = load_dataset("imagefolder", root, image_format=image_format_for("alexnet"))
    cfg = TrainConfig.for_model("alexnet", epochs=1, batch_size=2, device="cpu", progress=False)
    result = train(cfg, data, log=lambda s: None)
    assert result.history[0]["train"]["total"] == 4 and result.test.total == 2
    assert result.model.classifier[-1].out_features == 2
    assert result.model.features[0].in_channels == 3
