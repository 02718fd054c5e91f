"""Datasets: the registry of known datasets, IDX reading, downloading, batching."""

from .registry import IMAGE_FOLDER, DatasetSpec, get_dataset_spec, list_datasets, register_dataset
from .store import Dataset, Split, cache_dir, dataset_status, load_dataset, prepare
from .transforms import to_input


def dataset_choices() -> list[str]:
    """What ``--dataset`` accepts: every registered dataset and ``imagefolder``."""
    return [*list_datasets(), IMAGE_FOLDER]

__all__ = [
    "Dataset",
    "DatasetSpec",
    "Split",
    "IMAGE_FOLDER",
    "cache_dir",
    "dataset_choices",
    "dataset_status",
    "get_dataset_spec",
    "list_datasets",
    "load_dataset",
    "prepare",
    "register_dataset",
    "to_input",
]
