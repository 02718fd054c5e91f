"""Datasets: the registry of known datasets, IDX reading, downloading, batching."""

from .registry import DatasetSpec, get_dataset_spec, list_datasets, register_dataset
from .store import Dataset, Split, cache_dir, load_dataset, prepare
from .transforms import to_input

__all__ = [
    "Dataset",
    "DatasetSpec",
    "Split",
    "cache_dir",
    "get_dataset_spec",
    "list_datasets",
    "load_dataset",
    "prepare",
    "register_dataset",
    "to_input",
]
