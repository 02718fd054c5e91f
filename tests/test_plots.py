"""``lenet5 plot`` and lenet5.plots: every picture written, valid, and the layers found."""

import shutil
import sys

import pytest
import torch
from PIL import Image
from torch import nn

from lenet5 import create_model
from lenet5.cli import main
from lenet5.errors import Lenet5Error
from lenet5.plots import (
    FILES,
    feature_layers,
    feature_maps,
    first_conv,
    plot_feature_maps,
    plot_kernels,
    read_metrics_log,
)
from tests.conftest import run_cli


def assert_png(path, min_size=(300, 200)):
    assert path.is_file() and path.stat().st_size > 5000, path
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width >= min_size[0] and img.height >= min_size[1]
        img.verify()


def test_plot_writes_every_picture(small_run, mnist_dir, tmp_path):
    out = tmp_path / "plots"
    r = run_cli("plot", str(small_run), "--data-dir", str(mnist_dir), "--limit", "1000",
                "--out", str(out), "--index", "7")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES.values())
    assert r.stdout.split() == [str(out / f) for f in FILES.values()]
    for f in FILES.values():
        assert_png(out / f)


def test_plot_without_a_log_skips_the_curves(small_run, mnist_dir, tmp_path, capsys):
    ckpt = tmp_path / "alone.safetensors"
    shutil.copyfile(small_run, ckpt)
    assert main(["plot", str(ckpt), "--data-dir", str(mnist_dir), "--limit", "200"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("lenet5: warning: no metrics log at ") and "curves skipped" in err
    written = sorted(p.name for p in (tmp_path / "alone-plots").iterdir())
    assert written == sorted(f for k, f in FILES.items() if k != "curves")


def test_plot_bad_input(small_run, mnist_dir, tmp_path, capsys):
    bad_log = tmp_path / "bad.jsonl"
    bad_log.write_text('{"epoch": 1, "train": {}}\nnot json\n')
    common = ["--out", str(tmp_path / "o"), "--data-dir", str(mnist_dir), "--limit", "100"]
    assert main(["plot", str(small_run), "--log", str(bad_log), *common]) == 1
    assert capsys.readouterr().err.strip() == \
        f"lenet5: error: {bad_log}:2: not a JSON line of a metrics log"
    assert main(["plot", str(small_run), "--log", str(tmp_path / "nope.jsonl"), *common]) == 1
    assert "nope.jsonl does not exist" in capsys.readouterr().err
    assert main(["plot", str(small_run), "--index", "100", *common]) == 1
    assert capsys.readouterr().err.strip() == "lenet5: error: --index must be in 0..99, not 100"


def test_metrics_log_records(small_run):
    records = read_metrics_log(small_run.with_name("classic.metrics.jsonl"))
    assert [r["epoch"] for r in records] == [1, 2]
    assert {"train", "test"} <= set(records[0])


def test_layers_found_by_name_in_lenet_and_by_type_elsewhere():
    lenet = create_model("classic")
    assert [(x.name, x.label) for x in feature_layers(lenet)] == [
        ("features.c1", "C1"), ("features.s2", "S2"), ("features.c3", "C3"), ("features.s4", "S4")]
    assert first_conv(lenet)[0] == "features.c1"
    maps = feature_maps(lenet, torch.zeros(1, 1, 32, 32))
    assert [tuple(m.shape) for _, m in maps] == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5)]

    other = nn.Sequential(nn.Conv2d(3, 20, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 8, 3),
                          nn.AvgPool2d(2), nn.Conv2d(8, 8, 1), nn.Flatten())
    assert [x.name for x in feature_layers(other)] == ["0", "2", "3", "4"]
    assert first_conv(other)[0] == "0"


def test_feature_maps_and_kernels_of_another_model(tmp_path):
    other = nn.Sequential(nn.Conv2d(3, 20, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 8, 3))
    x = torch.rand(1, 3, 20, 20)
    plot_feature_maps(other, x, tmp_path / "maps.png")
    plot_kernels(other, tmp_path / "kernels.png")
    assert_png(tmp_path / "maps.png")
    assert_png(tmp_path / "kernels.png")
    with pytest.raises(Lenet5Error, match="no 2-d convolution"):
        plot_kernels(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), tmp_path / "k.png")


def test_missing_matplotlib_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(Lenet5Error, match=r"plotting needs matplotlib: pip install 'lenet5\[plot\]'"):
        plot_kernels(create_model("classic"), tmp_path / "k.png")
