"""archtune: neural networks as off-the-shelf as gradient boosting."""

from archtune.data import list_datasets, load_dataset, load_table
from archtune.errors import ArchtuneError, BundleError, DataError, InvalidParameterError, TrainingDivergedError
from archtune.estimators import NeuralClassifier, NeuralRegressor
from archtune.io import load, save

__version__ = "0.1.0"

__all__ = [
    "ArchtuneError",
    "BundleError",
    "DataError",
    "InvalidParameterError",
    "NeuralClassifier",
    "NeuralRegressor",
    "TrainingDivergedError",
    "list_datasets",
    "load",
    "load_dataset",
    "load_table",
    "save",
]
