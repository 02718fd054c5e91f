"""Finding, verifying and loading a dataset's files.

Where the files are looked for, in order: ``--data-dir`` (or ``data_dir=``), the
``LENET5_DATA_DIR`` environment variable, then the cache (``LENET5_CACHE_DIR``, else
``$XDG_CACHE_HOME/lenet5``, else ``~/.cache/lenet5``), where missing files are downloaded.
Every file is verified by the SHA-256 of its decompressed content each time it is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import Lenet5Error
from .download import download_file
from .idx import read_idx
from .registry import SPLITS, DatasetSpec, get_dataset_spec

DATA_DIR_ENV = "LENET5_DATA_DIR"
CACHE_DIR_ENV = "LENET5_CACHE_DIR"


@dataclass
class Split:
    """One split in memory: uint8 images (N, H, W) or (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor | slice) -> Split:
        return Split(self.images[index], self.labels[index])


@dataclass
class Dataset:
    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    file_sha256: dict[str, str]
    source: Path | None = None
    limit: int | None = None  # only the first N images of each split are used

    @property
    def in_channels(self) -> int:
        return 1 if self.train.images.dim() == 3 else self.train.images.shape[1]

    @property
    def content_hash(self) -> str:
        """One SHA-256 for the whole dataset: of the sorted ``name:hash`` lines of its files."""
        lines = "".join(f"{k}:{v}\n" for k, v in sorted(self.file_sha256.items()))
        return hashlib.sha256(lines.encode()).hexdigest()

    def describe(self) -> dict:
        d = {"name": self.name, "sha256": self.content_hash, "files": self.file_sha256}
        if self.limit is not None:
            d["limit"] = self.limit
        return d

    def head(self, n: int | None) -> Dataset:
        """The first ``n`` images of each split (all of them for None)."""
        if n is None:
            return self
        if n < 1:
            raise Lenet5Error(f"--limit must be positive, not {n}")
        return dataclasses.replace(self, train=self.train.subset(slice(0, n)),
                                   test=self.test.subset(slice(0, n)), limit=n)


def cache_dir() -> Path:
    if env := os.environ.get(CACHE_DIR_ENV):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lenet5"


def _candidates(directory: Path, spec: DatasetSpec, file_name: str) -> list[Path]:
    """The names a file commonly goes by: with or without .gz, '.' or '-' before 'idx',
    directly in the directory or in a subdirectory named after the dataset."""
    stems = [file_name, file_name.replace("-idx", ".idx")]
    names = [s + ext for s in stems for ext in (".gz", "")]
    return [d / n for d in (directory, directory / spec.name) for n in names]


def find_file(directory: Path, spec: DatasetSpec, file_name: str) -> Path | None:
    return next((p for p in _candidates(directory, spec, file_name) if p.is_file()), None)


def _user_dir(data_dir: str | os.PathLike | None) -> tuple[Path, str] | None:
    if data_dir:
        return Path(data_dir), "--data-dir"
    if env := os.environ.get(DATA_DIR_ENV):
        return Path(env), DATA_DIR_ENV
    return None


def locate_files(
    spec: DatasetSpec,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: list[str] | None = None,
) -> dict[str, Path]:
    """Paths of every file of ``spec``, downloading missing ones into the cache if allowed."""
    user = _user_dir(data_dir)
    if user is not None:
        directory, origin = user
        if not directory.is_dir():
            raise Lenet5Error(f"{origin} {directory} is not a directory")
        found = {f: find_file(directory, spec, f) for f in spec.file_names}
        missing = [f for f, p in found.items() if p is None]
        if missing:
            raise Lenet5Error(
                f"{origin} {directory} lacks {', '.join(missing)} (.gz or raw IDX) of "
                f"{spec.name}; put the files there or run `lenet5 prepare` to download them"
            )
        return found  # type: ignore[return-value]
    directory = cache_dir() / spec.name
    found = {}
    for f in spec.file_names:
        path = find_file(directory, spec, f)
        if path is None:
            if not download:
                raise Lenet5Error(
                    f"{spec.name} is not in the cache ({directory}); run `lenet5 prepare`, "
                    f"or pass --data-dir DIR / set {DATA_DIR_ENV}"
                )
            ndim = 3 if "images" in f else 1
            path = download_file(f, mirrors or spec.mirrors, directory, spec.sha256.get(f), ndim)
        found[f] = path
    return found


def _read_verified(spec: DatasetSpec, file_name: str, path: Path, ndim: int) -> tuple:
    got = read_idx(path, expect_ndim=ndim)
    want = spec.sha256.get(file_name)
    if want is not None and got.sha256 != want:
        raise Lenet5Error(
            f"{path} does not match the published {spec.name} file {file_name} "
            f"(content SHA-256 {got.sha256[:16]}..., expected {want[:16]}...); "
            "delete it and fetch it again (`lenet5 prepare`)"
        )
    return got.array, got.sha256


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: list[str] | None = None,
) -> Dataset:
    """Load both splits of a dataset as uint8/int64 tensors, every file verified."""
    spec = get_dataset_spec(name)
    paths = locate_files(spec, data_dir, download, mirrors)
    splits, hashes = {}, {}
    for split in SPLITS:
        img_name, lbl_name = spec.files[split]
        images, hashes[img_name] = _read_verified(spec, img_name, paths[img_name], 3)
        labels, hashes[lbl_name] = _read_verified(spec, lbl_name, paths[lbl_name], 1)
        if len(images) != len(labels):
            raise Lenet5Error(
                f"{name} {split}: {len(images)} images but {len(labels)} labels "
                f"({paths[img_name]}, {paths[lbl_name]})"
            )
        splits[split] = Split(torch.from_numpy(images.copy()),
                              torch.from_numpy(labels.astype("int64")))
    return Dataset(name=name, train=splits["train"], test=splits["test"], classes=spec.classes,
                   file_sha256=hashes, source=paths[spec.file_names[0]].parent)


def prepare(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    mirrors: list[str] | None = None,
) -> tuple[Path, dict[str, str]]:
    """Get every file of a dataset verified into the cache; return the cache directory and
    the verified hashes. Files from ``data_dir`` are verified there, then copied."""
    spec = get_dataset_spec(name)
    paths = locate_files(spec, data_dir, download=True, mirrors=mirrors)
    target = cache_dir() / spec.name
    hashes = {}
    for f, path in paths.items():
        _, hashes[f] = _read_verified(spec, f, path, 3 if "images" in f else 1)
        dest = target / path.name
        if path.resolve() != dest.resolve():
            for stale in _candidates(target, spec, f):
                if stale.parent == target and stale != dest:
                    stale.unlink(missing_ok=True)
            tmp = dest.with_name(dest.name + ".copy")
            try:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, tmp)
                os.replace(tmp, dest)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise Lenet5Error(f"cannot write to the cache {target}: {e.strerror or e}") from None
    return target, hashes



