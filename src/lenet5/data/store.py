"""Finding, verifying and loading a dataset's files.

Where the files are looked for, in order: ``--data-dir`` (or ``data_dir=``), the
``LENET5_DATA_DIR`` environment variable, the cache (``LENET5_CACHE_DIR``, else
``$XDG_CACHE_HOME/lenet5``, else ``~/.cache/lenet5``), the system's dataset directories
(``/usr/share/datasets/<name>/`` as Debian's ``dataset-*`` packages install them, and
``/usr/local/share/datasets/<name>/``; ``LENET5_SYSTEM_DATA_DIRS`` replaces that list),
then the files missing from the cache are downloaded into it.

Every file is verified each time it is loaded: by the published SHA-256 of its
decompressed content, or, for datasets that publish none, by the content SHA-256 recorded
when the cache's copy was downloaded and checked against the published MD5 (see
``registry.py``). A file nothing can verify (a user's raw copy of such a dataset) loads
with a warning. The number of images and the label range are checked always.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import Lenet5Error
from ..io import atomic_write_text
from .dataset import Dataset, Split
from .download import download_archive, download_file, lock_for
from .folder import FolderFormat, load_image_folder
from .idx import read_idx
from .registry import IMAGE_FOLDER, SPLITS, DatasetSpec, get_dataset_spec
from .strings import StringDataset

DATA_DIR_ENV = "LENET5_DATA_DIR"
CACHE_DIR_ENV = "LENET5_CACHE_DIR"
SYSTEM_DIRS_ENV = "LENET5_SYSTEM_DATA_DIRS"
SYSTEM_DATA_DIRS = ("/usr/share/datasets", "/usr/local/share/datasets")
VERIFIED_FILE = "verified.json"  # in the cache: content SHA-256 of files verified at download


def cache_dir() -> Path:
    if env := os.environ.get(CACHE_DIR_ENV):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lenet5"


def _candidates(directory: Path, spec: DatasetSpec, file_name: str) -> list[Path]:
    """The names a file commonly goes by: with or without .gz, '.' or '-' before 'idx', in
    a subdirectory named after the dataset (first: several datasets share MNIST's file
    names) or directly in the directory."""
    stems = [file_name, file_name.replace("-idx", ".idx")]
    names = [s + ext for s in stems for ext in (".gz", "")]
    return [d / n for d in (directory / spec.name, directory) for n in names]


def find_file(directory: Path, spec: DatasetSpec, file_name: str) -> Path | None:
    return next((p for p in _candidates(directory, spec, file_name) if p.is_file()), None)



def system_dirs() -> list[Path]:
    """The system's dataset directories, each holding ``<dataset name>/``."""
    env = os.environ.get(SYSTEM_DIRS_ENV)
    dirs = SYSTEM_DATA_DIRS if env is None else env.split(os.pathsep)
    return [Path(d) for d in dirs if d]


@dataclass(frozen=True)
class Location:
    """Where a dataset's files were found: ``origin`` is --data-dir, LENET5_DATA_DIR,
    cache or system; ``files`` maps each canonical file name to its path."""

    origin: str
    directory: Path
    files: dict[str, Path]


def _user_dir(data_dir: str | os.PathLike | None) -> tuple[Path, str] | None:
    if data_dir:
        return Path(data_dir), "--data-dir"
    if env := os.environ.get(DATA_DIR_ENV):
        return Path(env), DATA_DIR_ENV
    return None


def _all_files(directory: Path, spec: DatasetSpec) -> dict[str, Path | None]:
    return {f: find_file(directory, spec, f) for f in spec.file_names}


def find_dataset(spec: DatasetSpec, data_dir: str | os.PathLike | None = None,
                 user_dir: bool = True) -> Location | None:
    """Where every file of ``spec`` is, without downloading: the user's directory (which
    must then hold them all), else the cache, else a system directory; None if nowhere.
    ``user_dir=False`` skips the user's directory."""
    user = _user_dir(data_dir) if user_dir else None
    if user is not None:
        directory, origin = user
        if not directory.is_dir():
            raise Lenet5Error(f"{origin} {directory} is not a directory")
        found = _all_files(directory, spec)
        missing = [f for f, p in found.items() if p is None]
        if missing:
            raise Lenet5Error(
                f"{origin} {directory} lacks {', '.join(missing)} (.gz or raw IDX) of "
                f"{spec.name}; put the files there or run `lenet5 prepare` to download them"
            )
        return Location(origin, directory, found)  # type: ignore[arg-type]
    for origin, directory in [("cache", cache_dir() / spec.name),
                              *(("system", d / spec.name) for d in system_dirs())]:
        found = _all_files(directory, spec)
        if all(found.values()):
            return Location(origin, directory, found)  # type: ignore[arg-type]
    return None


