"""Datasets: the registry of known datasets, IDX reading, downloading, image folders, and
the preprocessing of uint8 images into model input. Nothing here imports ``models``."""

from .folder import FolderFormat, folder_format
from .registry import IMAGE_FOLDER, DatasetSpec, get_dataset_spec, list_datasets, register_dataset
from .store import Dataset, Split, cache_dir, dataset_status, load_dataset, prepare
from .transforms import Preprocess, to_input


def dataset_choices() -> list[str]:
    """What ``--dataset`` accepts: every registered dataset and ``imagefolder``."""
    return [*list_datasets(), IMAGE_FOLDER]


__all__ = [
    "Dataset",
    "DatasetSpec",
    "FolderFormat",
    "Split",
    "IMAGE_FOLDER",
    "Preprocess",
    "cache_dir",
    "dataset_choices",
    "dataset_status",
    "folder_format",
    "get_dataset_spec",
    "list_datasets",
    "load_dataset",
    "prepare",
    "register_dataset",
    "to_input",
]
