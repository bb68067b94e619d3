"""Data: readers, built-in datasets, schema inference and preprocessing, targets."""

from archtune.data.datasets import list_datasets, load_dataset
from archtune.data.preprocess import Preprocessor, as_frame
from archtune.data.readers import load_table, read_table

__all__ = ["Preprocessor", "as_frame", "list_datasets", "load_dataset", "load_table", "read_table"]
