import torch

from lenet5.checkpoint import load_checkpoint
from lenet5.training import TrainConfig, train

from ..conftest import run_cli


def test_train_lenet1998_flags(mnist_dir, tmp_path):
    out = tmp_path / "p.safetensors"
    r = run_cli("train", "--model", "lenet5-1998", "--data-dir", str(mnist_dir), "--limit", "300",
                "--epochs", "1", "--distort", "--map-j", "0.5", "--sdlm-mu", "0.05",
                "--hessian-samples", "50", "--hessian-every", "5", "--out", str(out),
                "--no-progress")
    assert r.returncode == 0, r.stderr
    ckpt = load_checkpoint(out)
    assert ckpt.config["optimizer"] == "sdlm" and ckpt.config["schedule"] == "lecun1998"
    assert ckpt.config["loss_args"] == {"j": 0.5} and ckpt.config["distort"] == 0.9
    assert ckpt.config["optimizer_args"] == {"mu": 0.05, "hessian_samples": 50,
                                             "refresh_every": 5}
    assert abs(ckpt.preprocess.mean / ckpt.preprocess.std - 0.1) < 1e-6


def test_sdlm_flag_with_another_optimizer_is_a_clear_error(mnist_dir, tmp_path):
    r = run_cli("train", "--model", "classic", "--optimizer", "adam", "--sdlm-mu", "0.1",
                "--data-dir", str(mnist_dir), "--limit", "100", "--epochs", "1",
                "--out", str(tmp_path / "x.safetensors"))
    assert r.returncode == 1 and r.stderr.startswith("lenet5: error: optimizer 'adam'")


def test_distort_changes_training_not_evaluation(mnist):
    data = mnist.head(500)

    def run(distort):
        cfg = TrainConfig.for_model("modern", epochs=1, distort=distort, progress=False)
        return train(cfg, data, log=lambda s: None)

    plain, a, b = run(False), run(True), run(True)
    assert torch.equal(a.model.features.c1.weight, b.model.features.c1.weight)  # seeded
    assert not torch.equal(a.model.features.c1.weight, plain.model.features.c1.weight)
    assert a.test.total == 500


def test_distort_share_out_of_range_is_a_clear_error(mnist_dir, tmp_path):
    r = run_cli("train", "--model", "modern", "--distort", "1.5", "--data-dir", str(mnist_dir),
                "--limit", "100", "--epochs", "1", "--out", str(tmp_path / "x.safetensors"))
    assert r.returncode == 1 and r.stderr.startswith("lenet5: error: --distort takes the share")
    assert len(r.stderr.strip().splitlines()) == 1
