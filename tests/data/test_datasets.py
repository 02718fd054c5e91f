"""The dataset registry, where files are found, and the formats beyond MNIST's."""

import dataclasses
import functools
import gzip
import hashlib
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from lenet5.data import get_dataset_spec, list_datasets, load_dataset, registry
from lenet5.data.registry import FASHION_MNIST, QMNIST, SPLITS
from lenet5.data.store import find_dataset
from lenet5.errors import Lenet5Error
from tests.conftest import idx_bytes, run_cli


def test_every_dataset_can_be_verified_when_downloaded():
    assert set(list_datasets()) >= {"mnist", "fashion-mnist", "kmnist", "qmnist", "emnist-digits"}
    for name in list_datasets():
        spec = get_dataset_spec(name)
        if spec.base is not None:  # composed in memory from another dataset: no files
            assert spec.base in list_datasets() and not spec.files
            continue
        assert len(spec.classes) == 10 and spec.mirrors
        assert set(spec.files) == set(SPLITS) and set(spec.sizes) == set(SPLITS)
        for f in spec.file_names:
            members = spec.archive.members if spec.archive else {}
            assert f in spec.sha256 or f in spec.gz_md5 or f in members, (name, f)
        for h in [*spec.sha256.values(), *spec.gz_md5.values()]:
            assert all(c in "0123456789abcdef" for c in h)
        assert all(len(h) == 64 for h in spec.sha256.values())
        assert all(len(h) == 32 for h in spec.gz_md5.values())


@pytest.fixture()
def tiny_spec(monkeypatch):
    """Register a copy of a spec under another name, with its sizes and hashes cleared."""
    def make(base, **changes):
        fields = {"name": f"tiny-{base.name}", "sha256": {}, "gz_md5": {}, "sizes": {}, **changes}
        spec = dataclasses.replace(base, **fields)
        monkeypatch.setitem(registry.DATASETS._entries, spec.name, spec)
        return spec
    return make


def write(path, array, dtype=0x08):
    data = idx_bytes(array) if dtype == 0x08 else (
        bytes([0, 0, dtype, array.ndim]) + np.array(array.shape, ">u4").tobytes()
        + array.astype(">i4").tobytes())
    path.write_bytes(gzip.compress(data))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_qmnist_labels_are_int32_with_8_columns(tiny_spec, tmp_path, capsys):
    spec = tiny_spec(QMNIST)
    rng = np.random.default_rng(0)
    for split in SPLITS:
        images, labels = spec.files[split]
        write(tmp_path / f"{images}.gz", rng.integers(0, 256, (6, 28, 28), dtype=np.uint8))
        table = np.zeros((6, 8), np.int64)
        table[:, 0] = [3, 1, 4, 1, 5, 9]
        table[:, 2] = 70000  # a writer id: does not fit a byte, as in the real file
        write(tmp_path / f"{labels}.gz", table, dtype=0x0C)
    data = load_dataset(spec.name, data_dir=tmp_path)
    assert data.test.labels.tolist() == [3, 1, 4, 1, 5, 9]
    assert "no published hash to verify" in capsys.readouterr().err  # said, not pretended
    # an IDX1 byte label file where QMNIST's int32 table belongs is refused clearly
    write(tmp_path / f"{spec.files['test'][1]}.gz", np.zeros(6, np.uint8))
    with pytest.raises(Lenet5Error, match=r"IDX data type 0x08 is not int32 \(0x0c\)"):
        load_dataset(spec.name, data_dir=tmp_path)


def test_emnist_images_are_transposed_upright(tiny_spec, tmp_path):
    spec = tiny_spec(get_dataset_spec("emnist-digits"), archive=None)
    img = np.zeros((2, 28, 28), np.uint8)
    img[:, 0, :] = 255  # stored transposed: the first row is the digit's first column
    for split in SPLITS:
        write(tmp_path / f"{spec.files[split][0]}.gz", img)
        write(tmp_path / f"{spec.files[split][1]}.gz", np.array([0, 7], np.uint8))
    data = load_dataset(spec.name, data_dir=tmp_path)
    assert data.train.images[0, :, 0].tolist() == [255] * 28
    assert data.train.images[0, 0, 1:].tolist() == [0] * 27