def _recorded(directory: Path) -> dict[str, str]:
    try:
        data = json.loads((directory / VERIFIED_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record(directory: Path, file_name: str, sha256: str) -> None:
    """Remember the content hash of a cache file verified by its download's published MD5."""
    path = directory / VERIFIED_FILE
    with lock_for(path):
        data = _recorded(directory)
        data[file_name] = sha256
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def locate_files(
    spec: DatasetSpec,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: list[str] | None = None,
) -> dict[str, Path]:
    """Paths of every file of ``spec``, downloading missing ones into the cache if allowed."""
    found = find_dataset(spec, data_dir)
    if found is not None:
        return found.files
    directory = cache_dir() / spec.name
    paths = {f: find_file(directory, spec, f) for f in spec.file_names}
    missing = [f for f, p in paths.items() if p is None]
    if not download:
        raise Lenet5Error(
            f"{spec.name} is not in the cache ({directory}) nor a system dataset directory; "
            f"run `lenet5 prepare --dataset {spec.name}`, or pass --data-dir DIR / set {DATA_DIR_ENV}"
        )
    mirrors = mirrors or list(spec.mirrors)
    if spec.archive is not None:
        got = download_archive(spec.archive, mirrors, directory)
        fetched = {f: got[f] for f in missing}
    else:
        fetched = {}
        for f in missing:
            fetched[f] = download_file(f, mirrors, directory, spec.sha256.get(f),
                                       spec.idx_format(f), md5=spec.gz_md5.get(f))
    for f, path in fetched.items():
        if not spec.verifiable(f):  # verified by an MD5 just now: record its content hash
            _record(directory, f, read_idx(path, spec.idx_format(f)).sha256)
    return {**paths, **fetched}  # type: ignore[dict-item]


def _known_content() -> dict[str, tuple[str, str]]:
    """Published content SHA-256 -> (dataset, file), over every registered dataset."""
    from .registry import list_datasets

    return {h: (name, f) for name in list_datasets()
            for f, h in get_dataset_spec(name).sha256.items()}


def _read_verified(spec: DatasetSpec, file_name: str, path: Path,
                   unverified: list[str] | None = None) -> tuple[np.ndarray, str]:
    """The file's array and content SHA-256, verified as well as the dataset allows;
    the name of a file nothing can verify is appended to ``unverified``."""
    want_md5 = spec.gz_md5.get(file_name)
    want = spec.sha256.get(file_name)
    in_cache = path.parent.resolve() == (cache_dir() / spec.name).resolve()
    if want is None and in_cache:
        want = _recorded(path.parent).get(file_name)
    # the header is checked against the image size and the split's size before any data is
    # read: a file of the wrong shape, or a gzip bomb, is refused without reading it whole
    got = read_idx(path, spec.idx_format(file_name),
                   file_md5=want is None and want_md5 is not None)
    if got.sha256 != want and (other := _known_content().get(got.sha256)):
        raise Lenet5Error(f"{path} is {other[0]}'s {other[1]}, not {spec.name}'s {file_name}; "
                          f"use --dataset {other[0]}, or point --data-dir at {spec.name}'s files")
    if want is not None and got.sha256 != want:
        source = "published" if spec.verifiable(file_name) else "verified at download"
        raise Lenet5Error(
            f"{path} does not match the {source} {spec.name} file {file_name} "
            f"(content SHA-256 {got.sha256[:16]}..., expected {want[:16]}...); "
            "delete it and fetch it again (`lenet5 prepare`)"
        )
    if want is None and (want_md5 is None or got.file_md5 != want_md5) and unverified is not None:
        unverified.append(path.name)
    return got.array, got.sha256


def _check_split(spec: DatasetSpec, split: str, images: np.ndarray, labels: np.ndarray,
                 paths: tuple[Path, Path], full: bool) -> None:
    if len(images) != len(labels):
        raise Lenet5Error(f"{spec.name} {split}: {len(images)} images but {len(labels)} labels "
                          f"({paths[0]}, {paths[1]})")
    want = spec.sizes.get(split)
    if full and want is not None and len(images) != want:
        raise Lenet5Error(f"{paths[0]}: {len(images):,} images, but {spec.name} {split} has "
                          f"{want:,}; fetch it again (`lenet5 prepare`)")
    if len(labels) and not (0 <= labels.min() and labels.max() < len(spec.classes)):
        raise Lenet5Error(f"{paths[1]}: labels outside 0..{len(spec.classes) - 1}")


def _labels(spec: DatasetSpec, array: np.ndarray, path: Path) -> np.ndarray:
    if not spec.label_columns:
        return array
    if array.shape[1] != spec.label_columns:
        raise Lenet5Error(f"{path}: {array.shape[1]} label columns, expected {spec.label_columns}")
    return array[:, 0]  # QMNIST: the class; the other columns describe its NIST origin


def load_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: list[str] | None = None,
    image_format: FolderFormat | None = None,
) -> Dataset:
    """Load both splits of a dataset as uint8/int64 tensors, every file verified.

    ``imagefolder`` reads ``data_dir`` as ``<class>/<image>`` folders, each image made into
    ``image_format`` (default: MNIST-style digits; see ``folder.py``).
    """
    if name == IMAGE_FOLDER:
        return load_image_folder(data_dir, image_format)
    spec = get_dataset_spec(name)
    if spec.base is not None:  # composed in memory from its base (strings.py)
        return StringDataset(name, load_dataset(spec.base, data_dir, download, mirrors))
    paths = locate_files(spec, data_dir, download, mirrors)
    splits, hashes, unverified = {}, {}, []
    for split in SPLITS:
        img_name, lbl_name = spec.files[split]
        images, hashes[img_name] = _read_verified(spec, img_name, paths[img_name], unverified)
        labels, hashes[lbl_name] = _read_verified(spec, lbl_name, paths[lbl_name], unverified)
        labels = _labels(spec, labels, paths[lbl_name])
        _check_split(spec, split, images, labels, (paths[img_name], paths[lbl_name]), True)
        if spec.transposed:
            images = images.transpose(0, 2, 1)
        splits[split] = Split(torch.from_numpy(np.array(images, order="C")),  # a writable copy
                              torch.from_numpy(labels.astype("int64")))
    if unverified:
        print(f"lenet5: warning: {name}: no published hash to verify {', '.join(unverified)} "
              f"against (only the canonical .gz downloads can be); image counts and labels "
              "checked", file=sys.stderr)
    return Dataset(name=name, train=splits["train"], test=splits["test"], classes=spec.classes,
                   file_sha256=hashes, source=paths[spec.file_names[0]].parent)


def prepare(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    mirrors: list[str] | None = None,
) -> tuple[Path, dict[str, str]]:
    """Get every file of a dataset verified into the cache; return the cache directory and
    the verified hashes. Files found elsewhere (--data-dir, a system directory) are
    verified there, then copied."""
    spec = get_dataset_spec(name)
    if spec.base is not None:  # nothing of its own: composed from its base when loaded
        return prepare(spec.base, data_dir, mirrors)
    paths = locate_files(spec, data_dir, download=True, mirrors=mirrors)
    target = cache_dir() / spec.name
    hashes, unverified = {}, []
    for f, path in paths.items():
        _, hashes[f] = _read_verified(spec, f, path, unverified)
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
            if not spec.verifiable(f) and path.name not in unverified:
                _record(target, f, hashes[f])  # verified by its .gz MD5 where it was found
    if unverified:
        print(f"lenet5: warning: {name}: no published hash to verify {', '.join(unverified)} "
              "against; copied unverified", file=sys.stderr)
    return target, hashes


def dataset_status(data_dir: str | os.PathLike | None = None,
                   dataset: str = "mnist") -> list[tuple[str, str]]:
    """For ``prepare --list``: (dataset name, where it is found or that it is missing), by
    file names, not yet verified. Several datasets share MNIST's file names, so the user's
    directory speaks for ``dataset`` and for datasets in a ``<name>/`` subfolder of it."""
    from .registry import list_datasets

    rows = []
    user = _user_dir(data_dir)
    for name in list_datasets():
        spec = get_dataset_spec(name)
        if spec.base is not None:
            rows.append((name, f"composed in memory from {spec.base}"))
            continue
        mine = user is not None and (name == dataset or (user[0] / name).is_dir())
        try:
            loc = find_dataset(spec, data_dir, user_dir=mine)
        except Lenet5Error:  # the user's directory holds another dataset: look elsewhere
            loc = find_dataset(spec, user_dir=False)
        rows.append((name, f"{loc.origin}: {loc.directory}" if loc else
                     f"missing (`lenet5 prepare --dataset {name}` downloads it)"))
    return rows
