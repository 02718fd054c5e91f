import gzip

import numpy as np
import pytest
import torch

from lenet5.data import load_dataset, to_input
from lenet5.data.idx import parse_idx, read_idx
from lenet5.errors import Lenet5Error
from lenet5.models import Preprocess
from tests.conftest import idx_bytes, write_idx


def test_parse_roundtrip_gzip_and_raw(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for compress in (True, False):
        path = write_idx(tmp_path / f"x{compress}", arr, compress)
        got = read_idx(path, expect_ndim=3)
        np.testing.assert_array_equal(got.array, arr)
    import hashlib

    assert got.sha256 == hashlib.sha256(idx_bytes(arr)).hexdigest()


def test_wrong_magic_is_refused():
    with pytest.raises(Lenet5Error, match="not an IDX file"):
        parse_idx(b"\x01\x02\x08\x01" + b"\0" * 8, "f")
    with pytest.raises(Lenet5Error, match="not unsigned byte"):
        parse_idx(b"\x00\x00\x0d\x01\x00\x00\x00\x01" + b"\0" * 4, "f")


def test_wrong_dimensions_are_refused():
    data = idx_bytes(np.zeros(5, dtype=np.uint8))
    with pytest.raises(Lenet5Error, match="1 dimensions, expected 3"):
        parse_idx(data, "labels", expect_ndim=3)


def test_truncated_data_is_refused():
    data = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8))
    with pytest.raises(Lenet5Error, match="truncated"):
        parse_idx(data[:-10], "images")
    with pytest.raises(Lenet5Error, match="truncated"):
        parse_idx(data[:6], "images")
    with pytest.raises(Lenet5Error, match="longer than its header"):
        parse_idx(data + b"\0", "images")


def test_truncated_gzip_is_refused(tmp_path):
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8)))[:-20])
    with pytest.raises(Lenet5Error, match="truncated or corrupt"):
        read_idx(path)


def test_full_mnist_loads_and_verifies(mnist):
    assert mnist.train.images.shape == (60000, 28, 28)
    assert mnist.test.images.shape == (10000, 28, 28)
    assert mnist.train.images.dtype == torch.uint8
    assert mnist.test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(mnist.train.labels).tolist()[0] == 5923


def test_raw_and_renamed_files_load(mnist_dir, tmp_path):
    """Decompressed files, named with '.idx' (a common variant), in a dataset subfolder."""
    sub = tmp_path / "mnist"
    sub.mkdir()
    for f in mnist_dir.glob("*.gz"):
        (sub / f.name[:-3].replace("-idx", ".idx")).write_bytes(gzip.decompress(f.read_bytes()))
    data = load_dataset(data_dir=tmp_path)
    assert len(data.test) == 10000


def test_wrong_content_is_refused_with_the_file_named(mnist_dir, tmp_path):
    for f in mnist_dir.glob("*.gz"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    labels = np.frombuffer(gzip.decompress((mnist_dir / "t10k-labels-idx1-ubyte.gz")
                                           .read_bytes())[8:], np.uint8).copy()
    labels[0] = (labels[0] + 1) % 10
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(Lenet5Error, match="t10k-labels-idx1-ubyte.*does not match.*SHA-256"):
        load_dataset(data_dir=tmp_path)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(Lenet5Error, match="lacks train-images-idx3-ubyte"):
        load_dataset(data_dir=tmp_path)


def test_to_input_pads_with_background_and_normalizes():
    images = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    pre = Preprocess(pad=2, mean=0.078431, std=0.784314)  # the paper's scaling
    x = to_input(images, pre)
    assert x.shape == (2, 1, 32, 32)
    assert x[0, 0, 0, 0].item() == pytest.approx(-0.1, abs=1e-4)  # padding = background
    assert x[0, 0, 16, 16].item() == pytest.approx(1.175, abs=1e-4)  # ink
