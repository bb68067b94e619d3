"""`Pretrained`: what self-supervised pretraining leaves, and the `Source` a fit starts from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from archtune.data.inputs import FittedInputs
from archtune.transfer.source import Source


@dataclass
class Pretrained:
    """A network pretrained on unlabeled rows, with the input side it was trained on.

    Attributes
    ----------
    module_ : TabularNetwork
        The pretrained network, in evaluation mode. Its ``head`` is the pretext head (the
        part a fine-tuning replaces); its outputs on a batch ``x`` of preprocessed rows are the
        pretext head's raw outputs ``[B, pretext_["n_outputs"]]`` (TabM members averaged).
    preprocessor_ : Preprocessor
        Fitted on the pretraining rows (all of them, the validation holdout included).
    model_config_ : ModelConfig
    input_spec_ : InputSpec
    history_ : pandas.DataFrame
        One row per epoch (``epoch``, ``loss``, ``val_loss``, ``lr``, ...) and ``phase`` =
        "pretrain", as a fitted estimator's ``history_``.
    pretext_ : dict
        ``{"name": ..., "n_outputs": ..., **settings}``: the pretext task and its settings.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, or None
        The columns of X (None for an array without names, e.g. images).
    image_shape_, series_shape_ : tuple, or None
        (C, H, W) of image arrays, (T, F) of series arrays.
    n_rows_ : int
        Rows pretrained on (training and validation).
    best_epoch_ : int
        The epoch whose weights were kept (early stopping on the validation pretext loss).
    lineage_ : tuple of dict
        Where the weights came from, ending with this pretraining's record.
    """

    module_: Any
    preprocessor_: Any
    model_config_: Any
    input_spec_: Any
    history_: pd.DataFrame
    pretext_: dict
    n_features_in_: int
    feature_names_in_: np.ndarray | None
    image_shape_: tuple | None = None
    series_shape_: tuple | None = None
    n_rows_: int = 0
    best_epoch_: int = 0
    lineage_: tuple = field(default=())

    @property
    def n_epochs_(self) -> int:
        return len(self.history_)

    def inputs(self) -> FittedInputs:
        """The checks new X must pass to be read as the pretraining rows were."""
        names = None if self.feature_names_in_ is None else tuple(map(str, self.feature_names_in_))
        return FittedInputs("Pretrained", self.model_config_.arch, int(self.n_features_in_), names,
                            tuple(self.image_shape_ or ()), tuple(self.series_shape_ or ()),
                            tuple(self.preprocessor_.columns_))

    @property
    def origin(self) -> str:
        return f"pretrained ({self.pretext_['name']}, {self.n_epochs_} epochs on {self.n_rows_} rows)"

    def to_source(self) -> Source:
        """The `Source` a fit starts from: this network (its head replaced by the new task's),
        preprocessor, architecture and columns; task ``"pretext:<name>"``, no classes."""
        return Source(module=self.module_, preprocessor=self.preprocessor_, model_config=self.model_config_,
                      input_spec=self.input_spec_, inputs=self.inputs(), task=f"pretext:{self.pretext_['name']}",
                      classes=None, origin=self.origin, lineage=tuple(self.lineage_))

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """The body's representation of X (the features a fine-tuned head would read).

        Returns
        -------
        ndarray of shape (n_samples, body width), float32
            For TabM, the members' representations averaged.
        """
        frame = self.inputs().frame(X, "X")
        x = torch.from_numpy(self.preprocessor_.transform(frame, "X"))
        module = self.module_.eval()
        device = next(module.parameters()).device
        x = x.to(device)
        # Wide&Deep: the body reads the deep columns (the wide ones skip it).
        out = module.body(module.encode(x[:, list(module.deep)] if module.deep else x))
        return (out.mean(dim=1) if out.ndim == 3 else out).cpu().numpy()


__all__ = ["Pretrained"]
