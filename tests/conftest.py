"""Shared fixtures.

The tests find the datasets they train on the way ``lenet5`` finds them: MNIST in
``LENET5_DATA_DIR`` (its files, or a ``mnist/`` folder of them), else the cache
(``LENET5_CACHE_DIR``, else ``~/.cache/lenet5``), else the system's dataset directories
(Debian's ``dataset-*`` packages); Fashion-MNIST likewise (in ``LENET5_DATA_DIR`` only as a
``fashion-mnist/`` folder). They download into the cache only if ``LENET5_TEST_DOWNLOAD=1``.
A test whose data is nowhere skips, saying how to provide it (``-ra`` lists the reasons at
the end). docs/development.md has the details.

Each test then runs isolated from all that: its own empty cache, no ``LENET5_DATA_DIR``,
no system dataset directories; the data found comes in as the fixtures below.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lenet5.data.store import CACHE_DIR_ENV, DATA_DIR_ENV, SYSTEM_DIRS_ENV

ROOT = Path(__file__).resolve().parents[1]
DOWNLOAD_ENV = "LENET5_TEST_DOWNLOAD"
# The environment as the user set it, before any test isolates itself from it.
USER_ENV = {k: os.environ.get(k) for k in (DATA_DIR_ENV, CACHE_DIR_ENV, SYSTEM_DIRS_ENV,
                                           "XDG_CACHE_HOME", DOWNLOAD_ENV)}
HOW_TO_GET = {  # the test data: its name, and how to provide it
    "mnist": ("MNIST", f"set {DATA_DIR_ENV} to a directory holding its four IDX files "
                       "(.gz or raw), or run `lenet5 prepare` once"),
    "fashion-mnist": ("Fashion-MNIST", "install Debian's dataset-fashion-mnist, or run "
                                       "`lenet5 prepare --dataset fashion-mnist` once"),
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cache, no LENET5_DATA_DIR from the environment and no
    system dataset directories (a test that wants them sets LENET5_SYSTEM_DATA_DIRS)."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv(CACHE_DIR_ENV, str(cache))
    monkeypatch.setenv(SYSTEM_DIRS_ENV, "")
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    return cache


def find_test_data(name: str, out: Path) -> Path:
    """``out/<name>/`` holding the dataset's files under their canonical ``.gz`` names
    (links to them where they are, gzipped copies of raw ones), found as ``lenet5`` finds
    them in the user's environment; skips the test, saying what to do, if they are nowhere."""
    from lenet5.data import get_dataset_spec, prepare
    from lenet5.data.store import find_dataset
    from lenet5.errors import Lenet5Error

    spec = get_dataset_spec(name)
    download = USER_ENV[DOWNLOAD_ENV] == "1"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in USER_ENV.items():
            if value is None:
                mp.delenv(key, raising=False)
            else:
                mp.setenv(key, value)
        user = USER_ENV[DATA_DIR_ENV]
        mine = bool(user) and (name == "mnist" or (Path(user) / name).is_dir())
        try:
            found = find_dataset(spec, user_dir=mine)
            if found is None and download:
                prepare(name)
                found = find_dataset(spec, user_dir=False)
        except Lenet5Error as e:  # the user's directory lacks files, or the download failed
            pytest.fail(f"{HOW_TO_GET[name][0]}: {e}", pytrace=False)
    if found is None:
        pytest.skip(f"{HOW_TO_GET[name][0]} not found: {HOW_TO_GET[name][1]}; or set "
                    f"{DOWNLOAD_ENV}=1 to let the tests download it")
    target = out / name
    target.mkdir(parents=True, exist_ok=True)
    for canonical, path in found.files.items():
        dest = target / f"{canonical}.gz"
        if path.suffix == ".gz":
            dest.symlink_to(path.resolve())
        else:
            with path.open("rb") as src, gzip.open(dest, "wb", compresslevel=1) as dst:
                shutil.copyfileobj(src, dst)
    return target


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A directory of MNIST's four files, named as downloaded (``*.gz``), and nothing else."""
    return find_test_data("mnist", tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def fashion_dir(tmp_path_factory) -> Path:
    """A ``fashion-mnist/`` directory of Fashion-MNIST's four files, named as downloaded."""
    return find_test_data("fashion-mnist", tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from lenet5.data import load_dataset

    return load_dataset(data_dir=mnist_dir)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m lenet5 ARGS`` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "lenet5", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="session")
def small_run(mnist, tmp_path_factory) -> Path:
    """A classic model trained in-process for 2 epochs on 12,000 MNIST images (about 95% on
    the test set); returns its checkpoint path (its metrics log lies beside it). Shared by
    the predict, plot and eval tests."""
    from lenet5.training import TrainConfig, train

    out = tmp_path_factory.mktemp("small_run") / "classic.safetensors"
    cfg = TrainConfig.for_model("classic", epochs=2, batch_size=64, lr=3e-3, out=str(out),
                                progress=False)
    train(cfg, mnist.head(12000), log=lambda _line: None)
    return out


@pytest.fixture(params=["private", "public"])
def torch_api(request, monkeypatch) -> str:
    """Run a test twice: with the private PyTorch APIs the fast path uses, and with only
    their public fallbacks (LENET5_PUBLIC_TORCH=1, lenet5.fastpath.compat)."""
    from lenet5.fastpath import PUBLIC_TORCH_ENV

    monkeypatch.setenv(PUBLIC_TORCH_ENV, "1" if request.param == "public" else "0")
    return request.param


@pytest.fixture(scope="session")
def tiny_reader(mnist_dir, tmp_path_factory) -> Path:
    """lenet5-sdnn after 100 steps of 128 windows (the paper's SDNN training,
    reading/objectives.py): it reads about half of the test numbers right, which is enough
    for the tests of what shows a reading. Its checkpoint records mnist-strings, as
    `benchmarks/strings.py --save` does. One torch thread."""
    import torch

    from lenet5.checkpoint import Checkpoint, save_checkpoint
    from lenet5.data import load_dataset
    from lenet5.models import create_model, get_model_entry
    from lenet5.reading.objectives import get_objective

    data = load_dataset("mnist-strings", mnist_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = create_model("lenet5-sdnn", num_classes=10)
        pre = get_model_entry("lenet5-sdnn").preprocess
        objective = get_objective(model.objective)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        g = torch.Generator().manual_seed(0)
        for _ in range(100):
            batch = objective.batch(data.train, 128, g, pre)
            loss = objective.loss(model(batch.x), batch, model)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("reader") / "sdnn.safetensors"
    save_checkpoint(out, Checkpoint("lenet5-sdnn", {"num_classes": 10}, pre,
                                    model.eval().state_dict(), dataset=data.describe()))
    return out
