import gzip
import struct

import numpy as np
import pytest
import torch

from benchmarks.bounded_memory import bomb_data_dir, refuse_in_child
from lenet5.cli import main
from lenet5.data import load_dataset, to_input
from lenet5.data.idx import IdxFormat, parse_idx, read_idx
from lenet5.errors import Lenet5Error
from lenet5.models import Preprocess
from tests.conftest import idx_bytes, write_idx

MNIST_FILES = [f"{f}.gz" for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]


def test_parse_roundtrip_gzip_and_raw(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for compress in (True, False):
        path = write_idx(tmp_path / f"x{compress}", arr, compress)
        got = read_idx(path, IdxFormat((None, 3, 4)))
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
        parse_idx(data, "labels", IdxFormat((None, 28, 28)))


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


def test_header_whose_dimensions_overflow_is_refused(tmp_path):
    """2^22 x 2^21 x 2^21 = 2^64 bytes: a 64-bit product wraps to 0, and a file of just the
    header looked complete."""
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2**22, 2**21, 2**21)
    with pytest.raises(Lenet5Error, match="over the 536,870,912-byte bound"):
        parse_idx(header, "f")
    for name in MNIST_FILES:
        write_idx(tmp_path / name, np.zeros(1, np.uint8))
    images = tmp_path / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(header))
    with pytest.raises(Lenet5Error, match="shape 4194304x2097152x2097152, expected Nx28x28"):
        load_dataset(data_dir=tmp_path)
    images.write_bytes(gzip.compress(header[:4] + struct.pack(">3I", 2**32 - 1, 28, 28)))
    with pytest.raises(Lenet5Error, match="IDX header says 4,294,967,295 entries, more than "
                                          "the 60,000 this file holds"):
        load_dataset(data_dir=tmp_path)


def zeros_gz(shape: tuple[int, ...]) -> bytes:
    """A gzip file of IDX zeros of ``shape``, made in no time: a member per MiB of zeros."""
    header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    mebibytes, rest = divmod(int(np.prod(shape)), 1 << 20)
    return (gzip.compress(header) + gzip.compress(bytes(1 << 20)) * mebibytes
            + gzip.compress(bytes(rest)))


def test_images_of_another_size_are_refused_at_the_header(tmp_path, capsys):
    """KMNIST publishes no content hash: 60,000 images of 14x56 (as many bytes as 28x28)
    loaded, and crashed inside the model."""
    for name, shape in zip(MNIST_FILES, [(60000, 14, 56), (60000,), (10000, 28, 28), (10000,)]):
        (tmp_path / name).write_bytes(zeros_gz(shape))
    assert main(["prepare", "--dataset", "kmnist", "--data-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"lenet5: error: {tmp_path / 'train-images-idx3-ubyte.gz'}: IDX header has shape "
        "60000x14x56, expected Nx28x28; is it the right file?"]


def test_gzip_bomb_in_a_data_dir_is_refused_in_bounded_memory(tmp_path):
    """1.6 MB of .gz that expand to 1.5 GB, announced as MNIST's training images or as more:
    refused after reading one byte more than the header announces, or at the header (peak
    memory measured in a child process, where the imports alone take some 300 MB)."""
    dirs = [bomb_data_dir(tmp_path / str(i), shape, gigabytes=1.5)
            for i, shape in enumerate([(60000, 28, 28), (60000, 28, 28000)])]
    errors, peak_kib = refuse_in_child("data-dir", *map(str, dirs))
    assert peak_kib < 1024 * 1024, f"peak RSS {peak_kib // 1024} MiB"
    assert "is longer than its header says (47,040,016 bytes" in errors[0]
    assert "IDX header has shape 60000x28x28000, expected Nx28x28" in errors[1]
