"""Layers for ``arch="layers"``: declare the network yourself, in the vocabulary of Keras.

    from archtune import NeuralClassifier
    from archtune.layers import Dense, Dropout, BatchNorm, Activation
    model = NeuralClassifier(arch="layers", layers=[Dense(128), BatchNorm(), Activation("relu"),
                                                    Dropout(0.2), Dense(64, activation="relu")])

Each layer is a frozen dataclass (estimators stay cloneable; bundles store the list as JSON).
Shapes exclude the batch dimension and follow Keras: a sequence is (steps, features), an image
(channels, height, width). The list is the body: archtune adds the task's output layer. The
layers live in archtune.models.layer_list, their argument rules and `LayerError` in
archtune.models.layer_rules, and the compiler, with its shape inference and named errors, in
archtune.models.layer_compile.
"""

from __future__ import annotations

from archtune.models.layer_list import (  # noqa: F401  (the public names)
    Activation, ActivityRegularization, AvgPool1D, AvgPool2D, BatchNorm, Conv1D, Conv2D,
    Dense, Dropout, Embedding, Flatten, GRU, GlobalAvgPool2D, GlobalPool1D, LSTM, Lambda, LayerNorm,
    Masking, MaxPool1D, MaxPool2D, Permute, RepeatVector, Reshape, SpatialDropout1D,
    SpatialDropout2D, UpSampling1D, UpSampling2D,
)
from archtune.models.layer_rules import LayerError  # noqa: F401

__all__ = ["LayerError", "Activation", "ActivityRegularization", "AvgPool1D", "AvgPool2D", "BatchNorm", "Conv1D",
           "Conv2D", "Dense", "Dropout", "Embedding", "Flatten", "GRU", "GlobalAvgPool2D",
           "GlobalPool1D", "LSTM", "Lambda", "LayerNorm", "Masking", "MaxPool1D", "MaxPool2D",
           "Permute", "RepeatVector", "Reshape", "SpatialDropout1D", "SpatialDropout2D", "UpSampling1D",
           "UpSampling2D"]
