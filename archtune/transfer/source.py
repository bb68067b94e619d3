"""What a fit can start from: a trained network with the input side it was trained on.

A `Source` is read from a fitted estimator, a saved bundle, or a self-supervised pretraining
result (archtune.pretrain); the fit that starts from it reuses its preprocessor (so every
input column means what it meant to the source network), its architecture, and every layer
whose name and shape fit; the output layer is replaced when the task differs.

This module sits below the estimators and the fitting path (`archtune.fitting.prepare`
calls `read_source`): it recognises a fitted estimator by its fitted attributes and reads
bundles through `archtune.bundles.format`, never through `archtune.bundles.network`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PRETRAINED = "Pretrained"  # the "estimator" of a pretraining bundle (archtune.pretrain)


@dataclass(frozen=True)
class Source:
    """A trained network and what it needs to be reused.

    Attributes
    ----------
    module : TabularNetwork
        The trained network (its ``head`` is the source task's output layer).
    preprocessor : Preprocessor
        Fitted on the source's rows; a fit that starts from the source transforms its X with it.
    model_config : ModelConfig
        The source network's architecture.
    input_spec : InputSpec
    inputs : FittedInputs
        The columns (names, count, image or series shape) the source network reads.
    task : str
        "binary", "multiclass", "regression", or "pretext:<name>" for a pretraining result.
    classes : tuple, optional
        The source's class labels (classification): the output layer is kept when the new
        task has exactly the same classes.
    origin : str
        Where the weights came from, in words, e.g. "bundle runs/a (NeuralClassifier, 5 classes)".
    lineage : tuple of dict
        The source network's own lineage (each a ``{"step": ..., "from": ...}`` record).
    """

    module: Any
    preprocessor: Any
    model_config: Any
    input_spec: Any
    inputs: Any
    task: str
    classes: tuple | None
    origin: str
    lineage: tuple = ()

    @property
    def input_kind(self) -> str:
        """"images", "series" or "table": what X the source network reads."""
        if self.inputs.image_shape:
            return "images"
        return "series" if self.inputs.series_shape else "table"


__all__ = ["PRETRAINED", "Source"]
