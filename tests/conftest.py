"""Shared fixtures. The full MNIST is found at ../shared/data/mnist beside the project;
tests that need it skip, not fail, where it is absent."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"


SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cache, no LENET5_DATA_DIR from the environment and no
    system dataset directories (a test that wants them sets LENET5_SYSTEM_DATA_DIRS)."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("LENET5_CACHE_DIR", str(cache))
    monkeypatch.setenv("LENET5_SYSTEM_DATA_DIRS", "")
    monkeypatch.delenv("LENET5_DATA_DIR", raising=False)
    return cache


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """Fashion-MNIST as Debian installs it (CI: apt-get install dataset-fashion-mnist)."""
    if not (SHARED_FASHION := SYSTEM_FASHION / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST is not installed ({SHARED_FASHION.parent})")
    return SYSTEM_FASHION


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (SHARED_MNIST / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("the full MNIST is not at ../shared/data/mnist")
    return SHARED_MNIST


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
    import os

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
