"""Datasets: the generated embedded default and adapters for real datasets in native layouts."""
from benchmark.data.registry import DatasetSpec, dataset_names, get_dataset, register_dataset

__all__ = ["DatasetSpec", "dataset_names", "get_dataset", "register_dataset"]
