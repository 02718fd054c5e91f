"""Datasets known to lenet5: file names, mirrors, content hashes, class names."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Lenet5Error

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    # split -> (images file, labels file), canonical names without ".gz"
    files: dict[str, tuple[str, str]]
    # canonical file name (no ".gz") -> SHA-256 of its decompressed content
    sha256: dict[str, str]
    # base URLs; the file ``<name>.gz`` is fetched from each in turn
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def file_names(self) -> list[str]:
        return [f for split in SPLITS for f in self.files[split]]


_DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    _DATASETS[spec.name] = spec
    return spec


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return _DATASETS[name]
    except KeyError:
        raise Lenet5Error(
            f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}"
        ) from None


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MNIST = register_dataset(
    DatasetSpec(
        name="mnist",
        title="MNIST handwritten digits (LeCun, Cortes, Burges)",
        files=_MNIST_FILES,
        # Published SHA-256 of the decompressed files (also in shared/data/README.md).
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        classes=tuple(str(d) for d in range(10)),
    )
)