def test_wrong_image_count_and_bad_labels_are_refused(tmp_path, tiny_spec):
    spec = tiny_spec(get_dataset_spec("kmnist"))
    for split in SPLITS:
        write(tmp_path / f"{spec.files[split][0]}.gz", np.zeros((3, 28, 28), np.uint8))
        write(tmp_path / f"{spec.files[split][1]}.gz", np.array([0, 1, 12], np.uint8))
    with pytest.raises(Lenet5Error, match=r"labels outside 0\.\.9"):
        load_dataset(spec.name, data_dir=tmp_path)
    big = tiny_spec(get_dataset_spec("kmnist"), sizes={"train": 60000, "test": 10000})
    with pytest.raises(Lenet5Error, match="3 images, but .* has 60,000"):
        load_dataset(big.name, data_dir=tmp_path)


def test_md5_verified_download_is_recorded_and_checked_later(tiny_spec, tmp_path,
                                                             isolated_cache):
    """A dataset without published content hashes: the download is checked by the .gz MD5,
    its content SHA-256 recorded in the cache, and a later change to the file refused."""
    served = tmp_path / "mirror"
    served.mkdir()
    base = get_dataset_spec("kmnist")
    md5 = {}
    for split in SPLITS:
        images, labels = base.files[split]
        md5[images] = write(served / f"{images}.gz", np.full((4, 28, 28), 9, np.uint8))
        md5[labels] = write(served / f"{labels}.gz", np.array([1, 2, 3, 4], np.uint8))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        spec = tiny_spec(base, gz_md5=md5, mirrors=(f"http://127.0.0.1:{srv.server_address[1]}/",))
        data = load_dataset(spec.name)
    finally:
        srv.shutdown()
        srv.server_close()
    assert data.train.labels.tolist() == [1, 2, 3, 4]
    cached = isolated_cache / spec.name
    recorded = json.loads((cached / "verified.json").read_text())
    assert recorded == data.file_sha256
    assert load_dataset(spec.name).content_hash == data.content_hash  # from the cache now
    write(cached / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3, 5], np.uint8))
    with pytest.raises(Lenet5Error, match="does not match the verified at download"):
        load_dataset(spec.name)


def test_another_datasets_files_are_recognised(mnist_dir, capsys):
    """KMNIST has MNIST's file names and no published content hash: MNIST's files (whose
    hashes are known) are refused as KMNIST rather than loaded unverified."""
    with pytest.raises(Lenet5Error, match="is mnist's train-images-idx3-ubyte, not kmnist's"):
        load_dataset("kmnist", data_dir=mnist_dir)


def test_lookup_order_data_dir_then_cache_then_system(mnist_dir, tmp_path, monkeypatch,
                                                      isolated_cache):
    system = tmp_path / "datasets"
    (system / "mnist").mkdir(parents=True)
    for f in mnist_dir.glob("*.gz"):
        (system / "mnist" / f.name).symlink_to(f)
    monkeypatch.setenv("LENET5_SYSTEM_DATA_DIRS", str(system))
    spec = get_dataset_spec("mnist")
    assert find_dataset(spec).origin == "system"
    (isolated_cache / "mnist").mkdir()
    for f in mnist_dir.glob("*.gz"):
        (isolated_cache / "mnist" / f.name).symlink_to(f)
    assert find_dataset(spec).origin == "cache"
    monkeypatch.setenv("LENET5_DATA_DIR", str(mnist_dir))
    assert find_dataset(spec).origin == "LENET5_DATA_DIR"
    assert find_dataset(spec, data_dir=mnist_dir).origin == "--data-dir"


def test_prepare_list_shows_where_each_dataset_is(mnist_dir, tmp_path):
    r = run_cli("prepare", "--list", "--data-dir", str(mnist_dir),
                env={"LENET5_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    rows = dict(line.split(None, 1) for line in r.stdout.strip().splitlines())
    assert rows["mnist"].startswith("--data-dir: ")
    # kmnist's files have MNIST's names, but --data-dir speaks for --dataset (mnist) only
    assert rows["kmnist"].startswith("missing (`lenet5 prepare --dataset kmnist`")
    assert set(rows) == set(list_datasets())


def test_fashion_mnist_from_the_system_directory(fashion_dir, monkeypatch):
    monkeypatch.setenv("LENET5_SYSTEM_DATA_DIRS", str(fashion_dir.parent))
    spec = get_dataset_spec("fashion-mnist")
    assert find_dataset(spec).origin == "system"
    data = load_dataset("fashion-mnist")  # every file verified by its published SHA-256
    assert data.file_sha256 == FASHION_MNIST.sha256
    assert data.train.images.shape == (60000, 28, 28) and len(data.test) == 10000
    assert data.classes[9] == "Ankle boot"
