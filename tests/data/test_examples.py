"""``lenet5 prepare --save-examples``: a dataset's first test images as PNGs, and a grid."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from lenet5.cli import main
from lenet5.data import load_dataset
from lenet5.data.examples import save_examples


def test_numbers_are_saved_as_they_are_with_their_text(mnist_dir, tmp_path):
    data = dataclasses.replace(load_dataset("mnist-strings", mnist_dir), test_size=40)
    written = save_examples(data, tmp_path / "ex", n=5)
    names = [p.name for p in written]
    assert names[-1] == "grid.png" and len(names) == 11
    for k in range(5):  # the test set's first numbers, pixel for pixel, named by their text
        [path] = [p for p in written if p.name.startswith(f"test-{k:02d}-")]
        assert path.stem.split("-")[2] == data.test.text(k)
        with Image.open(path) as img:
            got = np.asarray(img)
        assert np.array_equal(got, data.test.images[k, :, :int(data.test.widths[k])].numpy())
    train = [p for p in written if p.name.startswith("train-")]
    assert len(train) == 5 and all(p.stem.split("-")[2].isdigit() for p in train)
    with Image.open(tmp_path / "ex" / "grid.png") as grid:
        assert grid.format == "PNG" and grid.height > 10 * 32 * 2 // 2
    assert save_examples(data, tmp_path / "again", n=5)[-1].read_bytes() == \
        (tmp_path / "ex" / "grid.png").read_bytes()  # the same examples every time


def test_prepare_saves_examples_of_digits(mnist_dir, mnist, tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["prepare", "--data-dir", str(mnist_dir), "--save-examples", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == \
        f"16 examples and their grid in {out}: {out / 'grid.png'}"
    first = out / f"test-00-{int(mnist.test.labels[0])}.png"
    with Image.open(first) as img:
        assert np.array_equal(np.asarray(img), mnist.test.images[0].numpy())
    assert len(list(out.glob("test-*.png"))) == 16 and (out / "grid.png").is_file()


def test_save_examples_into_a_file_is_one_line(mnist_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["prepare", "--data-dir", str(mnist_dir), "--save-examples",
                 str(tmp_path / "file")]) == 1
    assert capsys.readouterr().err.startswith(f"lenet5: error: cannot write to {tmp_path / 'file'}")
