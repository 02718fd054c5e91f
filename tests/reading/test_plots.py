"""``lenet5 plot`` on a string reader: test numbers with their reading and output strip."""

from __future__ import annotations

import pytest
from PIL import Image

from lenet5.cli import main
from lenet5.reading.plots import FILES

pytest.importorskip("matplotlib")


def test_plot_a_reader_draws_numbers_and_their_strips(tiny_reader, mnist_dir, tmp_path, capsys):
    out = tmp_path / "plots"
    assert main(["plot", str(tiny_reader), "--data-dir", str(mnist_dir), "--limit", "60",
                 "--out", str(out), "--index", "3", "--worst", "4"]) == 0
    cap = capsys.readouterr()
    assert "no metrics log" in cap.err and "curves skipped" in cap.err
    names = [f for k, f in FILES.items() if k != "curves"]
    assert cap.out.split() == [str(out / f) for f in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for f in names:
        with Image.open(out / f) as img:
            assert img.format == "PNG" and img.width >= 500 and img.height >= 200
            img.verify()
    with Image.open(out / FILES["readings"]) as img:  # eight numbers, each with its strip
        assert img.height > 8 * 100


def test_plot_refuses_a_reader_on_digits(tiny_reader, mnist_dir, tmp_path, capsys):
    assert main(["plot", str(tiny_reader), "--dataset", "mnist", "--data-dir", str(mnist_dir),
                 "--out", str(tmp_path / "o")]) == 1
    assert "lenet5-sdnn is a reader of whole numbers, mnist a dataset for a classifier" in \
        capsys.readouterr().err
